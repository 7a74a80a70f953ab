import pytest

from hwnas.measure.runners.worker import ModelWorker, WorkerCrashed
from hwnas.export import ExportSettings, export_arch
from hwnas.spaces import create_space

pytestmark = pytest.mark.slow


def test_worker_times_a_real_onnx_model(tmp_path):
    sp = create_space("nb201", C=4, N=1)
    path = export_arch(sp, sp.from_index(1), ExportSettings(format="onnx"), cache_dir=tmp_path)
    with ModelWorker(path, threads=1) as w:
        assert w.info["runtime"] == "onnxruntime" and w.first_inference_ms > 0
        times = w.time(5)
    assert len(times) == 5 and all(t > 0 for t in times)


def test_worker_reports_a_model_it_cannot_load(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WorkerCrashed, match="cannot load"):
        ModelWorker(bad)
