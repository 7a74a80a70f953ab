"""A restricted unpickler for CIFAR-10's python-pickle batches.

``pickle.load`` runs whatever callables a file names, so a downloaded or shared "CIFAR-10" file could run
``os.system``. CIFAR-10's batches hold only a dict of bytes, str, int, lists and one uint8 numpy array; the
only callables such a payload needs are numpy's array/scalar/dtype reconstructors. Everything else is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import HwnasError

# numpy pickles arrays via ``<numpy core>.multiarray._reconstruct``; the module moved to numpy._core in numpy 2.
# A numpy scalar (a label written as np.int64) comes back through ``multiarray.scalar(dtype, raw bytes)``.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(HwnasError):
    """A pickle asked for a callable outside the CIFAR-10 payload."""


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
