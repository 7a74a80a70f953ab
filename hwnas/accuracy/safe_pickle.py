"""A restricted unpickler for CIFAR-10's python-pickle batches.

``pickle.load`` runs whatever callables a file names, so a downloaded or shared "CIFAR-10" file could run
``os.system``. CIFAR-10's batches hold only a dict of bytes, str, int, lists and one uint8 numpy array; the
only callables such a payload needs are numpy's array/scalar/dtype reconstructors. Everything else is refused,
and so is an array larger than a batch's (checked before it is allocated).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import HwnasError

# The largest array a CIFAR-10 batch holds: 10,000 images of 3 x 32 x 32 bytes. A pickle can ask for any
# shape (``numpy.ndarray((10**11,))`` is 745 GiB), so arrays are checked against this before they exist.
MAX_ARRAY_BYTES = 10_000 * 3 * 32 * 32

# numpy pickles arrays via ``<numpy core>.multiarray._reconstruct(numpy.ndarray, (0,), b"b")`` and fills them
# from the pickle's own bytes (``__setstate__``: the data must match the shape, so it is bounded by the file);
# the module moved to numpy._core in numpy 2. A numpy scalar (a label written as np.int64) comes back through
# ``multiarray.scalar(dtype, raw bytes)``.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]


class UnsafePickleError(HwnasError):
    """A pickle asked for a callable outside the CIFAR-10 payload, or for an array larger than one batch."""


class _ArrayType:
    """What ``numpy.ndarray`` unpickles to: the class argument of ``_reconstruct``, never called (calling
    ``numpy.ndarray(shape)`` from a pickle would allocate whatever shape the file names)."""

    def __new__(cls, *args, **kwargs):
        raise UnsafePickleError("refused to unpickle a call of numpy.ndarray(...): a CIFAR-10 batch builds its "
                                "arrays through numpy's own pickling only")


def _reconstruct(subtype, shape, dtype):
    if subtype is not _ArrayType:
        raise UnsafePickleError(f"refused to unpickle an array of type {subtype!r}: only numpy.ndarray")
    try:
        n = int(np.prod([int(s) for s in shape], dtype=object))
        size = n * np.dtype(dtype if not isinstance(dtype, bytes) else dtype.decode("latin-1")).itemsize
    except (TypeError, ValueError) as exc:
        raise UnsafePickleError(f"refused to unpickle an array of shape {shape!r}: {exc}") from None
    if size > MAX_ARRAY_BYTES:
        raise UnsafePickleError(f"refused to unpickle an array of {size:,} bytes (shape {tuple(shape)}): a CIFAR-10 "
                                f"batch holds at most {MAX_ARRAY_BYTES:,}")
    return _RECONSTRUCT(np.ndarray, shape, dtype)


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): _ArrayType,
    ("numpy", "dtype"): np.dtype,
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused to unpickle {module}.{name}: a CIFAR-10 batch holds only a dict of "
                                    "bytes/str/int/lists and a numpy uint8 array") from None


def load_cifar_batch(path: Path) -> dict:
    """The dict stored in one CIFAR-10 python-pickle batch, read without running foreign code."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = _CifarUnpickler(fh, encoding="bytes").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise HwnasError(f"CIFAR-10 file {path} is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise HwnasError(f"CIFAR-10 file {path} holds a {type(data).__name__}, not a dict")
    return data
