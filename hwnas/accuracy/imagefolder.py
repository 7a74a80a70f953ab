"""Your own images in torchvision's ImageFolder layout::

    DIR/train/<class>/*.png|*.jpg|*.jpeg     required, at least two class folders
    DIR/val/<class>/...                      optional; else 20 % of train per class, seeded
    DIR/test/<class>/...                     optional; else 20 % of train per class, fixed (seed-independent)

Images are read with Pillow, converted to grey (1-channel spaces) or RGB, and resized (bilinear) to the space's
input. The class list comes from ``DIR/train``; ``val``/``test`` must hold the same classes. Test images are
read only when the final step unlocks the test split. Bad folders raise one clear :class:`HwnasError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import HwnasError, ParametersError
from .datasets import TEST_FRACTION, VAL_FRACTION, RawSplits, stratified_carve

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise HwnasError(f"class folder {d} holds no {'/'.join(IMAGE_SUFFIXES)} images")
        classes[d.name] = files
    return classes


def _read(files: dict[str, list[Path]], classes: list[str], shape) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    C, H, W = shape
    mode = "L" if C == 1 else "RGB"
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in files[name]:
            try:
                with Image.open(f) as im:
                    a = np.asarray(im.convert(mode).resize((W, H), Image.BILINEAR), dtype=np.float32) / 255.0
            except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, ...)
                raise HwnasError(f"image {f} is unreadable: {exc}") from None
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def imagefolder_raw(data_dir: str | None, shape, seed: int) -> RawSplits:
    if not data_dir:
        raise ParametersError("dataset imagefolder needs `data_dir` DIR (DIR/train/<class>/*.png|jpg)")
    root = Path(data_dir).expanduser()
    if not (root / "train").is_dir():
        raise HwnasError(f"{root} has no train/ folder: imagefolder expects DIR/train/<class>/*.png|jpg")
    train = _class_files(root / "train")
    if len(train) < 2:
        found = "no class folders" if not train else f"only one class ({next(iter(train))})"
        raise HwnasError(f"{root / 'train'} has {found}: a classifier needs at least two class folders")
    classes = sorted(train)
    given = {}
    for split in ("val", "test"):
        if (root / split).is_dir():
            files = _class_files(root / split)
            if sorted(files) != classes:
                raise HwnasError(f"{root / split} classes {sorted(files)} differ from {root / 'train'} classes {classes}")
            given[split] = files
    x, y = _read(train, classes, shape)
    if "test" in given:
        rest = np.arange(len(y))

        def test():
            return _read(given["test"], classes, shape)
    else:
        rest, te = stratified_carve(y, TEST_FRACTION, seed=0)
        if len(te) == 0:
            raise HwnasError(f"{root / 'train'} is too small to carve a test split from; add DIR/test/")

        def test():
            return x[te], y[te]
    if "val" in given:
        tr, val = rest, _read(given["val"], classes, shape)
    else:
        keep, va = stratified_carve(y[rest], VAL_FRACTION / (1 - TEST_FRACTION) if "test" not in given else VAL_FRACTION, seed=seed)
        if len(va) == 0:
            raise HwnasError(f"{root / 'train'} is too small to carve a validation split from; add DIR/val/")
        tr, val = rest[keep], (x[rest[va]], y[rest[va]])
    return RawSplits((x[tr], y[tr]), val, test, len(classes), augment=True, classes=tuple(classes))
