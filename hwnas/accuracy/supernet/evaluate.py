"""Accuracy of subnets from a trained supernet: inherit the weights, recalibrate batch norm, score on validation.

A subnet's batch-norm statistics in the supernet are a mixture over every path trained through them, so each
subnet is extracted as a standalone network, its batch-norm running statistics are recomputed on a fixed set
of ``bn_images`` training images (the same images for every subnet; cumulative average over batches of
``bn_batch``), and it is scored on the validation split (never the test split). Provenance of every value:
``supernet:<hash>(val, bn-recal N)``, N the number of recalibration images.

Checkpoints: hwnas's own (``hwnas supernet train``; scored on the data set it was trained on, which it records),
or a state dict of Once-for-All's ``OFAMobileNetV3`` (``ofa_mbv3_d234_e346_k357_w1.0`` / ``w1.2``) for the
mobilenet space. Those were trained on ImageNet, which is not bundled: they are scored on ``dataset`` (the
search's ``--dataset``/``--data-dir``; labels mapped to the weights' outputs by
:func:`hwnas.accuracy.supernet.data.output_indices`), provenance ``supernet:ofa-<sha>(<dataset> val, bn-recal N)``,
or on ``data`` (an object with ``x_train, y_train, x_val, y_val``, labels already output indices).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import HwnasError, ParametersError
from ...fileio import sha256_file
from .data import pretrained_splits, splits_for
from .torchfile import load_matching_state, load_weights_file, non_finite_tensor
from .train import FORMAT, build_supernet, check_matches, torch_threads, validate_checkpoint

BN_IMAGES = 200
BN_BATCH = 100


@dataclass
class LoadedSupernet:
    net: object  # NB201Supernet | MobileNetSupernet, on the CPU, eval mode
    hash: str
    dataset: str | None  # None for OFA weights (ImageNet, not bundled)
    source: str  # "hwnas" | "ofa"


_CACHE: dict = {}


def load_supernet(space, path) -> LoadedSupernet:
    """The supernet in ``path`` (an hwnas checkpoint or an OFA state dict) for ``space``; cached per file version."""

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"supernet checkpoint {path} does not exist")
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, space.name, repr(sorted(space.config().items())))
    if key in _CACHE:
        return _CACHE[key]
    obj = load_weights_file(path, "supernet checkpoint")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        validate_checkpoint(obj, path)  # schema, finite weights, the hash recomputed
        check_matches(obj, space, path)
        if not obj.get("complete"):
            raise HwnasError(f"supernet checkpoint {path} is unfinished ({obj['epochs_done']}/{obj['recipe']['epochs']} "
                             f"epochs): finish it with `hwnas supernet train --resume {path}`")
        net = build_supernet(space)
        load_matching_state(net, obj["model"], path, "supernet checkpoint")
        loaded = LoadedSupernet(net, obj["hash"], obj["dataset"], "hwnas")
    else:
        from .mobilenet import is_ofa_state_dict, load_ofa_state_dict

        state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(state, dict) or not is_ofa_state_dict(state):
            raise HwnasError(f"{path} is neither an hwnas supernet checkpoint nor a Once-for-All OFAMobileNetV3 state dict")
        nf = non_finite_tensor(state)
        if nf is not None:
            raise HwnasError(f"Once-for-All weights {path} are corrupt: tensor {nf} holds NaN or infinite values")
        net = load_ofa_state_dict(space, state)
        loaded = LoadedSupernet(net, "ofa-" + sha256_file(path)[:12], None, "ofa")
    loaded.net.eval()
    _CACHE.clear()  # keep one supernet in memory
    _CACHE[key] = loaded
    return loaded


def recalibrate_bn(model, images, batch: int = BN_BATCH) -> None:
    """Recompute every batch-norm layer's running mean / variance of ``model`` on ``images`` (a tensor)."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the recalibration batches
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            if len(images[i:i + batch]) >= 2:
                model(images[i:i + batch])
    model.eval()


def accuracy_percent(model, x, y, batch: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(x)


def supernet_values(space, archs, checkpoint_path, *, data=None, bn_images: int = BN_IMAGES, bn_batch: int = BN_BATCH,
                    threads: int = 1, dataset: str | None = None, data_root: str | None = None,
                    download: bool = False):
    """Validation accuracy (%) of each arch from the supernet in ``checkpoint_path``, and its provenance.

    ``dataset`` / ``data_root`` / ``download``: the data OFA weights are scored on (``data_root`` is also where
    an hwnas checkpoint's own data set lives). Returns ``(np.ndarray of accuracy %, list of provenance strings)``,
    one per arch, in order.
    """
    import torch

    sn = load_supernet(space, checkpoint_path)
    data = supernet_data(space, checkpoint_path, data=data, dataset=dataset, data_root=data_root, download=download)
    x_bn = _bn_images(data, bn_images)
    n_bn = len(x_bn)
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    split = "val" if sn.dataset is not None else f"{getattr(data, 'name', 'given')} val"
    provenance = f"supernet:{sn.hash}({split}, bn-recal {n_bn})"
    values = []
    with torch_threads(threads):
        for arch in archs:
            sub = sn.net.extract(arch)
            recalibrate_bn(sub, x_bn, bn_batch)
            values.append(accuracy_percent(sub, x_val, y_val))
    return np.asarray(values, dtype=float), [provenance] * len(values)


def export_subnet(space, arch, checkpoint_path, *, recalibrate: bool = True, data=None, dataset: str | None = None,
                  data_root: str | None = None, download: bool = False):
    """A standalone ``nn.Module`` of ``arch`` with the supernet's weights (batch norm recalibrated as for scoring)."""
    sn = load_supernet(space, checkpoint_path)
    sub = sn.net.extract(arch)
    if recalibrate:
        data = supernet_data(space, checkpoint_path, data=data, dataset=dataset, data_root=data_root,
                             download=download)
        recalibrate_bn(sub, _bn_images(data, BN_IMAGES))
    return sub.eval()


def supernet_data(space, checkpoint_path, *, data=None, dataset: str | None = None, data_root: str | None = None,
                  download: bool = False):
    """The train and validation images the supernet in ``checkpoint_path`` is scored on: ``data`` when given,
    else an hwnas checkpoint's own data set, else (OFA weights) ``dataset`` with labels mapped to the weights'
    outputs. A data set that cannot be scored is a one-line :class:`HwnasError` (call it to fail early)."""
    if data is not None:
        return data
    sn = load_supernet(space, checkpoint_path)
    if sn.dataset is not None:
        return splits_for(sn.dataset, space.input_shape(), data_root, download)
    if not dataset:
        raise ParametersError(f"{checkpoint_path} holds Once-for-All weights (trained on ImageNet, not bundled): give "
                              "the images to score its subnets on: `dataset` imagefolder `data_dir` DIR (class folders "
                              "named by ImageNet WordNet id or output index; see docs/supernet.md)")
    return pretrained_splits(dataset, space.input_shape(), space.num_classes, data_root, download)


def _bn_images(data, n: int):
    """The fixed recalibration set: ``n`` training images drawn with seed 0 (the same for every subnet)."""
    import torch

    n = min(int(n), len(data.x_train))
    if n < 2:
        raise HwnasError("batch-norm recalibration needs at least 2 training images")
    pick = np.random.default_rng(0).choice(len(data.x_train), size=n, replace=False)
    return torch.from_numpy(np.ascontiguousarray(data.x_train[pick]))
