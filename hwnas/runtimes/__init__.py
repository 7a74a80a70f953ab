"""Runtimes: load a model file, feed it, run it. One small interface for ONNX Runtime and LiteRT.

``open_session(path, runtime=None, threads=1, delegate=None)`` picks the runtime from the file suffix when
not given. A session has ``runtime``, ``version``, ``input_shape``, ``run(x) -> y`` (float in, float out:
quantised tensors are (de)quantised with the model's scale / zero point) and, for timing, ``set_input(x)``
then ``invoke()`` which runs one inference on the staged input with no conversion overhead.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import HwnasError, unknown

RUNTIMES = ("onnxruntime", "litert")
_BY_SUFFIX = {".onnx": "onnxruntime", ".tflite": "litert"}


def runtime_for(path: Path) -> str:
    try:
        return _BY_SUFFIX[Path(path).suffix]
    except KeyError:
        raise HwnasError(f"cannot tell the runtime of {path}: expected a .onnx or .tflite file") from None


def format_for(runtime: str) -> str:
    return {"onnxruntime": "onnx", "litert": "tflite"}[runtime]


def open_session(path, runtime: str | None = None, threads: int = 1, delegate: str | None = None,
                 input_shape=None):
    """A session of the model file; ``input_shape`` (batch first, or the dims after it) for a dynamic H, W,
    checked against the dims the model fixes."""
    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"model file {path} does not exist")
    runtime = runtime or runtime_for(path)
    if runtime == "onnxruntime":
        from .onnxruntime import OrtSession

        return OrtSession(path, threads=threads, provider=delegate, input_shape=input_shape)
    if runtime == "litert":
        from .litert import LiteRTSession

        return LiteRTSession(path, threads=threads, delegate=delegate, input_shape=input_shape)
    raise unknown("runtime", runtime, RUNTIMES)


def runtime_version(runtime: str) -> str:
    if runtime == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    if runtime == "litert":
        from .litert import litert_version

        return litert_version()
    raise unknown("runtime", runtime, RUNTIMES)
