"""Real exports: torch -> ONNX (onnxruntime) and torch -> TFLite (litert-torch, run by ai_edge_litert)."""

import numpy as np
import pytest
import torch

from hwnas.errors import HwnasError
from hwnas.export import ExportError, ExportSettings, build_model, export_arch, export_model
from hwnas.runtimes import open_session
from hwnas.spaces import create_space

pytestmark = pytest.mark.slow

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
MB = "k3e4,k5e6/k3e3,k7e3/k5e4,k5e4/k7e3,k3e6/k3e6,k5e3"


def _torch_out(space, arch, x):
    with torch.no_grad():
        return build_model(space, arch)(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_nb201_export_runs_and_matches_torch(fmt, shared_export_cache):
    sp = create_space("nb201", C=8, N=1)
    a = sp.from_string(CELL)
    path = export_arch(sp, a, ExportSettings(format=fmt), cache_dir=shared_export_cache)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    y = open_session(path).run(x)
    ref = _torch_out(sp, a, x)
    assert y.shape == ref.shape == (1, 10)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_mobilenet_export_runs_and_matches_torch(fmt, shared_export_cache):
    sp = create_space("mobilenet", input_size=64, num_classes=10, width_mult=0.5)
    a = sp.from_string(MB)
    path = export_arch(sp, a, ExportSettings(format=fmt), cache_dir=shared_export_cache)
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(open_session(path).run(x), _torch_out(sp, a, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_export_runs_and_tracks_float(fmt, shared_export_cache):
    sp = create_space("nb201", C=8, N=1)
    a = sp.from_string(CELL)
    rng = np.random.default_rng(3)
    calib = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    path = export_arch(sp, a, ExportSettings(format=fmt, precision="int8"), cache_dir=shared_export_cache,
                       calibration=calib)
    fp = export_arch(sp, a, ExportSettings(format=fmt), cache_dir=shared_export_cache)
    assert path != fp and path.stat().st_size < fp.stat().st_size  # int8 weights are smaller
    x = calib[0]
    y, ref = open_session(path).run(x).ravel(), _torch_out(sp, a, x).ravel()
    assert np.corrcoef(y, ref)[0, 1] > 0.9  # quantised, so close but not equal


def test_export_is_cached_by_arch_and_settings(tmp_path):
    sp = create_space("nb201", C=4, N=1)
    a = sp.from_string(CELL)
    p1 = export_arch(sp, a, ExportSettings(format="onnx"), cache_dir=tmp_path)
    mtime = p1.stat().st_mtime_ns
    p2 = export_arch(sp, a, ExportSettings(format="onnx"), cache_dir=tmp_path)
    assert p1 == p2 and p2.stat().st_mtime_ns == mtime
    other = create_space("nb201", C=8, N=1)  # a different network for the same genes
    assert export_arch(other, other.make(a.genes), ExportSettings(format="onnx"), cache_dir=tmp_path) != p1
    out = export_arch(sp, a, ExportSettings(format="onnx"), out=tmp_path / "copy.onnx", cache_dir=tmp_path)
    assert out.read_bytes() == p1.read_bytes()


class Broken(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("unsupported thing")


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_failed_conversion_leaves_nothing_behind(tmp_path, fmt):
    target = tmp_path / f"m.{fmt}"
    with pytest.raises(ExportError, match="conversion of broken-net failed: RuntimeError: unsupported thing"):
        export_model(Broken(), (3, 8, 8), target, ExportSettings(format=fmt), what="broken-net")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_refused_before_work(tmp_path):
    sp = create_space("nb201", C=4, N=1)
    with pytest.raises(HwnasError, match="does not exist"):
        export_arch(sp, sp.from_string(CELL), ExportSettings(), out=tmp_path / "no" / "x.onnx", cache_dir=tmp_path)
    with pytest.raises(HwnasError, match="unknown export format"):
        ExportSettings(format="pb")


def test_building_a_model_leaves_the_callers_torch_rng_alone():
    """build_model seeds the weights from the arch id inside its own RNG fork: a caller's seeded torch stream
    (a training loop, a strategy) goes on as if no model had been built, and the weights stay reproducible."""
    space = create_space("nb201", C=4, N=1)
    arch = space.from_index(7)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = build_model(space, arch)
    assert torch.equal(torch.rand(3), expected)
    second = build_model(space, arch)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
