"""Image datasets for training candidates and for zero-cost proxies, split three ways.

``digits`` (the default) is scikit-learn's bundled copy of the UCI optical handwritten digits test set:
1,797 real 8x8 grey-scale images of the digits 0-9, shipped inside the scikit-learn wheel (a dependency of
hwnas), so it works offline on a fresh machine with no download. It is small enough to train a cell network
for a few epochs in seconds on one CPU core, and real enough that architectures differ in accuracy. (The
alternatives that ship with an installable package are weaker: scikit-learn's two sample photos are not a
classification set; torchvision, TensorFlow and scipy download their datasets.) The images are resized
(bilinear) to the space's input size and repeated over its channels.

``cifar10`` reads the standard python-pickle directory (``data_batch_1..5``, ``test_batch``) from
``data_dir`` (the ``cifar-10-batches-py`` folder or its parent) with a restricted unpickler
(:mod:`hwnas.accuracy.safe_pickle`); with ``download=True`` torchvision fetches it into ``$HWNAS_HOME/data``.

``imagefolder`` reads your own images in torchvision's ImageFolder layout (:mod:`hwnas.accuracy.imagefolder`).

Splits (:func:`load_splits`), the way the field uses them: the search trains on ``train`` and selects on
``val``; ``test`` is read once, at the end, for the Pareto front only. It is lazy and locked:
``Splits.test()`` raises :class:`LockedSplitError` unless the final step asked for ``Splits.unlock_test()``,
and the test images are not even read before that.

- digits: 60 % train (1,079 images), 20 % val (359, seeded), 20 % test (359, fixed);
- cifar10: 45,000 train + 5,000 val (seeded) from the five training batches, ``test_batch`` for test;
- imagefolder: ``DIR/train``; ``DIR/val``, else 20 % of train (seeded); ``DIR/test``, else 20 % of train (fixed).

All carved splits are stratified (:func:`stratified_carve`). "fixed" means independent of the seed, so no seed ever trains on another seed's test images. Inputs are
standardised with the train split's per-channel mean and std, or with fixed statistics
(``normalise=``, e.g. :data:`IMAGENET_NORMALISE` for weights pretrained on ImageNet). :func:`load_dataset`
(train/test only, the test split used for selection) is kept for old callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import HwnasError, ParametersError, unknown
from ..paths import hwnas_home

DATASETS = ("digits", "cifar10")  # load_dataset (old API)
SPLIT_DATASETS = ("digits", "cifar10", "imagefolder")
VAL_FRACTION = 0.2  # digits, and imagefolder without DIR/val
TEST_FRACTION = 0.2  # digits, and imagefolder without DIR/test
CIFAR_VAL_FRACTION = 0.1  # 5,000 of 50,000
CIFAR_CLASSES = 10
CIFAR_IMAGE_BYTES = 3 * 32 * 32
# per-channel (mean, std) of ImageNet RGB images in [0, 1]: the normalisation of ImageNet-pretrained weights (OFA, torchvision)
IMAGENET_NORMALISE = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


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


def _normaliser(x_train: np.ndarray, fixed=None) -> Callable[[np.ndarray], np.ndarray]:
    """Standardisation with the per-channel mean and std of ``x_train``, or with ``fixed`` = (means, stds)."""
    if fixed is not None:
        c = x_train.shape[1]
        mean, std = (np.asarray(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in fixed)
        if mean.shape[1] != c or std.shape[1] != c:
            raise HwnasError(f"normalisation statistics for {mean.shape[1]} channels, but the images have {c}")
        return lambda x: ((x - mean) / std).astype(np.float32)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return lambda x: ((x - mean) / std).astype(np.float32)


def _standardise(x_train, x_test):
    norm = _normaliser(x_train)
    return norm(x_train), norm(x_test)


def _shape(name: str, input_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise HwnasError(f"dataset {name}: the space's input shape {shape} is not (C, H, W)")
    return shape


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
    raise ParametersError(f"no CIFAR-10 python-pickle files (data_batch_1..5, test_batch) under {root}; "
                          "give `data_dir` DIR or `download`")


def _cifar_folder(root: str | None, download: bool) -> Path:
    base = Path(root).expanduser() if root else hwnas_home() / "data"
    if download:
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(root=str(base), train=True, download=True)
        except Exception as exc:  # network errors, disk full ...
            raise HwnasError(f"could not download CIFAR-10 into {base}: {exc}") from None
    elif root is None and not (base / "cifar-10-batches-py").is_dir():
        raise ParametersError("dataset cifar10 needs `data_dir` DIR (python-pickle CIFAR-10) or `download`")
    return _cifar_dir(base)


def _cifar10(root: str | None, download: bool):
    folder = _cifar_folder(root, download)
    x_tr, y_tr = _cifar_train(folder)
    x_te, y_te = _cifar_batch(folder / "test_batch")
    return x_tr, y_tr, x_te, y_te, 10


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python-pickle batch -> images (n, 3, 32, 32) in [0, 1] and labels."""
    from .safe_pickle import load_cifar_batch

    d = load_cifar_batch(path)
    for key in (b"data", b"labels"):
        if key not in d:
            raise HwnasError(f"CIFAR-10 file {path} is unreadable: no {key.decode()!r} entry")
    data, labels = d[b"data"], d[b"labels"]
    # the data set's known shape, checked before anything is converted or allocated
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % CIFAR_IMAGE_BYTES:
        what = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise HwnasError(f"CIFAR-10 file {path}: 'data' must be uint8 images of 3 x 32 x 32 bytes, got {what}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != data.size // CIFAR_IMAGE_BYTES:
        n = len(labels) if isinstance(labels, (list, tuple, np.ndarray)) else type(labels).__name__
        raise HwnasError(f"CIFAR-10 file {path} holds {data.size // CIFAR_IMAGE_BYTES} images but {n} labels")
    bad = [(i, v) for i, v in enumerate(labels)
           if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < CIFAR_CLASSES]
    if bad:
        i, v = bad[0]
        more = f" ({len(bad)} such labels)" if len(bad) > 1 else ""
        raise HwnasError(f"CIFAR-10 file {path}: label {v!r} (image {i}) is not a class 0-{CIFAR_CLASSES - 1}{more}")
    y = np.asarray(labels, dtype=np.int64)
    x = data.reshape(-1, 3, 32, 32)
    return x.astype(np.float32) / 255.0, y


def _cifar_train(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6) if (folder / f"data_batch_{i}").is_file()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@lru_cache(maxsize=4)
def load_dataset(name: str, input_shape: tuple[int, ...], root: str | None = None, download: bool = False) -> Dataset:
    """The dataset ``name`` fitted to ``input_shape`` (C, H, W); cached per process."""
    if name == "digits":
        x_tr, y_tr, x_te, y_te, k = _digits()
    elif name == "cifar10":
        x_tr, y_tr, x_te, y_te, k = _cifar10(root, download)
    else:
        raise unknown("dataset", name, DATASETS)
    shape = _shape(name, input_shape)
    x_tr, x_te = _standardise(_fit(x_tr, shape), _fit(x_te, shape))
    return Dataset(name, x_tr, y_tr, x_te, y_te, k)


# ----------------------------------------------------------------------------------------------- splits
class LockedSplitError(HwnasError):
    """Something asked for test images before the final step unlocked them."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (n, C, H, W) float32, standardised with the train split's statistics
    y: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    """train / val / test of one data set, fitted to one input shape. ``test()`` is lazy and locked."""

    name: str
    num_classes: int
    train: Split
    val: Split
    augment: bool  # natural RGB photos (random crop + flip is the standard recipe); False for digits
    seed: int
    test_loader: Callable[[], Split] = field(repr=False, compare=False)
    test_unlocked: bool = False
    classes: tuple[str, ...] = ()  # class names in label order (imagefolder: its class folders); () = unnamed
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # shared by unlocked copies

    def test(self) -> Split:
        """The test split; raises unless this is the copy :meth:`unlock_test` gave the final step."""
        if not self.test_unlocked:
            raise LockedSplitError(f"the {self.name} test split is locked: the search selects on validation data; "
                                  "only the final step (the Pareto front, hwnas retrain) may read test images")
        if "test" not in self._cache:
            self._cache["test"] = self.test_loader()
        return self._cache["test"]

    def unlock_test(self) -> "Splits":
        """A copy whose ``test()`` works; this object stays locked (``load_splits`` caches it)."""
        return replace(self, test_unlocked=True)

    def batch(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A fixed random batch of training images (for zero-cost proxies)."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.train), size=min(int(n), len(self.train)), replace=False)
        return self.train.x[idx], self.train.y[idx]

    def describe(self) -> str:
        return f"{self.name}: {len(self.train)} train / {len(self.val)} val images (stratified, seed {self.seed}) + a locked test split"


def stratified_carve(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, carved): ``fraction`` of every class carved out (rounded; at least one image kept)."""
    rng = np.random.default_rng(seed)
    keep, carve = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = min(len(idx) - 1, int(round(fraction * len(idx))))
        carve.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(carve))


@dataclass
class RawSplits:
    """Images in [0, 1], (n, c, h, w) at any size, before fitting; the test split behind a function."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: Callable[[], tuple[np.ndarray, np.ndarray]]
    num_classes: int
    augment: bool
    classes: tuple[str, ...] = ()  # class names in label order (imagefolder: the class folders); () = labels only


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled UCI digits as (images (n, 8, 8) in 0..16, labels), read straight from the file that
    ``sklearn.datasets.load_digits`` reads (``sklearn/datasets/data/digits.csv.gz``: 64 pixels then the label per
    row), found without importing scikit-learn (2-4 s per process on a 2-core machine); ``load_digits`` where the
    file is not there. Tested equal to ``load_digits``."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as f:
                data = np.loadtxt(f, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def _digits_raw(seed: int) -> RawSplits:
    images, target = _digits_arrays()
    x = (images / 16.0).astype(np.float32)[:, None]
    y = target.astype(np.int64)
    rest, te = stratified_carve(y, TEST_FRACTION, seed=0)  # fixed: the same test images for every seed
    tr, va = stratified_carve(y[rest], VAL_FRACTION / (1 - TEST_FRACTION), seed=seed)
    tr, va = rest[tr], rest[va]
    return RawSplits((x[tr], y[tr]), (x[va], y[va]), lambda: (x[te], y[te]), 10, augment=False)


def _cifar10_raw(data_dir: str | None, download: bool, seed: int) -> RawSplits:
    folder = _cifar_folder(data_dir, download)
    x, y = _cifar_train(folder)
    tr, va = stratified_carve(y, CIFAR_VAL_FRACTION, seed=seed)
    return RawSplits((x[tr], y[tr]), (x[va], y[va]), lambda: _cifar_batch(folder / "test_batch"), 10, augment=True)


@lru_cache(maxsize=4)
def load_splits(name: str, input_shape: tuple[int, ...], data_dir: str | None = None, download: bool = False,
                seed: int = 0, normalise: tuple | None = None) -> Splits:
    """Data set ``name`` as train / val / (locked, lazy) test, fitted to ``input_shape`` (C, H, W); cached per
    process (the cached object stays locked). Standardised with the train split's per-channel statistics, or
    with ``normalise`` = (means, stds) per channel (pretrained weights expect their own training's)."""
    shape = _shape(name, input_shape)
    if name == "digits":
        raw = _digits_raw(int(seed))
    elif name == "cifar10":
        raw = _cifar10_raw(data_dir, download, int(seed))
    elif name == "imagefolder":
        from .imagefolder import imagefolder_raw

        raw = imagefolder_raw(data_dir, shape, int(seed))
    else:
        raise unknown("dataset", name, SPLIT_DATASETS)
    x_tr, x_va = _fit(raw.train[0], shape), _fit(raw.val[0], shape)
    norm = _normaliser(x_tr, normalise)

    def test_loader() -> Split:
        x_te, y_te = raw.test()
        return Split(norm(_fit(x_te, shape)), np.asarray(y_te, dtype=np.int64))

    return Splits(name, raw.num_classes, Split(norm(x_tr), raw.train[1]), Split(norm(x_va), raw.val[1]),
                  augment=raw.augment, seed=int(seed), test_loader=test_loader, classes=tuple(raw.classes))
