"""LiteRT (the maintained TFLite runtime, ``ai_edge_litert``) interpreters; ``tflite_runtime`` as fallback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import HwnasError


def _interpreter_module():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from ai_edge_litert import interpreter as mod

        return mod, "ai-edge-litert"
    except ImportError:
        try:
            from tflite_runtime import interpreter as mod  # type: ignore

            return mod, "tflite-runtime"
        except ImportError:
            raise HwnasError("no TFLite runtime installed: pip install ai-edge-litert") from None


def litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    _, dist = _interpreter_module()
    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:  # pragma: no cover
        return dist


class LiteRTSession:
    runtime = "litert"

    def __init__(self, path: Path, threads: int = 1, delegate: str | None = None, input_shape=None):
        mod, _ = _interpreter_module()
        self.version = litert_version()
        # XNNPACK is LiteRT's default CPU delegate; "none" asks for the reference kernels.
        resolver = None
        if delegate in ("none", "builtin"):
            resolver = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif delegate not in (None, "xnnpack", "cpu"):
            raise HwnasError(f"LiteRT delegate {delegate!r} is not available on this host (known here: xnnpack, none)")
        kwargs = {"model_path": str(path), "num_threads": max(1, int(threads))}
        if resolver is not None:
            kwargs["experimental_op_resolver_type"] = resolver
        try:
            self.interpreter = mod.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # the interpreter raises ValueError, RuntimeError ...: re-raised as one line
            raise HwnasError(f"LiteRT cannot load {path}: {str(exc).splitlines()[0]}") from exc
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        if input_shape is not None:  # a TFLite input's shape is fixed: a given one must agree with it
            from ..graphs import resolve_input_dims

            resolve_input_dims(self._in["name"], list(self.input_shape), input_shape, where=str(path))
        self.threads = int(threads)
        self.delegate = delegate or "xnnpack"

    @staticmethod
    def _quant(detail):
        scale, zero = detail.get("quantization", (0.0, 0))
        return float(scale), int(zero)

    def set_input(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).reshape(self.input_shape)
        dtype = self._in["dtype"]
        if dtype != np.float32:
            scale, zero = self._quant(self._in)
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        self.interpreter.set_tensor(self._in["index"], np.ascontiguousarray(x.astype(dtype)))

    def invoke(self):
        self.interpreter.invoke()

    def run(self, x: np.ndarray) -> np.ndarray:
        self.set_input(x)
        self.invoke()
        y = self.interpreter.get_tensor(self._out["index"])
        if y.dtype != np.float32:
            scale, zero = self._quant(self._out)
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32)
