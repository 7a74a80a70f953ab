"""Real PyTorch training of one candidate, from scratch, with the standard recipe.

Recipe (:class:`Recipe`): SGD + nesterov momentum 0.9, weight decay 5e-4, cosine learning rate over all steps,
optional label smoothing; random crop (padding H/8) + horizontal flip for natural RGB data (CIFAR-10, image
folders), off for digits. On CUDA: automatic mixed precision (fp16 autocast + gradient scaling) and
``channels_last``. On the CPU training is deterministic per seed: weights, batch order and augmentation all come
from ``seed``, with ``threads`` intra-op threads (1 by default, so parallel executors do not oversubscribe).

:func:`train_arch` selects on validation data: it returns validation accuracy, and test accuracy only when the
caller passes ``test=True`` with splits the final step unlocked (``Splits.unlock_test()``). Every result carries
its provenance, e.g. ``trained:digits(val, 2 epochs, short recipe, seed 0)``; a recipe under
:data:`FULL_EPOCHS` epochs is labelled ``short recipe`` (a low-fidelity estimate, fine for ranking within a search,
not a number to ship).

``Recipe(ema=D)`` scores a bias-corrected exponential moving average of the weights over the optimiser steps
(decay ``D`` per step; batch-norm buffers from the live model, or re-estimated on ``ema_bn_images`` train images)
instead of the last weights: less end-of-training SGD noise at no training cost (docs/accuracy.md, issue #22).
The training itself, and the checkpoint it returns, are the same as without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwnasError, ParameterError, ParametersError

FULL_EPOCHS = 50
TRAIN_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool | None = None  # None: the data set's default (on for natural RGB images, off for digits)
    max_train: int | None = None  # train on a seeded subset of at most this many images
    ema: float | None = None  # evaluate an exponential moving average of the weights (this decay per step)
    ema_bn_images: int = 0  # with ema: batch-norm statistics re-estimated on this many train images (0: live ones)

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ParameterError("epochs", f"must be >= 1, got {self.epochs}")
        if int(self.batch_size) < 2:
            raise ParameterError("batch_size", f"must be >= 2 (batch norm), got {self.batch_size}")
        if not float(self.lr) > 0:
            raise ParameterError("lr", f"must be > 0, got {self.lr}")
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise HwnasError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.ema is not None and not 0.0 < float(self.ema) < 1.0:
            raise HwnasError(f"ema decay per step must be in (0, 1), got {self.ema}")
        if int(self.ema_bn_images) < 0 or (self.ema_bn_images and self.ema is None):
            raise HwnasError(f"ema_bn_images must be >= 0 and needs ema, got {self.ema_bn_images}")

    @property
    def short(self) -> bool:
        return int(self.epochs) < FULL_EPOCHS


@dataclass(frozen=True)
class TrainResult:
    val_accuracy: float  # %
    test_accuracy: float | None  # %, only when the final step asked for it
    source: str  # provenance, e.g. trained:digits(val, 2 epochs, short recipe, seed 0)
    seconds: float
    device: str
    diverged: bool = False
    checkpoint: dict | None = field(default=None, repr=False, compare=False)  # to go on training from (train_arch)


def resolve_device(device: str = "auto") -> str:
    import torch

    if device not in TRAIN_DEVICES:
        raise ParameterError("train_device", f"{device!r}: choose one of {', '.join(TRAIN_DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("train_device", "cuda: torch sees no CUDA GPU here (use auto or cpu)")
    return device


def describe(dataset: str, recipe: Recipe, seed: int, device: str, split: str = "val", augment: bool = False) -> str:
    parts = [split, f"{recipe.epochs} epochs"]
    if recipe.short:
        parts.append("short recipe")
    if augment:
        parts.append("crop+flip")
    if recipe.label_smoothing:
        parts.append(f"label smoothing {recipe.label_smoothing:g}")
    if recipe.max_train is not None:
        parts.append(f"max {recipe.max_train} train images")
    if recipe.ema is not None:
        parts.append(f"weight ema {recipe.ema:g}" + (f" bn on {recipe.ema_bn_images} images"
                                                       if recipe.ema_bn_images else ""))
    if device == "cuda":
        parts.append("cuda amp")
    parts.append(f"seed {seed}")
    return f"trained:{dataset}({', '.join(parts)})"


def augment_batch(x, generator=None):
    """Random crop (zero padding H/8, at least 1 px) and horizontal flip, per image, vectorised (CPU or GPU)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dev = x.device
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _rng_state(device: str) -> dict:
    import torch

    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if device == "cuda" else None}


def _set_rng_state(state: dict, device: str) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if device == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"])


class _Ema:
    """Bias-corrected exponential moving average of a model's parameters over the optimiser steps (the
    average starts at zero and is divided by ``1 - decay**steps``, so the initial weights carry no weight).
    Batch-norm buffers are not averaged: :meth:`averaged` takes them from the live model."""

    def __init__(self, model, decay: float, state: dict | None = None):
        self.decay = float(decay)
        self.steps = 0 if state is None else int(state["steps"])
        self.shadow = {k: (v.detach() if state is None else state["shadow"][k]).to(v.device, copy=True)
                       for k, v in model.named_parameters()}  # a copy: going on leaves the checkpoint as it was
        if state is None:
            for v in self.shadow.values():
                v.zero_()

    def update(self, model) -> None:
        import torch

        self.steps += 1
        with torch.no_grad():
            for k, v in model.named_parameters():
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)

    def averaged(self, model):
        """A copy of ``model`` with the averaged parameters (the live model itself before any step)."""
        import copy

        import torch

        if self.steps == 0:
            return model
        out = copy.deepcopy(model)
        scale = 1.0 / (1.0 - self.decay ** self.steps)
        with torch.no_grad():
            for k, v in out.named_parameters():
                v.copy_(self.shadow[k] * scale)
        return out

    def state(self) -> dict:
        return {"steps": self.steps, "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()}}


def _averaged(model, ema: _Ema, x, recipe: Recipe, device: str):
    """The model to score under ``recipe.ema``: the averaged weights, batch norm re-estimated on the first
    ``recipe.ema_bn_images`` training images ``x`` (a CPU tensor) when asked."""
    out = ema.averaged(model)
    n = int(recipe.ema_bn_images)
    if n and out is not model:
        from .supernet.evaluate import recalibrate_bn

        recalibrate_bn(out, x[:n].to(device))
    return out


def _fit(model, x_tr, y_tr, recipe: Recipe, device: str, augment: bool, state: dict | None = None,
         stop_epoch: int | None = None) -> tuple[bool, dict | None, _Ema | None]:
    """Train ``model`` in place on (x_tr, y_tr) (CPU tensors): epochs ``state["epoch"]`` (0 without ``state``) up
    to ``stop_epoch`` (the recipe's epochs by default) of the recipe's schedule. Returns (False when the loss
    diverged; the state to go on from: optimiser, schedule, random generator, next epoch, weight average; the
    weight average of ``recipe.ema``, None without it)."""
    import torch

    cuda = device == "cuda"
    n, bs = len(x_tr), int(recipe.batch_size)
    steps = int(recipe.epochs) * max(1, -(-n // bs))
    opt = torch.optim.SGD(model.parameters(), lr=float(recipe.lr), momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    first = 0
    if state is not None:  # the same optimiser momentum, learning rate and random stream as an unbroken run
        import copy

        # a copy: SGD would update the checkpoint's own momentum buffers in place (load_state_dict keeps tensors
        # of the right dtype and device as they are), and a second run from the same checkpoint would differ
        opt.load_state_dict(copy.deepcopy(state["opt"]))
        sched.load_state_dict(state["sched"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], device)
        first = int(state["epoch"])
    last = int(recipe.epochs) if stop_epoch is None else int(stop_epoch)
    ema = None if recipe.ema is None else _Ema(model, recipe.ema, state and state.get("ema"))
    if cuda:
        x_tr, y_tr = x_tr.to(device, non_blocking=True), y_tr.to(device, non_blocking=True)
    model.train()
    for _ in range(first, last):
        if not _epoch(model, x_tr, y_tr, recipe, opt, sched, scaler, augment, ema):
            return False, None, None
    return True, {"epoch": last, "opt": opt.state_dict(), "sched": sched.state_dict(),
                  "scaler": scaler.state_dict() if scaler is not None else None, "rng": _rng_state(device),
                  "ema": ema.state() if ema is not None else None}, ema


def _epoch(model, x_tr, y_tr, recipe: Recipe, opt, sched, scaler, augment: bool, ema: _Ema | None = None) -> bool:
    """One pass over the training images in a random order; False when the loss diverged."""
    import torch
    import torch.nn.functional as F

    cuda = scaler is not None
    n, bs = len(x_tr), int(recipe.batch_size)
    order = torch.randperm(n).to(x_tr.device)
    for i in range(0, n, bs):
        idx = order[i:i + bs]
        if len(idx) < 2:
            continue  # batch norm needs two samples
        xb, yb = x_tr[idx], y_tr[idx]
        if augment:
            xb = augment_batch(xb)
        if cuda:
            xb = xb.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            loss = F.cross_entropy(model(xb), yb, label_smoothing=float(recipe.label_smoothing))
        if not torch.isfinite(loss):
            return False
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
    return True


def _accuracy(model, x, y, device: str) -> float:
    import torch

    model.eval()
    correct = 0
    cuda = device == "cuda"
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
        for i in range(0, len(x), 256):
            xb = torch.from_numpy(x[i:i + 256])
            if cuda:
                xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            correct += int((model(xb).argmax(1).cpu() == torch.from_numpy(y[i:i + 256])).sum())
    return 100.0 * correct / len(x)


def _chance(y: np.ndarray) -> float:
    return 100.0 * float(np.bincount(y).max()) / len(y)


def _check_classes(space, name: str, num_classes: int) -> None:
    k = getattr(space, "num_classes", None)
    if k is not None and k != num_classes:
        raise ParametersError(f"space {space.name} has {k} classes but dataset {name} has "
                              f"{num_classes}: add `space_opt` num_classes={num_classes}")


def _train(space, arch, x_tr, y_tr, eval_sets, recipe: Recipe, device: str, seed: int, augment: bool,
           threads: int, checkpoint: dict | None = None, stop_epoch: int | None = None):
    """Build ``arch`` from ``seed``, train it, return (accuracy (%) on each (x, y) of ``eval_sets``, whether it
    trained (a diverged run scores chance), the checkpoint to go on from). ``checkpoint`` (from a run of the same
    arch, seed and recipe stopped at ``stop_epoch``): go on from it; on the CPU the result is the unbroken run's."""
    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device == "cuda" else []):
            torch.manual_seed(seed)
            model = space.build(arch)
            x = torch.from_numpy(x_tr)
            y = torch.from_numpy(y_tr)
            if recipe.max_train is not None and int(recipe.max_train) < len(x):
                keep = torch.randperm(len(x))[: int(recipe.max_train)]
                x, y = x[keep], y[keep]
            if checkpoint is not None:
                model.load_state_dict(checkpoint["model"])
            if device == "cuda":
                model = model.to(device, memory_format=torch.channels_last)
            ok, state, ema = _fit(model, x, y, recipe, device, augment, checkpoint and checkpoint["fit"], stop_epoch)
            if not ok:
                return [_chance(ys) for _, ys in eval_sets], False, None
            scored = model if ema is None else _averaged(model, ema, x, recipe, device)
            accs = [_accuracy(scored, xs, ys, device) for xs, ys in eval_sets]
            return accs, True, {"model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                                "fit": state}
    finally:
        torch.set_num_threads(old_threads)


def train_arch(space, arch, splits, recipe: Recipe | None = None, device: str = "auto", seed: int = 0,
               test: bool = False, threads: int = 1, stop_epoch: int | None = None,
               checkpoint: dict | None = None) -> TrainResult:
    """Train ``arch`` from scratch on ``splits.train``; validation accuracy, plus test accuracy when ``test``
    (which needs ``splits.unlock_test()``: the search itself cannot read test images). ``stop_epoch``: stop
    after that many epochs of the recipe's schedule (a low-fidelity value, labelled ``epoch k of E``);
    ``checkpoint``: a ``TrainResult.checkpoint`` of the same arch, seed and recipe to go on from."""
    recipe = recipe or Recipe()
    if stop_epoch is not None and not 1 <= int(stop_epoch) <= int(recipe.epochs):
        raise HwnasError(f"stop_epoch must be 1..{recipe.epochs}, got {stop_epoch}")
    dev = resolve_device(device)
    _check_classes(space, splits.name, splits.num_classes)
    augment = splits.augment if recipe.augment is None else bool(recipe.augment)
    sets = [(splits.val.x, splits.val.y)]
    if test:
        t = splits.test()  # raises LockedSplitError unless unlocked
        sets.append((t.x, t.y))
    start = time.perf_counter()
    accs, ok, state = _train(space, arch, splits.train.x, splits.train.y, sets, recipe, dev, int(seed), augment,
                             threads, checkpoint, stop_epoch)
    source = describe(splits.name, recipe, int(seed), dev, "val+test" if test else "val", augment)
    if stop_epoch is not None and int(stop_epoch) < int(recipe.epochs):
        source = source.replace(f"{recipe.epochs} epochs", f"epoch {int(stop_epoch)} of {recipe.epochs}", 1)
    return TrainResult(accs[0], accs[1] if test else None, source if ok else source + " diverged",
                       time.perf_counter() - start, dev, diverged=not ok, checkpoint=state)


def train_and_test(space, arch, data, epochs: int = 3, batch_size: int = 64, lr: float = 0.05, seed: int = 0,
                   max_train: int | None = None, threads: int = 1) -> float:
    """Old API (selects on the test split; kept until callers move to :func:`train_arch`): train ``arch`` on
    ``data.x_train`` on the CPU, no augmentation; return accuracy in % on ``data.x_test``."""
    _check_classes(space, data.name, data.num_classes)
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr, max_train=max_train, augment=False)
    accs, _, _ = _train(space, arch, data.x_train, data.y_train, [(data.x_test, data.y_test)], recipe, "cpu", int(seed),
                     False, threads)
    return accs[0]
