"""One graph reader (hwnas.graphs) below the CI gates and the latency predictors: shapes are resolved, never
guessed (issue #25: a conv with a dynamic H, W was counted as 216 MACs instead of 221,184 at 32x32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.ci.gates import model_gates
from hwnas.graphs import DynamicShapeError, GraphError, resolve_input_dims

REPO = Path(__file__).resolve().parent.parent
CONV_MACS_32 = 32 * 32 * 8 * 3 * 3 * 3  # output 8 x 32 x 32, each a 3 x 3 x 3 dot product: 221,184


def conv_model(path: Path, dims) -> Path:
    """x[dims] -> Conv(8 filters, 3x3, pad 1) -> y: an ONNX file with the given (possibly symbolic) input dims."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv")
    out_dims = [dims[0], 8, dims[2], dims[3]]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_dynamic_h_w_is_an_error_not_a_1x1_guess(tmp_path):
    dyn = conv_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    with pytest.raises(DynamicShapeError, match=r"input 'x' has dynamic dimensions \(\?, 3, \?, \?\)"):
        model_gates(dyn)
    assert model_gates(dyn, input_shape=(3, 32, 32))["macs"] == CONV_MACS_32 == 221_184
    with pytest.raises(GraphError, match="disagrees at dim 1"):
        model_gates(dyn, input_shape=(4, 32, 32))


def test_a_dynamic_batch_counts_one_inference(tmp_path):
    batch = conv_model(tmp_path / "batch.onnx", ["N", 3, 32, 32])
    gates = model_gates(batch)
    assert gates["macs"] == CONV_MACS_32 and gates["params"] == 8 * 3 * 3 * 3 and gates["op_count"] == 1
    assert model_gates(conv_model(tmp_path / "static.onnx", [1, 3, 32, 32]))["macs"] == CONV_MACS_32


def test_the_predictors_read_the_same_resolved_graph(tmp_path):
    from hwnas.predictors.fusion import read_graph

    dyn = conv_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    with pytest.raises(DynamicShapeError):
        read_graph(dyn)
    (k,) = read_graph(dyn, input_shape=(3, 32, 32))
    assert (k.type, k.hw, k.cin, k.cout) == ("conv", 32, 3, 8) and k.mmacs * 1e6 == pytest.approx(CONV_MACS_32)


def test_onnx_runtime_never_runs_a_guessed_input(tmp_path):
    from hwnas.runtimes import open_session

    with pytest.raises(DynamicShapeError):
        open_session(conv_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"]))
    assert open_session(conv_model(tmp_path / "batch.onnx", ["N", 3, 32, 32])).input_shape == (1, 3, 32, 32)


def test_resolve_input_dims():
    assert resolve_input_dims("x", [None, 3, 8, 8]) == (1, 3, 8, 8)
    assert resolve_input_dims("x", ["N", 3, None, None], (3, 16, 16)) == (1, 3, 16, 16)
    assert resolve_input_dims("x", ["N", 3, None, None], (1, 3, 16, 16)) == (1, 3, 16, 16)  # batch first
    assert resolve_input_dims("x", ["N", 3, None, None], (2, 3, 16, 16)) == (2, 3, 16, 16)
    with pytest.raises(GraphError, match="must list all 4 or the 3 after the batch"):
        resolve_input_dims("x", [None, 3, None, None], (16, 16))
    with pytest.raises(GraphError, match="disagrees at dim 0"):
        resolve_input_dims("x", [1, 3, None, None], (2, 3, 16, 16))


def test_parse_input_shape():
    from hwnas.cli.main import as_flags
    from hwnas.errors import ParameterError
    from hwnas.graphs import parse_input_shape

    assert parse_input_shape("1x3x32x32") == (1, 3, 32, 32) == parse_input_shape([1, 3, 32, 32])
    assert parse_input_shape(None) is None
    for bad in ("1x3xax32", "", "1x0x32x32", "1,3,32,32"):
        with pytest.raises(ParameterError) as exc:
            parse_input_shape(bad)
        assert as_flags(exc.value).startswith(f"--input-shape {bad!r}: expected positive dims such as 1x3x32x32")


def test_no_private_litert_api():
    """The TFLite gates read the flatbuffer through LiteRT's schema, not the interpreter's private op list."""
    assert not [p for p in (REPO / "hwnas").rglob("*.py") if "_get_ops_details" in p.read_text()]


@pytest.mark.journey
def test_ci_check_on_a_dynamic_model_says_so_in_one_line(tmp_path):
    from journeys import run_hwnas

    conv_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    ran = run_hwnas(["ci-check", "dyn.onnx", "--against", "dyn.onnx", "--device", "host"], cwd=tmp_path)
    assert ran.rc == 2, ran.text
    assert "dynamic dimensions (?, 3, ?, ?)" in ran.err and "Traceback" not in ran.text
    assert "give its --input-shape (batch first" in ran.err and len(ran.err.strip().splitlines()) == 1


@pytest.mark.journey
def test_ci_check_input_shape_resolves_a_dynamic_h_w(tmp_path):
    """The issue's example: a 3 -> 8, 3x3 conv with a dynamic H, W. ``--input-shape 1x3x32x32`` counts it at 32x32
    (221,184 MACs, not the 216 of a 1x1 guess) and the workers time it on 1x3x32x32 inputs."""
    import json

    from journeys import run_hwnas

    conv_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    ran = run_hwnas(["ci-check", "dyn.onnx", "--against", "dyn.onnx", "--device", "host", "--input-shape",
                     "1x3x32x32", "--budget-s", "2", "--inconclusive", "pass", "--json", "r.json"], cwd=tmp_path)
    assert ran.rc == 0, ran.text
    report = json.loads((tmp_path / "r.json").read_text())
    (model,) = report["models"]
    assert model["candidate_facts"]["macs"] == CONV_MACS_32 == 221_184 and model["candidate_facts"]["params"] == 216
    assert report["measurement_settings"]["input_shape"] == [1, 3, 32, 32]
    assert model["latency"]["n_rounds"] >= 2  # measured, on inputs of that shape
    bad = run_hwnas(["ci-check", "dyn.onnx", "--against", "dyn.onnx", "--input-shape", "1x4x32x32"], cwd=tmp_path)
    assert bad.rc == 2 and "disagrees at dim 1" in bad.err, bad.text
    # a stored baseline keeps its shape: a later check at another (or none) is refused, at the same one it runs
    shape = ["--input-shape", "1x3x32x32"]
    rec = run_hwnas(["ci-check", "dyn.onnx", "--update-baseline", "b.json", "--rounds", "2", *shape], cwd=tmp_path)
    assert rec.rc == 0 and json.loads((tmp_path / "b.json").read_text())["input_shape"] == [1, 3, 32, 32], rec.text
    other = run_hwnas(["ci-check", "dyn.onnx", "--baseline", "b.json"], cwd=tmp_path)
    assert other.rc == 2 and "measured with --input-shape 1x3x32x32; this check has none" in other.err, other.text
    same = run_hwnas(["ci-check", "dyn.onnx", "--baseline", "b.json", "--budget-s", "2", "--inconclusive", "pass",
                      *shape], cwd=tmp_path)
    assert same.rc in (0, 1) and "ci-check:" in same.out, same.text
