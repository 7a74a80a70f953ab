"""torch -> ONNX (legacy TorchScript exporter, opset pinned) and torch -> TFLite (litert-torch).

float32 by default; ``precision="int8"`` applies post-training static quantisation (ONNX: onnxruntime's
QDQ quantize_static; TFLite: Google's ai-edge-quantizer ``static_wi8_ai8`` recipe, int8 weights and
activations, int8 model inputs). Calibration uses ``calibration`` batches when given, else 16 seeded
standard-normal inputs (documented: fine for latency, not for accuracy).

Exported files are cached under ``$HWNAS_HOME/cache/exports/<space>/`` by arch id + a hash of the export
settings and the space config; every file is written to a temporary name and renamed, so an interrupted
export never leaves a half-written model behind. Each entry's SHA-256 is recorded beside it (``<file>.sha256``)
and checked on every use: a truncated, emptied or swapped file is rebuilt, never copied out or measured.
Temporaries left by a killed export (``.*.part*``) are swept once per process when older than an hour.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (entry_lock)
    fcntl = None

import numpy as np

from .contracts import Arch
from .errors import HwnasError
from .fileio import atomic_path, check_writable, sha256_file
from .paths import export_cache_dir

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")
ONNX_OPSET = 17
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}


class ExportError(HwnasError):
    """A model could not be converted (the message names the arch and the converter's complaint)."""


@dataclass(frozen=True)
class ExportSettings:
    format: str = "onnx"
    precision: str = "fp32"
    opset: int = ONNX_OPSET
    batch: int = 1

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise HwnasError(f"unknown export format {self.format!r}; known: {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise HwnasError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")

    def key(self, space_config: dict | None = None) -> str:
        text = json.dumps({**asdict(self), "space": space_config or {}}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


def seed_for(arch: Arch) -> int:
    return int(arch.arch_id[:8], 16)


def build_model(space, arch: Arch):
    """Build ``arch`` in eval mode with weights seeded by its arch id (reproducible exports); the caller's torch
    RNG state is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(arch))
        return space.build(arch).eval()


def calibration_batches(input_shape: Sequence[int], n: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, *input_shape)).astype(np.float32) for _ in range(n)]


# --- ONNX --------------------------------------------------------------------------------------------
def _export_onnx(model, input_shape, path: Path, settings: ExportSettings, calibration) -> None:
    import torch

    x = torch.zeros(settings.batch, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(
                model, (x,), str(path), dynamo=False, opset_version=settings.opset,
                input_names=["input"], output_names=["output"], do_constant_folding=True,
            )
    if settings.precision == "int8":
        _quantize_onnx(path, input_shape, calibration)


def _quantize_onnx(path: Path, input_shape, calibration) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = calibration if calibration is not None else calibration_batches(input_shape)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": b} for b in batches])

        def get_next(self):
            return next(self.it, None)

    pre = path.with_name(path.name + ".pre.onnx")
    q = path.with_name(path.name + ".q.onnx")
    try:
        quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(q, path)
    finally:
        for p in (pre, q):
            if p.exists():
                p.unlink()


def quiet_litert() -> None:
    """Silence the C++ INFO logs of the TFLite converter and runtime (set before they load)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GLOG_minloglevel", "2")


# --- TFLite ------------------------------------------------------------------------------------------
def _export_tflite(model, input_shape, path: Path, settings: ExportSettings, calibration) -> None:
    import logging

    import torch

    quiet_litert()
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import litert_torch
        from litert_torch import _config

        _config.config.show_progress = False
        x = torch.zeros(settings.batch, *input_shape)
        edge_model = litert_torch.convert(model, (x,))
        edge_model.export(str(path))
    if settings.precision == "int8":
        _quantize_tflite(path, input_shape, calibration)


def _quantize_tflite(path: Path, input_shape, calibration) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    batches = calibration if calibration is not None else calibration_batches(input_shape)
    signatures = Interpreter(model_path=str(path)).get_signature_list()
    sig, spec = next(iter(signatures.items()))
    in_name = spec["inputs"][0]
    qt = quantizer.Quantizer(str(path))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = qt.calibrate({sig: [{in_name: b} for b in batches]})
        quantized = qt.quantize(result)
    q = path.with_name(path.name + ".q.tflite")
    try:
        quantized.export_model(str(q), overwrite=True)
        os.replace(q, path)
    finally:
        if q.exists():
            q.unlink()


_EXPORTERS = {"onnx": _export_onnx, "tflite": _export_tflite}


def export_model(model, input_shape, path: Path, settings: ExportSettings, calibration=None, what: str = "model") -> Path:
    """Export a torch module to ``path`` atomically; conversion failures raise ExportError."""
    path = check_writable(Path(path))
    with atomic_path(path) as tmp:
        try:
            _EXPORTERS[settings.format](model, tuple(input_shape), tmp, settings, calibration)
        except HwnasError:
            raise
        except Exception as exc:  # a converter's own error: keep it, name the arch
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{settings.format} conversion of {what} failed: {type(exc).__name__}: {msg}") from exc
    return path


def cached_export_path(space, arch: Arch, settings: ExportSettings, cache_dir: Path | None = None,
                       calibration=None) -> Path:
    base = Path(cache_dir) if cache_dir else export_cache_dir()
    key = settings.key(space.config())
    if calibration is not None and settings.precision == "int8":
        h = hashlib.sha1()
        for b in calibration:
            h.update(np.ascontiguousarray(b, dtype=np.float32).tobytes())
        key += "-c" + h.hexdigest()[:8]
    return base / space.name / f"{arch.arch_id}-{key}{SUFFIX[settings.format]}"


STALE_PART_S = 3600.0  # a partial file this old is left from a killed export (no export takes an hour)
_swept: set[Path] = set()
_CONVERT = threading.Lock()  # one conversion at a time in a process: torch's exporters keep global state


def _sweep_partials(directory: Path, now: float | None = None) -> int:
    """Delete temporaries left in a cache directory by killed exports (``.<name>.XXXX.part`` and the
    quantiser's ``.part.pre.onnx`` / ``.part.q.*`` beside them) older than ``STALE_PART_S``; returns how many."""
    now = time.time() if now is None else now
    n = 0
    for p in directory.glob(".*.part*"):
        try:
            if now - p.stat().st_mtime > STALE_PART_S:
                p.unlink()
                n += 1
        except OSError:  # another process finished or removed it meanwhile
            pass
    return n


def _digest_path(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sha256")


def cache_entry_ok(cached: Path) -> bool:
    """True when ``cached`` exists and its bytes match the SHA-256 recorded when it was exported."""
    try:
        recorded = _digest_path(cached).read_text().split()[0]
        return cached.is_file() and sha256_file(cached) == recorded
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def entry_lock(cached: Path):
    """Hold the cache entry ``cached`` for one exporter at a time, across processes (several profiles, search
    workers or test workers exporting the same arch at once): the others wait, then reuse its file instead of
    converting again or deleting a file that is being written. An advisory ``flock`` on ``<entry>.lock``; where
    the platform has none (Windows), entries are not locked."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(cached.with_name(cached.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def export_arch(space, arch: Arch, settings: ExportSettings, out: Path | None = None,
                cache_dir: Path | None = None, calibration=None) -> Path:
    """Export ``arch`` of ``space``; reuses the cached file when its recorded hash still matches (a truncated,
    emptied or swapped cache file is rebuilt), copied to ``out`` if given. One process at a time converts an
    entry (``entry_lock``).

    A cell with no path from its input to its output computes a constant: refused (``ExportError``)."""
    arch = space.check(arch)
    if not space.has_path(arch):
        raise ExportError(f"{space.to_string(arch)} computes a constant: no path from input to output "
                          f"(nothing to export or measure)")
    if out is not None:
        check_writable(Path(out))
    cached = cached_export_path(space, arch, settings, cache_dir, calibration)
    if cached.parent not in _swept and cached.parent.is_dir():
        _sweep_partials(cached.parent)
        _swept.add(cached.parent)
    if not cache_entry_ok(cached):
        with _CONVERT, entry_lock(cached):
            if not cache_entry_ok(cached):  # another process may have exported it while this one waited
                for p in (_digest_path(cached), cached):  # digest first: a half-cleaned entry is never trusted
                    p.unlink(missing_ok=True)
                model = build_model(space, arch)
                export_model(model, space.input_shape(), cached, settings, calibration, what=space.to_string(arch))
                with atomic_path(_digest_path(cached)) as tmp:
                    tmp.write_text(f"{sha256_file(cached)}  {cached.name}\n")
    if out is None:
        return cached
    out = Path(out)
    with atomic_path(out) as tmp, open(cached, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)  # not copyfile: it refuses a FIFO as the destination
    return out
