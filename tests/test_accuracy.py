"""Accuracy you can trust: three splits with a locked, lazy test split; the standard recipe; a deterministic CPU
path; a real CUDA path (skipped without a GPU); a restricted unpickler for CIFAR-10."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from hwnas.accuracy.datasets import LockedSplitError, load_splits, stratified_carve
from hwnas.accuracy.training import FULL_EPOCHS, Recipe, augment_batch, resolve_device, train_arch
from hwnas.errors import HwnasError
from hwnas.spaces import create_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def space():
    return create_space("nb201", C=4, N=1, input_size=8)


def write_cifar(folder, n_train=100, n_test=20, seed=0):
    """A CIFAR-10 python-pickle directory with random images (10 of every class in the training batch)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [("data_batch_1", n_train), ("test_batch", n_test)]:
        with (folder / name).open("wb") as fh:
            pickle.dump({b"batch_label": b"fake", b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                         b"labels": [int(i % 10) for i in range(n)], b"filenames": [b"x.png"] * n}, fh)
    return folder


# ------------------------------------------------------------------------------------------------ splits
def test_stratified_carve_is_a_seeded_stratified_partition():
    y = np.repeat(np.arange(5), 20)
    keep, carve = stratified_carve(y, 0.2, seed=3)
    assert sorted(np.concatenate([keep, carve])) == list(range(100))
    assert np.bincount(y[carve]).tolist() == [4] * 5
    assert np.array_equal(carve, stratified_carve(y, 0.2, seed=3)[1])
    assert not np.array_equal(carve, stratified_carve(y, 0.2, seed=4)[1])
    keep, carve = stratified_carve(np.array([0, 1, 1]), 0.9, seed=0)  # a class is never emptied
    assert set(np.array([0, 1, 1])[keep]) == {0, 1}


def test_digits_splits_sizes_seeded_val_fixed_test():
    s0 = load_splits("digits", (1, 8, 8), seed=0)
    s1 = load_splits("digits", (1, 8, 8), seed=1)
    assert (len(s0.train), len(s0.val)) == (1079, 359) and s0.num_classes == 10 and not s0.augment
    for part in (s0.train, s0.val):
        assert np.bincount(part.y).min() >= 30  # every class, stratified
    assert not np.array_equal(s0.val.x, s1.val.x)  # val is seeded
    t0, t1 = s0.unlock_test().test(), s1.unlock_test().test()
    assert len(t0) == 359 and np.array_equal(t0.y, t1.y)  # test is fixed: no seed trains on it
    assert abs(float(s0.train.x.mean())) < 1e-4  # standardised with train statistics


def test_test_split_is_locked_until_the_final_step(space):
    s = load_splits("digits", space.input_shape())
    with pytest.raises(LockedSplitError, match="test split is locked"):
        s.test()
    with pytest.raises(LockedSplitError):
        train_arch(space, space.from_string(CELL), s, Recipe(epochs=1, max_train=64), device="cpu", test=True)
    unlocked = s.unlock_test()
    assert len(unlocked.test()) == 359
    with pytest.raises(LockedSplitError):  # the cached object stays locked
        load_splits("digits", space.input_shape()).test()


def test_test_images_are_not_read_before_the_final_step(tmp_path, space):
    """A search trains on train, selects on val and never opens test_batch: a corrupt one goes unnoticed until
    the final step unlocks the test split."""
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    (folder / "test_batch").write_bytes(b"not a pickle")
    s = load_splits("cifar10", (3, 8, 8), data_dir=str(tmp_path))
    assert (len(s.train), len(s.val), s.augment) == (90, 10, True)
    r = train_arch(space, space.from_string(CELL), s, Recipe(epochs=1), device="cpu")
    assert r.test_accuracy is None and r.source.startswith("trained:cifar10(val, 1 epochs, short recipe, crop+flip")
    with pytest.raises(HwnasError, match="test_batch is unreadable"):
        s.unlock_test().test()


# ------------------------------------------------------------------------------------------------ training
def test_cpu_training_is_deterministic_per_seed_and_labelled(space):
    s = load_splits("digits", space.input_shape())
    arch = space.from_string(CELL)
    recipe = Recipe(epochs=1, batch_size=32, max_train=256)
    a = train_arch(space, arch, s, recipe, device="cpu", seed=0)
    b = train_arch(space, arch, s, recipe, device="cpu", seed=0)
    c = train_arch(space, arch, s, recipe, device="cpu", seed=1)
    assert a.val_accuracy == b.val_accuracy and a.device == "cpu" and 10 < a.val_accuracy <= 100
    # the seed reaches the training (seed 1 builds other initial weights and another subset: a different score on
    # the same data), and the label says which seed it was
    assert c.val_accuracy != a.val_accuracy and c.source.endswith("seed 1)")
    assert a.source == "trained:digits(val, 1 epochs, short recipe, max 256 train images, seed 0)"
    full = Recipe(epochs=FULL_EPOCHS, label_smoothing=0.1)
    assert "short" not in train_arch.__globals__["describe"]("digits", full, 0, "cpu")
    t = train_arch(space, arch, s.unlock_test(), recipe, device="cpu", seed=0, test=True)
    assert t.val_accuracy == a.val_accuracy and 0 <= t.test_accuracy <= 100 and "(val+test," in t.source


def test_weight_ema_scores_the_bias_corrected_average_and_leaves_training_alone(space):
    """Recipe(ema=D): the score is that of the exponential moving average of the weights over the steps (batch
    norm buffers from the live model), deterministic per seed; the training itself (live weights) is unchanged."""
    import torch

    from hwnas.accuracy.training import _accuracy, _Ema

    # the average itself: after steps p1, p2 it is (d (1 - d) p1 + (1 - d) p2) / (1 - d^2), no initial weights
    lin = torch.nn.Linear(1, 1, bias=False)
    ema = _Ema(lin, 0.9)
    for value in (1.0, 3.0):
        lin.weight.data.fill_(value)
        ema.update(lin)
    assert ema.averaged(lin).weight.item() == pytest.approx((0.9 * 0.1 * 1 + 0.1 * 3) / (1 - 0.81))
    assert lin.weight.item() == 3.0  # the live model is not touched

    s = load_splits("digits", space.input_shape())
    arch = space.from_string(CELL)
    plain = Recipe(epochs=2, batch_size=32, max_train=256)
    avg = Recipe(epochs=2, batch_size=32, max_train=256, ema=0.9)
    p = train_arch(space, arch, s, plain, device="cpu", seed=0)
    a = train_arch(space, arch, s, avg, device="cpu", seed=0)
    b = train_arch(space, arch, s, avg, device="cpu", seed=0)
    assert a.val_accuracy == b.val_accuracy and "weight ema 0.9, seed 0)" in a.source and "ema" not in p.source
    assert p.checkpoint["fit"]["ema"] is None
    live = a.checkpoint["model"]
    for k, v in p.checkpoint["model"].items():  # same training: EMA only changes what is scored
        assert torch.equal(v, live[k]), k
    state = a.checkpoint["fit"]["ema"]
    assert state["steps"] == 2 * 8  # 256 images, batch 32, 2 epochs
    scale = 1.0 / (1.0 - 0.9 ** state["steps"])
    model = space.build(arch)
    model.load_state_dict(live)
    assert _accuracy(model, s.val.x, s.val.y, "cpu") == p.val_accuracy
    differ = 0
    with torch.no_grad():
        for k, v in model.named_parameters():
            differ += not torch.allclose(v, state["shadow"][k] * scale)
            v.copy_(state["shadow"][k] * scale)
    assert differ > 0  # the averaged weights are not the live ones
    assert _accuracy(model, s.val.x, s.val.y, "cpu") == a.val_accuracy
    for k, v in b.checkpoint["fit"]["ema"]["shadow"].items():
        assert torch.equal(v, state["shadow"][k]), k
    # going on from a checkpoint carries the average: the same score as the unbroken run
    half = train_arch(space, arch, s, avg, device="cpu", seed=0, stop_epoch=1)
    kept = {k: v.clone() for k, v in half.checkpoint["fit"]["ema"]["shadow"].items()}
    rest = train_arch(space, arch, s, avg, device="cpu", seed=0, checkpoint=half.checkpoint)
    assert rest.val_accuracy == a.val_accuracy
    for k, v in half.checkpoint["fit"]["ema"]["shadow"].items():  # the checkpoint's average is not consumed
        assert torch.equal(v, kept[k]), k
    with pytest.raises(HwnasError, match="^ema decay per step must be in"):
        Recipe(ema=1.0)


def test_a_checkpoint_is_not_consumed_by_going_on_from_it(space):
    """Two runs from the same checkpoint give the unbroken run's result both times (the optimiser's momentum
    buffers were shared with the checkpoint: the second run went on from momentum the first had moved)."""
    import torch

    s = load_splits("digits", space.input_shape())
    arch = space.from_string(CELL)
    recipe = Recipe(epochs=3, batch_size=32, max_train=256)
    whole = train_arch(space, arch, s, recipe, device="cpu", seed=0)
    half = train_arch(space, arch, s, recipe, device="cpu", seed=0, stop_epoch=1)
    momentum = [v["momentum_buffer"].clone() for v in half.checkpoint["fit"]["opt"]["state"].values()]
    first = train_arch(space, arch, s, recipe, device="cpu", seed=0, checkpoint=half.checkpoint)
    second = train_arch(space, arch, s, recipe, device="cpu", seed=0, checkpoint=half.checkpoint)
    assert first.val_accuracy == second.val_accuracy == whole.val_accuracy
    for k, v in first.checkpoint["model"].items():
        assert torch.equal(v, second.checkpoint["model"][k]), k
    kept = [v["momentum_buffer"] for v in half.checkpoint["fit"]["opt"]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, kept))


def test_weight_ema_can_re_estimate_batch_norm_on_train_images(space):
    """Recipe(ema=D, ema_bn_images=N): the averaged weights are scored with batch-norm statistics recomputed on
    the first N training images (not the live model's), and the label says so."""
    import copy

    import torch

    from hwnas.accuracy.supernet.evaluate import recalibrate_bn
    from hwnas.accuracy.training import _accuracy

    s = load_splits("digits", space.input_shape())
    arch = space.from_string(CELL)
    recipe = Recipe(epochs=2, batch_size=32, max_train=256, ema=0.9, ema_bn_images=128)
    r = train_arch(space, arch, s, recipe, device="cpu", seed=0)
    assert r.source.endswith("weight ema 0.9 bn on 128 images, seed 0)")
    state = r.checkpoint["fit"]["ema"]
    model = space.build(arch)
    model.load_state_dict(r.checkpoint["model"])
    with torch.no_grad():
        for k, v in model.named_parameters():
            v.copy_(state["shadow"][k] / (1.0 - 0.9 ** state["steps"]))
    copied = _accuracy(model, s.val.x, s.val.y, "cpu")  # the averaged weights with the live batch-norm buffers
    torch.manual_seed(0)
    space.build(arch)  # the seeded initial weights, then the seeded max_train subset, as training draws them
    keep = torch.randperm(len(s.train.x))[:256]
    fresh = copy.deepcopy(model)
    recalibrate_bn(fresh, torch.from_numpy(s.train.x)[keep][:128])
    assert _accuracy(fresh, s.val.x, s.val.y, "cpu") == r.val_accuracy != copied
    with pytest.raises(HwnasError, match="needs ema"):
        Recipe(ema_bn_images=64)


def test_recipe_and_device_errors():
    with pytest.raises(HwnasError, match="^epochs must be >= 1"):
        Recipe(epochs=0)
    with pytest.raises(HwnasError, match="^lr must be > 0"):
        Recipe(lr=0)
    with pytest.raises(HwnasError, match="label smoothing"):
        Recipe(label_smoothing=1.5)
    with pytest.raises(HwnasError, match="^train_device 'tpu'"):
        resolve_device("tpu")
    import torch

    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(HwnasError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_augmentation_crops_and_flips_and_is_off_for_digits(space):
    import torch

    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    y = augment_batch(x)
    assert y.shape == x.shape
    for i in range(2):  # each output is a shifted (zero-padded) window of its input, maybe mirrored
        vals = set(y[i].flatten().tolist()) - {0.0}
        assert vals <= set(x[i].flatten().tolist())
    seen_flip = False
    for seed in range(20):
        torch.manual_seed(seed)
        z = augment_batch(x[:1])
        row = [v for v in z[0, 0, 4].tolist() if v]
        seen_flip |= row != sorted(row)
    assert seen_flip
    s = load_splits("digits", space.input_shape())
    r = train_arch(space, space.from_string(CELL), s, Recipe(epochs=1, max_train=64), device="cpu")
    assert "crop+flip" not in r.source
    r = train_arch(space, space.from_string(CELL), s, Recipe(epochs=1, max_train=64, augment=True), device="cpu")
    assert "crop+flip" in r.source


def test_cuda_path_trains_with_amp_and_channels_last(space):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    s = load_splits("digits", space.input_shape())
    r = train_arch(space, space.from_string(CELL), s.unlock_test(), Recipe(epochs=2, label_smoothing=0.1),
                   device="cuda", seed=0, test=True)
    assert r.device == "cuda" and "cuda amp" in r.source and not r.diverged
    assert r.val_accuracy > 30 and r.test_accuracy > 30


# ------------------------------------------------------------------------------------------------ safe loading
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickles_are_read_by_a_restricted_unpickler(tmp_path):
    from hwnas.accuracy.safe_pickle import UnsafePickleError, load_cifar_batch

    folder = write_cifar(tmp_path / "c")
    d = load_cifar_batch(folder / "data_batch_1")
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (100, 3072) and d[b"batch_label"] == b"fake"
    marker = tmp_path / "pwned"
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": _Evil(marker), b"labels": [0]}, fh)
    with pytest.raises(UnsafePickleError, match=r"refused to unpickle (posix|os|nt)\.system"):
        load_cifar_batch(folder / "data_batch_1")
    with pytest.raises(HwnasError, match="refused to unpickle"):
        load_splits("cifar10", (3, 8, 8), data_dir=str(tmp_path / "c"))
    assert not marker.exists()


class _Bomb:
    """A pickle payload that calls an allowed numpy constructor with a shape of 10**11 elements."""

    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        if self.how == "ndarray":
            return (np.ndarray, ((10**11,),))  # numpy.ndarray(shape): 745 GiB of float64
        return (np.zeros(0).__reduce__()[0], (np.ndarray, (10**11,), b"b"))  # _reconstruct(ndarray, shape, dtype)


@pytest.mark.parametrize("how", ["ndarray", "reconstruct"])
def test_a_cifar_pickle_cannot_ask_for_a_huge_array(tmp_path, how):
    """Issue 23 item 13: the array is refused before it is allocated (before: MemoryError, or worse)."""
    from hwnas.accuracy.safe_pickle import load_cifar_batch

    folder = write_cifar(tmp_path / "c")
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": _Bomb(how), b"labels": [0]}, fh)
    with pytest.raises(HwnasError, match="refused to unpickle (a call of numpy.ndarray|an array of 100,000,000,000 b)"):
        load_cifar_batch(folder / "data_batch_1")
    with pytest.raises(HwnasError, match="refused to unpickle"):
        load_splits("cifar10", (3, 8, 8), data_dir=str(tmp_path / "c"))


@pytest.mark.parametrize("labels, needle", [
    ([59] + [0] * 99, "label 59 (image 0) is not a class 0-9"),
    ([0] * 50 + [-1] * 50, "label -1 (image 50) is not a class 0-9 (50 such labels)"),
    ([0.5] * 100, "label 0.5 (image 0)"),
    ([0] * 99, "holds 100 images but 99 labels"),
])
def test_cifar_labels_outside_the_ten_classes_are_one_clear_error(tmp_path, labels, needle):
    """Issue 23 item 13: before, label 59 reached training (IndexError: Target 59 is out of bounds)."""
    folder = write_cifar(tmp_path / "c")
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": np.zeros((100, 3072), np.uint8), b"labels": labels}, fh)
    with pytest.raises(HwnasError, match=re.escape(needle)):
        load_splits("cifar10", (3, 8, 8), data_dir=str(tmp_path / "c"))


@pytest.mark.parametrize("data, needle", [
    (np.zeros((100, 3072), np.float64), "'data' must be uint8 images of 3 x 32 x 32 bytes, got a float64 array"),
    (np.zeros((100, 3000), np.uint8), "got a uint8 array of shape (100, 3000)"),
    ([[0] * 3072] * 100, "got list"),
])
def test_cifar_data_of_another_shape_is_one_clear_error(tmp_path, data, needle):
    folder = write_cifar(tmp_path / "c")
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": data, b"labels": [0] * 100}, fh)
    with pytest.raises(HwnasError, match=re.escape(needle)):
        load_splits("cifar10", (3, 8, 8), data_dir=str(tmp_path / "c"))


def test_cifar_bad_labels_from_the_command_line_are_one_line(tmp_path, capsys):
    from hwnas.cli.main import main

    folder = write_cifar(tmp_path / "c")
    with (folder / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": np.zeros((100, 3072), np.uint8), b"labels": [59] * 100}, fh)
    rc = main(["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt",
               "input_size=8", "--objective", "error", "--accuracy", "train", "--dataset", "cifar10", "--data-dir",
               str(tmp_path / "c"), "--epochs", "1", "--budget", "1", "--strategy", "random", "--no-progress",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: ") and "label 59 (image 0) is not a class 0-9" in err, err


def test_no_other_pickle_load_in_the_package():
    from pathlib import Path

    import hwnas

    root = Path(hwnas.__file__).parent
    hits = [p for p in root.rglob("*.py") if "pickle.load" in p.read_text() or "pickle.Unpickler" in p.read_text()]
    assert [p.name for p in hits] == ["safe_pickle.py"]


def test_digits_read_without_importing_sklearn_equal_load_digits():
    """The digits file is read directly (no scikit-learn import at run time); it must be exactly load_digits."""
    from sklearn.datasets import load_digits

    from hwnas.accuracy.datasets import _digits_arrays

    images, target = _digits_arrays()
    d = load_digits()
    assert images.shape == (1797, 8, 8) and np.array_equal(images, d.images) and np.array_equal(target, d.target)
