"""Training a weight-sharing supernet, with a checkpoint after every epoch that a later run resumes from.

Reproducible per seed on the CPU: the initial weights come from ``seed``; each epoch's batch order and sampled
paths come from (``seed``, epoch) alone, and the checkpoint holds the weights, optimizer and LR-schedule state,
so a run killed (Ctrl-C, SIGKILL) and resumed ends with the same weights as an unbroken one. Checkpoints are
written atomically (a kill while writing leaves the previous epoch's file intact).

Checkpoint (``torch.save`` of a dict of plain values and tensors, readable with ``weights_only=True``):
``format``, ``space``, ``space_config``, ``dataset``, ``recipe``, ``epochs_done``, ``complete``, ``history``
(per epoch: mean loss, seconds, device), ``model``, ``optimizer``, ``scheduler`` and ``hash`` (SHA-256 of the
weights and the settings above, first 12 hex digits; the provenance of every accuracy read from it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import HwnasError, ParameterError, ParametersError
from ...fileio import atomic_path, check_writable, now_iso
from .data import VAL_FRACTION, splits_for

FORMAT = "hwnas-supernet/1"
SUPERNET_SPACES = ("nb201", "mobilenet")
DEFAULT_RECIPE = {"epochs": 10, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "seed": 0,
                  "n_random": 2, "val_fraction": VAL_FRACTION}


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op threads (tiny convolutions on a shared CPU are fastest on one)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def build_supernet(space):
    """The weight-sharing supernet of ``space`` (nb201 or mobilenet), randomly initialised."""
    if space.name == "nb201":
        from .nb201 import NB201Supernet

        return NB201Supernet(space)
    if space.name == "mobilenet":
        from .mobilenet import MobileNetSupernet

        return MobileNetSupernet(space)
    raise HwnasError(f"no supernet for space {space.name!r}; supernets exist for {', '.join(SUPERNET_SPACES)}")


def make_recipe(**overrides) -> dict:
    unknown_keys = set(overrides) - set(DEFAULT_RECIPE)
    if unknown_keys:
        raise HwnasError(f"unknown supernet recipe keys {sorted(unknown_keys)}; known: {', '.join(DEFAULT_RECIPE)}")
    recipe = dict(DEFAULT_RECIPE)
    recipe.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("epochs", "batch_size", "seed", "n_random"):
        recipe[key] = int(recipe[key])
    for key in ("lr", "momentum", "weight_decay", "val_fraction"):
        recipe[key] = float(recipe[key])
    if recipe["epochs"] < 1 or recipe["batch_size"] < 2 or recipe["lr"] <= 0 or recipe["n_random"] < 0:
        raise HwnasError("supernet recipe: need epochs >= 1, batch_size >= 2, lr > 0, n_random >= 0")
    if recipe["val_fraction"] != VAL_FRACTION:
        raise HwnasError(f"supernet recipe: the validation split is the data set's fixed one ({VAL_FRACTION})")
    return recipe


def resolve_device(name: str) -> str:
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("train_device", "cuda: no CUDA device is available (use auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise ParameterError("train_device", f"{name!r}: expected auto, cpu or cuda")
    return name


def weights_hash(meta: dict, model_state: dict) -> str:
    """SHA-256 (12 hex digits) of the settings in ``meta`` and every tensor of ``model_state``, in key order."""
    h = hashlib.sha256(json.dumps({k: meta[k] for k in ("space", "space_config", "dataset", "recipe", "epochs_done")},
                                  sort_keys=True).encode())
    for key in sorted(model_state):
        h.update(key.encode())
        h.update(model_state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


CHECKPOINT_KEYS = {"format": str, "space": str, "space_config": dict, "dataset": str, "recipe": dict,
                   "epochs_done": int, "complete": bool, "history": list, "model": dict, "optimizer": dict,
                   "scheduler": dict, "hash": str}


def read_checkpoint(path: Path) -> dict:
    """An hwnas supernet checkpoint, verified: read without unpickling code, every key of the right type, the
    settings valid, every weight a finite tensor, and the weights hash recomputed and equal to the recorded one
    (a checkpoint whose weights or settings were changed after training is refused)."""
    from .torchfile import load_weights_file

    path = Path(path)
    ckpt = load_weights_file(path, "supernet checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise HwnasError(f"{path} is not an hwnas supernet checkpoint (format {FORMAT})")
    validate_checkpoint(ckpt, path)
    return ckpt


def validate_checkpoint(ckpt: dict, path) -> None:
    import torch

    from .torchfile import non_finite_tensor

    def bad(what):
        raise HwnasError(f"supernet checkpoint {path} is corrupt: {what}")

    for key, kind in CHECKPOINT_KEYS.items():
        if key not in ckpt:
            bad(f"key {key!r} is missing")
        v = ckpt[key]
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            bad(f"{key!r} must be a {kind.__name__}, got {type(v).__name__}")
    if ckpt["space"] not in SUPERNET_SPACES:
        bad(f"space {ckpt['space']!r} has no supernet (known: {', '.join(SUPERNET_SPACES)})")
    if not all(isinstance(k, str) for k in ckpt["space_config"]):
        bad("'space_config' keys must be strings")
    try:
        recipe = make_recipe(**ckpt["recipe"])
    except (HwnasError, TypeError, ValueError) as exc:
        bad(f"recipe {ckpt['recipe']!r} is not valid ({exc})")
    if not 0 <= ckpt["epochs_done"] <= recipe["epochs"]:
        bad(f"epochs_done {ckpt['epochs_done']} is outside 0..{recipe['epochs']}")
    model = ckpt["model"]
    if not model:
        bad("it holds no weights ('model' is empty)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        bad("'model' must map names to tensors")
    nf = non_finite_tensor(model)
    if nf is not None:
        bad(f"weight {nf} holds NaN or infinite values")
    try:
        recomputed = weights_hash(ckpt, model)
    except (TypeError, ValueError) as exc:
        bad(f"its settings cannot be hashed ({exc})")
    if recomputed != ckpt["hash"]:
        raise HwnasError(f"supernet checkpoint {path}: its weights and settings hash to {recomputed}, not the "
                         f"recorded {ckpt['hash']!r} (modified after training, or corrupt): retrain it")


def check_matches(ckpt: dict, space, path) -> None:
    """A clear error when the checkpoint was trained for another space or other space settings."""
    if ckpt["space"] != space.name or dict(ckpt["space_config"]) != space.config():
        raise HwnasError(f"supernet checkpoint {path} was trained for space {ckpt['space']} {dict(ckpt['space_config'])}, "
                         f"not {space.name} {space.config()}: train one for these settings")


def train_supernet(space, out: Path, *, dataset: str = "digits", recipe: dict | None = None, device: str = "auto",
                   resume: bool = False, threads: int = 1, data_root: str | None = None, download: bool = False,
                   progress: Callable[[dict], None] | None = None) -> dict:
    """Train the supernet of ``space`` on ``dataset``'s training split; checkpoint to ``out`` after every epoch.

    ``resume=True`` continues the checkpoint at ``out`` (its own space, data set and recipe; ``space``,
    ``dataset`` and ``recipe`` must match it or be left as given by the checkpoint). Returns the final checkpoint's
    metadata (everything but the tensors). ``progress`` gets {epoch, epochs, step, steps, loss} after each step.
    """
    import torch

    out = check_writable(Path(out))
    dev = resolve_device(device)
    recipe, ckpt = _start(space, out, dataset, recipe, resume)
    data = splits_for(dataset, space.input_shape(), data_root, download)
    num_classes = getattr(space, "num_classes", None)
    if num_classes != data.num_classes:
        raise ParametersError(f"space {space.name} has {num_classes} classes but dataset {dataset} has "
                              f"{data.num_classes}: add `space_opt` num_classes={data.num_classes}")
    with torch_threads(threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe["seed"])
            net = build_supernet(space)
        net.to(dev)
        x_all = torch.from_numpy(data.x_train).to(dev)
        y_all = torch.from_numpy(data.y_train).to(dev)
        epochs = recipe["epochs"]
        batches_per_epoch = max(1, -(-len(x_all) // recipe["batch_size"]))
        opt = torch.optim.SGD(net.parameters(), lr=recipe["lr"], momentum=recipe["momentum"],
                              weight_decay=recipe["weight_decay"], nesterov=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * batches_per_epoch)
        meta = {"format": FORMAT, "space": space.name, "space_config": space.config(), "dataset": dataset,
                "recipe": recipe, "epochs_done": 0, "complete": False, "history": [], "created": now_iso()}
        if ckpt is not None:
            _restore(ckpt, out, net, opt, sched)
            meta.update({k: ckpt[k] for k in ("epochs_done", "history", "created")})
        for epoch in range(meta["epochs_done"], epochs):
            t0 = time.perf_counter()
            report = None if progress is None else (
                lambda step, loss, e=epoch: progress({"epoch": e + 1, "epochs": epochs, "step": step + 1,
                                                       "steps": batches_per_epoch, "loss": loss}))
            losses = _train_epoch(net, opt, sched, x_all, y_all, recipe, epoch, report)
            meta["epochs_done"] = epoch + 1
            meta["complete"] = epoch + 1 == epochs
            meta["history"] = meta["history"] + [{"epoch": epoch + 1, "loss": float(np.mean(losses)),
                                                  "seconds": round(time.perf_counter() - t0, 3), "device": dev}]
            _save(out, meta, net, opt, sched)
        if ckpt is not None and meta["epochs_done"] == ckpt["epochs_done"]:
            meta["hash"] = ckpt["hash"]
        return dict(meta)


def _start(space, out: Path, dataset: str, recipe: dict | None, resume: bool) -> tuple[dict, dict | None]:
    """(recipe, checkpoint to continue or None): a resumed checkpoint brings its own recipe and must match
    ``space`` and ``dataset``; a fresh start must not overwrite one."""
    if resume:
        ckpt = read_checkpoint(out)
        check_matches(ckpt, space, out)
        if ckpt["dataset"] != dataset:
            raise HwnasError(f"{out} was trained on {ckpt['dataset']}, not {dataset}")
        return dict(ckpt["recipe"]), ckpt
    if out.exists():
        raise HwnasError(f"{out} already exists: continue it (resume=True), or write to another file")
    return make_recipe(**(recipe or {})), None


def _restore(ckpt: dict, out: Path, net, opt, sched) -> None:
    """Weights, optimizer and scheduler state from a checkpoint (a state that does not fit: corrupt)."""
    from .torchfile import load_matching_state

    load_matching_state(net, ckpt["model"], out, "supernet checkpoint")
    try:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise HwnasError(f"supernet checkpoint {out} is corrupt: its optimizer / scheduler state does not "
                         f"fit ({' '.join(str(exc).split())[:200]})") from None


def _train_epoch(net, opt, sched, x_all, y_all, recipe: dict, epoch: int, report) -> list[float]:
    """One epoch in the seeded order of ``epoch`` (batches of one sample skipped: batch norm needs two); the loss
    of each step, each also passed to ``report(step, loss)``."""
    import torch

    n, bs = len(x_all), recipe["batch_size"]
    gen = torch.Generator().manual_seed(recipe["seed"] * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).to(x_all.device)
    rng = np.random.default_rng([recipe["seed"], epoch])
    net.train()
    losses = []
    for step, i in enumerate(range(0, n, bs)):
        idx = order[i:i + bs]
        if len(idx) < 2:
            continue  # batch norm needs two samples
        opt.zero_grad(set_to_none=True)
        loss = net.train_loss(x_all[idx], y_all[idx], rng, recipe)
        if not torch.isfinite(loss):
            raise ParametersError(f"supernet training diverged in epoch {epoch + 1} (loss {float(loss)}): lower `lr`")
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if report is not None:
            report(step, losses[-1])
    return losses


def _save(out: Path, meta: dict, net, opt, sched) -> None:
    import torch

    model = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    meta["hash"] = weights_hash(meta, model)
    payload = dict(meta, model=model, optimizer=_to_cpu(opt.state_dict()), scheduler=sched.state_dict())
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)


def _to_cpu(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
