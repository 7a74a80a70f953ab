"""ONNX Runtime sessions (CPU execution provider unless the profile names another)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import HwnasError
from ..graphs import resolve_input_dims


class OrtSession:
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int = 1, provider: str | None = None, profile_dir: Path | None = None,
                 input_shape=None):
        import onnxruntime as ort

        self.version = ort.__version__
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        if profile_dir is not None:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(profile_dir) / "ort_profile")
        providers = [provider or "CPUExecutionProvider"]
        available = ort.get_available_providers()
        if providers[0] not in available:
            raise HwnasError(f"onnxruntime execution provider {providers[0]!r} is not available here; available: {', '.join(available)}")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT's own pybind classes (Fail, InvalidGraph ...): re-raised as one line
            raise HwnasError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # a dynamic batch runs as 1; a dynamic H, W comes from input_shape, else an error, never a guessed 1 x 1
        self.input_shape = resolve_input_dims(inp.name, [d if isinstance(d, int) else None for d in inp.shape],
                                              input_shape, where=str(path))
        self.threads = int(threads)
        self.delegate = providers[0]
        self._feed = None

    def set_input(self, x: np.ndarray) -> None:
        self._feed = {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}

    def invoke(self):
        return self.session.run(None, self._feed)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.set_input(x)
        return np.asarray(self.invoke()[0], dtype=np.float32)

    def end_profiling(self) -> str | None:
        return self.session.end_profiling()
