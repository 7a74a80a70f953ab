"""``train:imagefolder``: real PNG/JPEG files in the torchvision ImageFolder layout, built in a temp dir."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hwnas.accuracy.datasets import LockedSplitError, load_splits
from hwnas.errors import HwnasError


def make_folder(root, splits=("train",), classes=("cat", "dog", "owl"), n=10, size=12, suffix=".png"):
    """Class k is a bright square in corner k on noise: learnable, and every file a real image."""
    rng = np.random.default_rng(0)
    for split in splits:
        for k, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                r, c = divmod(k % 4, 2)
                a[r * size // 2:(r + 1) * size // 2, c * size // 2:(c + 1) * size // 2] = 230
                Image.fromarray(a).save(d / f"{i}{suffix}")
    return root


def test_train_only_folder_carves_val_and_test(tmp_path):
    make_folder(tmp_path, n=10)
    s = load_splits("imagefolder", (3, 8, 8), data_dir=str(tmp_path), seed=0)
    assert s.num_classes == 3 and s.augment and s.train.x.shape[1:] == (3, 8, 8)
    assert (len(s.train), len(s.val)) == (18, 6)  # 10 per class: 2 test (fixed), 2 val (seeded), 6 train
    assert np.bincount(s.val.y).tolist() == [2, 2, 2]
    with pytest.raises(LockedSplitError):
        s.test()
    assert np.bincount(s.unlock_test().test().y).tolist() == [2, 2, 2]
    s1 = load_splits("imagefolder", (3, 8, 8), data_dir=str(tmp_path), seed=1)
    a, b = s.unlock_test().test().x, s1.unlock_test().test().x  # the same images across seeds (standardised with
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9999  # each seed's train statistics)
    grey = load_splits("imagefolder", (1, 16, 16), data_dir=str(tmp_path))
    assert grey.train.x.shape[1:] == (1, 16, 16)


def test_given_val_and_test_folders_are_used_and_test_read_lazily(tmp_path):
    make_folder(tmp_path, splits=("train", "val", "test"), n=4, suffix=".jpg")
    s = load_splits("imagefolder", (3, 8, 8), data_dir=str(tmp_path))
    assert (len(s.train), len(s.val)) == (12, 12)
    (tmp_path / "test" / "cat" / "0.jpg").write_bytes(b"broken")  # noticed only when the test split is read
    with pytest.raises(HwnasError, match=r"image .*0\.jpg is unreadable"):
        s.unlock_test().test()


def test_a_search_space_trains_on_an_imagefolder(tmp_path):
    from hwnas.accuracy.training import Recipe, train_arch
    from hwnas.spaces import create_space

    make_folder(tmp_path, n=10)
    space = create_space("nb201", C=4, N=1, input_size=8, num_classes=3)
    s = load_splits("imagefolder", space.input_shape(), data_dir=str(tmp_path))
    r = train_arch(space, space.sample(np.random.default_rng(0)), s, Recipe(epochs=1, batch_size=8), device="cpu")
    assert 0 <= r.val_accuracy <= 100 and r.source.startswith("trained:imagefolder(val, 1 epochs")


@pytest.mark.parametrize("build, match", [
    (lambda root: None, "needs `data_dir`"),
    (lambda root: root.mkdir(), "has no train/ folder"),
    (lambda root: (root / "train").mkdir(parents=True), "has no class folders"),
    (lambda root: make_folder(root, classes=("only",)), r"only one class \(only\)"),
    (lambda root: (make_folder(root), (root / "train" / "empty").mkdir()), "holds no .png/.jpg/.jpeg images"),
    (lambda root: (make_folder(root), (root / "train" / "cat" / "bad.png").write_bytes(b"nope")), r"bad\.png is unreadable"),
    (lambda root: (make_folder(root), make_folder(root, ("val",), classes=("cat", "dog"))), "classes .* differ from"),
    (lambda root: make_folder(root, n=1), "too small to carve a test split"),
])
def test_bad_folders_get_one_clear_error(tmp_path, build, match):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(HwnasError, match=match):
        load_splits("imagefolder", (3, 8, 8), data_dir=None if "data_dir" in match else str(root))
