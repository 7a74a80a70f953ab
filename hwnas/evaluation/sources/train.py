"""``train[:DATASET]``: real PyTorch training of each candidate (see :mod:`hwnas.accuracy.training`).

The search sees **validation** accuracy only (``error`` = 100 - val accuracy %); the test split stays locked
until :meth:`TrainSource.test_values` is called for the final Pareto front (``hwnas.search.run``)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError
from .base import Source


class _Mean(NamedTuple):
    """The mean of a candidate's trainings (``TrainSource._mean``)."""

    val: float  # validation accuracy, %
    test: float | None  # test accuracy, % (only where the test split was unlocked)
    source: str  # provenance
    checkpoints: list  # one per training, to go on from (None for a diverged one)


class TrainSource(Source):
    """Real PyTorch training of each candidate with the standard recipe (``hwnas.accuracy.training.Recipe``)."""

    kind = "train"
    per_arch = True

    def __init__(self, dataset: str = "digits", epochs: int = 3, batch_size: int = 64, lr: float = 0.05,
                 seed: int = 0, data_dir: str | None = None, download: bool = False, max_train: int | None = None,
                 threads: int = 1, train_device: str = "auto", label_smoothing: float = 0.0,
                 augment: bool | None = None, ema: float | None = None, seeds: int = 1):
        from ...accuracy.training import Recipe

        if int(epochs) < 1:
            raise HwnasError(f"epochs must be >= 1, got {epochs}")
        if int(seeds) < 1:
            raise HwnasError(f"train seeds must be >= 1 (trainings per candidate), got {seeds}")
        if train_device not in ("auto", "cpu", "cuda"):
            raise HwnasError(f"train device must be auto, cpu or cuda, got {train_device!r}")
        self.dataset, self.seed, self.data_dir, self.download = dataset, int(seed), data_dir, bool(download)
        self.threads, self.train_device = int(threads), train_device
        self.recipe = Recipe(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), max_train=max_train,
                             label_smoothing=float(label_smoothing), augment=augment, ema=ema)
        self.seeds = int(seeds)  # trainings per value (seeds seed..seed+seeds-1), their mean accuracy
        self._kept: dict = {}  # arch id -> checkpoints (one per seed) of a warm low-fidelity training

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(arg or settings.get("dataset", "digits"), epochs=settings.get("epochs", 3),
                   batch_size=settings.get("batch_size", 64), lr=settings.get("lr", 0.05),
                   seed=settings.get("seed", 0), data_dir=settings.get("data_dir"),
                   download=settings.get("download", False), max_train=settings.get("max_train"),
                   train_device=settings.get("train_device", "auto"),
                   label_smoothing=settings.get("label_smoothing", 0.0), augment=settings.get("augment"),
                   ema=settings.get("ema"), seeds=settings.get("train_seeds", 1))

    def check(self, space, quantity: str) -> None:
        if self.dataset == "imagefolder" and not self.data_dir:
            raise HwnasError("train:imagefolder needs a data directory (DIR/train/<class>/*.png)")

    def _splits(self, space):
        from ...accuracy.datasets import load_splits

        return load_splits(self.dataset, space.input_shape(), data_dir=self.data_dir, download=self.download,
                           seed=self.seed)

    def _train(self, space, arch: Arch, splits, seed: int, test: bool = False, recipe=None, **go_on):
        from ...accuracy.training import train_arch

        return train_arch(space, arch, splits, recipe or self.recipe, device=self.train_device, seed=int(seed),
                          test=test, threads=self.threads, **go_on)

    def _mean(self, space, arch: Arch, splits, first_seed: int, test: bool = False, checkpoints=None,
              **kw) -> _Mean:
        """The mean accuracies, provenance and checkpoints of ``self.seeds`` trainings with seeds ``first_seed``,
        ``first_seed + 1``, ... (each going on from its checkpoint in ``checkpoints`` where given): ``..., mean of 4
        trainings, seeds 0-3)``."""
        cks = checkpoints or [None] * self.seeds
        runs = [self._train(space, arch, splits, first_seed + k, test=test, checkpoint=cks[k], **kw)
                for k in range(self.seeds)]
        val = float(np.mean([r.val_accuracy for r in runs]))
        tst = float(np.mean([r.test_accuracy for r in runs])) if test else None
        states = [r.checkpoint for r in runs]
        if self.seeds == 1:
            return _Mean(val, tst, runs[0].source, states)
        source = runs[0].source.removesuffix(" diverged").replace(
            f"seed {first_seed})", f"mean of {self.seeds} trainings, seeds {first_seed}-{first_seed + self.seeds - 1})")
        diverged = sum(r.diverged for r in runs)
        return _Mean(val, tst, source + (f" {diverged} of {self.seeds} diverged" if diverged else ""), states)

    def train(self, space, arch: Arch) -> tuple[float, str]:
        """(validation error %, provenance) of one candidate: trained with the full recipe (``seeds`` trainings,
        their mean), going on from the checkpoints a warm ``fidelity_values`` kept for it (the unbroken runs'
        weights on the CPU)."""
        m = self._mean(space, arch, self._splits(space), self.seed, checkpoints=self._kept.pop(arch.arch_id, None))
        return 100.0 - m.val, m.source

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        done = [self.train(space, a) for a in archs]
        return np.array([v for v, _ in done], dtype=float), [s for _, s in done]

    @property
    def full_epochs(self) -> int:
        """Epochs of the full recipe (what ``values`` trains for)."""
        return int(self.recipe.epochs)

    def fidelity_values(self, space, archs: Sequence[Arch], quantity: str, epochs: int,
                        warm: bool = False) -> tuple[np.ndarray, list[str]]:
        """Validation error of ``archs`` trained for ``epochs`` of the full recipe's epochs (a low-fidelity value;
        never the evaluator's value of an arch: it is not cached). Cold (``warm=False``): trained from scratch
        with the same seed and splits, the learning-rate schedule over ``epochs``, provenance ``trained:digits(val,
        1 of 8 epochs, ...)``. Warm: the first ``epochs`` of the full recipe's own schedule, going on from the
        arch's kept checkpoint, and keeping the new one for the next rung or the full value (``train``),
        provenance ``trained:digits(val, epoch 1 of 8, ...)``; ``keep_checkpoints`` drops the others."""
        from dataclasses import replace

        epochs = int(epochs)
        if not 1 <= epochs <= self.full_epochs:
            raise HwnasError(f"fidelity must be 1..{self.full_epochs} epochs, got {epochs}")
        splits, kept = self._splits(space), self._kept
        if warm:
            def start(a):  # a kept checkpoint past this rung cannot give this rung's value: from scratch
                cks = kept.get(a.arch_id)
                return cks if cks is not None and all(c["fit"]["epoch"] <= epochs for c in cks) else None

            results = [self._mean(space, a, splits, self.seed, stop_epoch=epochs, checkpoints=start(a)) for a in archs]
            kept.update((a.arch_id, m.checkpoints) for a, m in zip(archs, results) if None not in m.checkpoints)
            return np.array([100.0 - m.val for m in results], dtype=float), [m.source for m in results]
        full, short = self.recipe, replace(self.recipe, epochs=epochs)
        results = [self._mean(space, a, splits, self.seed, recipe=short) for a in archs]
        tag = f"{epochs} epochs"
        return (np.array([100.0 - m.val for m in results], dtype=float),
                [m.source.replace(tag, f"{epochs} of {full.epochs} epochs", 1) for m in results])

    def keep_checkpoints(self, archs: Sequence[Arch]) -> None:
        """Drop every kept checkpoint but those of ``archs`` (the ones promoted to the next rung)."""
        ids = {a.arch_id for a in archs}
        for k in [k for k in self._kept if k not in ids]:
            del self._kept[k]

    def __getstate__(self):
        """Checkpoints stay in this process (a Ray worker trains from scratch: the same values, more epochs)."""
        return {**self.__dict__, "_kept": {}}

    def test_values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        """Test error of the final front: each arch is retrained with the same seed and recipe (identical on the
        CPU) and scored once on the unlocked test split."""
        splits = self._splits(space).unlock_test()
        results = [self._mean(space, a, splits, self.seed, test=True) for a in archs]
        return (np.array([100.0 - m.test for m in results], dtype=float),
                [m.source.replace("(val+test", "(test", 1) for m in results])

    def seed_values(self, space, archs: Sequence[Arch], quantity: str, seed: int) -> tuple[np.ndarray, list[str]]:
        """Validation error of ``archs`` trained again with another training ``seed`` (with ``seeds`` > 1: the mean
        of seeds ``seed``..``seed + seeds - 1``): same splits (the same validation images), same recipe; only the
        initial weights and the batch order change. How far the search's values move with the seed
        (``hwnas.search.trust``)."""
        splits = self._splits(space)
        results = [self._mean(space, a, splits, int(seed)) for a in archs]
        return np.array([100.0 - m.val for m in results], dtype=float), [m.source for m in results]

    def val_images(self, space) -> int:
        return len(self._splits(space).val)
