"""Image datasets for training candidates and for zero-cost proxies.

``digits`` (the default) is scikit-learn's bundled copy of the UCI optical handwritten digits test set:
1,797 real 8x8 grey-scale images of the digits 0-9, shipped inside the scikit-learn wheel (a dependency of
hwnas), so it works offline on a fresh machine with no download. It is small enough to train a cell network
for a few epochs in seconds on one CPU core, and real enough that architectures differ in accuracy. (The
alternatives that ship with an installable package are weaker: scikit-learn's two sample photos are not a
classification set; torchvision, TensorFlow and scipy download their datasets.) The images are resized
(bilinear) to the space's input size and repeated over its channels. Split: a fixed, stratified 75/25
train/test split.

``cifar10`` reads the standard python-pickle directory (``data_batch_1..5``, ``test_batch``) from
``root`` (the ``cifar-10-batches-py`` folder or its parent); with ``download=True`` torchvision fetches it into
``$HWNAS_HOME/data`` first.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import HwnasError, unknown
from ..paths import hwnas_home

DATASETS = ("digits", "cifar10")


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # (n, C, H, W) float32, normalised
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def batch(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A fixed random batch of training images (for zero-cost proxies)."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.x_train), size=min(int(n), len(self.x_train)), replace=False)
        return self.x_train[idx], self.y_train[idx]


def _fit(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(n, c, h, w) -> (n, C, H, W): bilinear resize and channel repeat/truncate, then standardise."""
    import torch
    import torch.nn.functional as F

    C, H, W = shape
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[-2:] != (H, W):
        t = F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False)
    if t.shape[1] != C:
        t = t.repeat(1, -(-C // t.shape[1]), 1, 1)[:, :C]
    return t.numpy()


def _standardise(x_train, x_test):
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_tr, y_tr, x_te, y_te, 10


def _cifar_dir(root: Path) -> Path:
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / "data_batch_1").is_file() and (cand / "test_batch").is_file():
            return cand
    raise HwnasError(f"no CIFAR-10 python-pickle files (data_batch_1..5, test_batch) under {root}; "
                     "give --data-dir DIR or --download")


def _cifar10(root: str | None, download: bool):
    base = Path(root).expanduser() if root else hwnas_home() / "data"
    if download:
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(root=str(base), train=True, download=True)
        except Exception as exc:  # network errors, disk full ...
            raise HwnasError(f"could not download CIFAR-10 into {base}: {exc}") from None
    elif root is None and not (base / "cifar-10-batches-py").is_dir():
        raise HwnasError("dataset cifar10 needs --data-dir DIR (python-pickle CIFAR-10) or --download")
    folder = _cifar_dir(base)

    def read(name):
        try:
            with (folder / name).open("rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            return np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise HwnasError(f"CIFAR-10 file {folder / name} is unreadable: {exc}") from None

    parts = [read(f"data_batch_{i}") for i in range(1, 6) if (folder / f"data_batch_{i}").is_file()]
    x_tr = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = read("test_batch")
    return x_tr, y_tr, x_te.astype(np.float32) / 255.0, y_te, 10


@lru_cache(maxsize=4)
def load_dataset(name: str, input_shape: tuple[int, ...], root: str | None = None, download: bool = False) -> Dataset:
    """The dataset ``name`` fitted to ``input_shape`` (C, H, W); cached per process."""
    if name == "digits":
        x_tr, y_tr, x_te, y_te, k = _digits()
    elif name == "cifar10":
        x_tr, y_tr, x_te, y_te, k = _cifar10(root, download)
    else:
        raise unknown("dataset", name, DATASETS)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise HwnasError(f"dataset {name}: the space's input shape {shape} is not (C, H, W)")
    x_tr, x_te = _standardise(_fit(x_tr, shape), _fit(x_te, shape))
    return Dataset(name, x_tr, y_tr, x_te, y_te, k)
