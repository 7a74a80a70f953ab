"""Once-for-All elastic supernet of the ``mobilenet`` space (Cai et al., ICLR 2020), and a loader for OFA's weights.

One network holds the largest choice of everything: 4 blocks per stage, 7x7 depthwise kernels, expansion 6.
A subnet uses

* depth d: the first d blocks of each stage (the stage's last blocks are skipped);
* kernel k: the centre of the 7x7 kernel, passed through OFA's learned kernel-transform matrices
  (7x7 centre 5x5 -> ``7to5`` (25x25) -> 5x5; its centre 3x3 -> ``5to3`` (9x9) -> 3x3), initialised to identity;
* expansion e: the first ``make_divisible(c_in * e)`` channels of the expansion, depthwise, squeeze-excite
  (its first ``make_divisible(mid // 4)`` reduce channels) and projection layers, batch-norm statistics included.

Training (``train_loss``) follows the sandwich rule with in-place distillation (BigNAS / OFA practice): each
step trains the largest subnet on the labels, and the smallest plus ``recipe.n_random`` random subnets on the
largest's (detached) soft predictions; the losses are summed into one backward pass.

``extract`` writes a subnet into the space's own standalone ``OFAMobileNetV3`` module, so profiling, export and
retraining start from the inherited weights. ``load_ofa_state_dict`` maps the state dict of OFA's own
``OFAMobileNetV3`` (``ofa_mbv3_d234_e346_k357_w1.0`` / ``w1.2``) onto this supernet; tests check logit equality
with the ``ofa`` package for random subnets.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import HwnasError, ParametersError
from ...spaces.mobilenet import (ACTS, DEPTHS, EXPANDS, KERNELS, MAX_DEPTH, N_STAGES, SE, STRIDES, WIDTHS,
                                 make_divisible)
from ...spaces.mobilenet_torch import MBConv, SqueezeExcite, act
from .nb201 import blank_subnet

_KSET = sorted(KERNELS)  # 3, 5, 7


def _bn(x, bn: nn.BatchNorm2d, c: int):
    """Batch norm over the first ``c`` channels of ``bn`` (its running statistics update in place when training)."""
    return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                        bn.training, bn.momentum, bn.eps)


class ElasticMBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, activation: str, se: bool):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        mid = make_divisible(c_in * max(EXPANDS))
        kmax = max(KERNELS)
        self.expand = nn.Conv2d(c_in, mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid)
        self.dw = nn.Conv2d(mid, mid, kmax, stride=stride, padding=kmax // 2, groups=mid, bias=False)
        self.dw_bn = nn.BatchNorm2d(mid)
        self.transform = nn.ParameterDict({f"{_KSET[i + 1]}to{_KSET[i]}": nn.Parameter(torch.eye(_KSET[i] ** 2))
                                           for i in range(len(_KSET) - 1)})
        self.se = se
        if se:
            se_mid = make_divisible(mid // 4)
            self.se_reduce = nn.Conv2d(mid, se_mid, 1)
            self.se_expand = nn.Conv2d(se_mid, mid, 1)
        self.project = nn.Conv2d(mid, c_out, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c_out)
        self.act = act(activation)
        self.residual = stride == 1 and c_in == c_out

    def kernel(self, k: int, mid: int) -> torch.Tensor:
        """The (mid, 1, k, k) depthwise kernel: the centre of the largest, through the transform matrices."""
        w = self.dw.weight[:mid]
        for i in range(len(_KSET) - 1, 0, -1):
            src, dst = _KSET[i], _KSET[i - 1]
            if src <= k:
                break
            lo = (src - dst) // 2
            centre = w[:, :, lo:lo + dst, lo:lo + dst].reshape(-1, dst * dst)
            w = F.linear(centre, self.transform[f"{src}to{dst}"]).reshape(mid, 1, dst, dst)
        return w

    def forward(self, x, k: int, e: int):
        mid = make_divisible(self.c_in * e)
        y = self.act(_bn(F.conv2d(x, self.expand.weight[:mid]), self.expand_bn, mid))
        y = F.conv2d(y, self.kernel(k, mid), None, self.stride, k // 2, 1, mid)
        y = self.act(_bn(y, self.dw_bn, mid))
        if self.se:
            s = make_divisible(mid // 4)
            g = y.mean((2, 3), keepdim=True)
            g = F.relu(F.conv2d(g, self.se_reduce.weight[:s, :mid], self.se_reduce.bias[:s]))
            g = F.hardsigmoid(F.conv2d(g, self.se_expand.weight[:mid, :s], self.se_expand.bias[:mid]))
            y = y * g
        y = _bn(F.conv2d(y, self.project.weight[:, :mid]), self.project_bn, self.c_out)
        return x + y if self.residual else y

    @torch.no_grad()
    def export_into(self, block: MBConv, k: int, e: int) -> None:
        """Copy the (k, e) subnet's weights into the standalone block ``block`` (built by the space)."""
        mid = make_divisible(self.c_in * e)
        convs = [m for m in block.body if isinstance(m, nn.Conv2d)]
        bns = [m for m in block.body if isinstance(m, nn.BatchNorm2d)]
        convs[0].weight.copy_(self.expand.weight[:mid])
        convs[1].weight.copy_(self.kernel(k, mid))
        convs[2].weight.copy_(self.project.weight[:, :mid])
        for dst, src, c in zip(bns, (self.expand_bn, self.dw_bn, self.project_bn), (mid, mid, self.c_out)):
            dst.weight.copy_(src.weight[:c])
            dst.bias.copy_(src.bias[:c])
            dst.running_mean.copy_(src.running_mean[:c])
            dst.running_var.copy_(src.running_var[:c])
            dst.num_batches_tracked.copy_(src.num_batches_tracked)
        if self.se:
            se = next(m for m in block.body if isinstance(m, SqueezeExcite))
            s = make_divisible(mid // 4)
            se.reduce.weight.copy_(self.se_reduce.weight[:s, :mid])
            se.reduce.bias.copy_(self.se_reduce.bias[:s])
            se.expand.weight.copy_(self.se_expand.weight[:mid, :s])
            se.expand.bias.copy_(self.se_expand.bias[:mid])


class MobileNetSupernet(nn.Module):
    def __init__(self, space):
        super().__init__()
        self.space = space
        w = space.width_mult
        c_stem = make_divisible(16 * w)
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_stem),
                                  nn.Hardswish())
        self.first = MBConv(c_stem, c_stem, 3, 1, 1, "relu", False)
        blocks = []
        c = c_stem
        for s in range(N_STAGES):
            c_out = make_divisible(WIDTHS[s] * w)
            for b in range(MAX_DEPTH):
                blocks.append(ElasticMBConv(c, c_out, STRIDES[s] if b == 0 else 1, ACTS[s], SE[s]))
                c = c_out
        self.blocks = nn.ModuleList(blocks)
        c_final, c_mix = make_divisible(960 * w), make_divisible(1280 * w)
        self.final_expand = nn.Sequential(nn.Conv2d(c, c_final, 1, bias=False), nn.BatchNorm2d(c_final), nn.Hardswish())
        self.feature_mix = nn.Sequential(nn.Conv2d(c_final, c_mix, 1, bias=False), nn.Hardswish())
        self.classifier = nn.Linear(c_mix, space.num_classes)

    def plan(self, arch) -> list[tuple[int, int, int]]:
        """(block index, kernel, expand) of each active block of ``arch``."""
        return [(s * MAX_DEPTH + b, k, e) for s, blocks in enumerate(self.space.decode(arch))
                for b, (k, e) in enumerate(blocks)]

    def forward(self, x, arch):
        x = self.first(self.stem(x))
        for i, k, e in self.plan(arch):
            x = self.blocks[i](x, k, e)
        x = self.final_expand(x).mean((2, 3), keepdim=True)
        return self.classifier(self.feature_mix(x).flatten(1))

    def largest(self):
        return self.space.make([len(DEPTHS) - 1] * N_STAGES + [len(KERNELS) - 1, len(EXPANDS) - 1] * (N_STAGES * MAX_DEPTH))

    def smallest(self):
        return self.space.make([0] * len(self.space.cardinalities()))

    def train_loss(self, x, y, rng, recipe):
        """Sandwich rule + in-place distillation: largest on labels; smallest and random ones on its soft labels."""
        logits = self(x, self.largest())
        loss = F.cross_entropy(logits, y)
        soft = F.softmax(logits.detach(), dim=1)
        for arch in [self.smallest()] + [self.space.sample(rng) for _ in range(int(recipe.get("n_random", 2)))]:
            loss = loss + F.cross_entropy(self(x, arch), soft)
        return loss

    @torch.no_grad()
    def extract(self, arch) -> nn.Module:
        """The space's standalone ``OFAMobileNetV3`` for ``arch`` with this supernet's weights (a copy, eval mode)."""
        sub = blank_subnet(self.space, arch)
        sub.stem.load_state_dict(self.stem.state_dict())
        sub.blocks[0].load_state_dict(self.first.state_dict())
        for j, (i, k, e) in enumerate(self.plan(arch), start=1):
            self.blocks[i].export_into(sub.blocks[j], k, e)
        sub.final_expand.load_state_dict(self.final_expand.state_dict())
        sub.feature_mix.load_state_dict(self.feature_mix.state_dict())
        sub.classifier.load_state_dict(self.classifier.state_dict())
        return sub.eval()

    def ofa_settings(self, arch) -> dict:
        """``arch`` as the ``ks``, ``e``, ``d`` lists of OFA's ``set_active_subnet`` (inactive slots: 3 / 3)."""
        stages = self.space.decode(arch)
        ks, es = [], []
        for blocks in stages:
            padded = blocks + [(min(KERNELS), min(EXPANDS))] * (MAX_DEPTH - len(blocks))
            ks += [k for k, _ in padded]
            es += [e for _, e in padded]
        return {"ks": ks, "e": es, "d": [len(b) for b in stages]}


# -- Once-for-All state dicts -----------------------------------------------------------------------------

_OFA_RULES = [  # hwnas key pattern -> OFA OFAMobileNetV3 key (canonical form of the current ofa package)
    (r"stem\.0\.weight", "first_conv.conv.weight"),
    (r"stem\.1\.(\w+)", "first_conv.bn.{0}"),
    (r"first\.body\.0\.weight", "blocks.0.conv.depth_conv.conv.weight"),
    (r"first\.body\.1\.(\w+)", "blocks.0.conv.depth_conv.bn.{0}"),
    (r"first\.body\.3\.weight", "blocks.0.conv.point_linear.conv.weight"),
    (r"first\.body\.4\.(\w+)", "blocks.0.conv.point_linear.bn.{0}"),
    (r"blocks\.(\d+)\.expand\.weight", "blocks.{b}.conv.inverted_bottleneck.conv.conv.weight"),
    (r"blocks\.(\d+)\.expand_bn\.(\w+)", "blocks.{b}.conv.inverted_bottleneck.bn.bn.{1}"),
    (r"blocks\.(\d+)\.dw\.weight", "blocks.{b}.conv.depth_conv.conv.conv.weight"),
    (r"blocks\.(\d+)\.transform\.(\w+)", "blocks.{b}.conv.depth_conv.conv.{1}_matrix"),
    (r"blocks\.(\d+)\.dw_bn\.(\w+)", "blocks.{b}.conv.depth_conv.bn.bn.{1}"),
    (r"blocks\.(\d+)\.se_reduce\.(\w+)", "blocks.{b}.conv.depth_conv.se.fc.reduce.{1}"),
    (r"blocks\.(\d+)\.se_expand\.(\w+)", "blocks.{b}.conv.depth_conv.se.fc.expand.{1}"),
    (r"blocks\.(\d+)\.project\.weight", "blocks.{b}.conv.point_linear.conv.conv.weight"),
    (r"blocks\.(\d+)\.project_bn\.(\w+)", "blocks.{b}.conv.point_linear.bn.bn.{1}"),
    (r"final_expand\.0\.weight", "final_expand_layer.conv.weight"),
    (r"final_expand\.1\.(\w+)", "final_expand_layer.bn.{0}"),
    (r"feature_mix\.0\.weight", "feature_mix_layer.conv.weight"),
    (r"classifier\.(\w+)", "classifier.linear.{0}"),
]


def ofa_key(key: str) -> str:
    """The key in OFA's ``OFAMobileNetV3`` state dict that holds hwnas's supernet tensor ``key``."""
    for pattern, target in _OFA_RULES:
        m = re.fullmatch(pattern, key)
        if m:
            groups = m.groups()
            b = int(groups[0]) + 1 if key.startswith("blocks.") else None  # OFA's blocks.0 is the fixed first block
            return target.format(*groups, b=b)
    raise KeyError(key)


def _normalise_ofa_keys(state: dict) -> dict:
    """Fold the spellings of older OFA releases into the current one (as ``OFAMobileNetV3.load_state_dict`` does)."""
    out = {}
    for key, value in state.items():
        key = key.replace(".mobile_inverted_conv.", ".conv.")
        out[key] = value
    return out


def _lookup(state: dict, key: str):
    for cand in (key, key.replace(".bn.bn.", ".bn."), key.replace(".conv.conv.", ".conv."),
                 key.replace(".linear.", ".linear.linear."), key.replace("bn.", "bn.bn.")):
        if cand in state:
            return state[cand]
    return None


def read_ofa_state_dict(path: Path) -> dict:
    """An OFA checkpoint file: a plain state dict or OFA's ``{"state_dict": ...}`` wrapper."""
    from .torchfile import load_weights_file, non_finite_tensor

    obj = load_weights_file(Path(path), "PyTorch state dict")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise HwnasError(f"{path} is not a state dict of tensors")
    nf = non_finite_tensor(obj)
    if nf is not None:
        raise HwnasError(f"Once-for-All weights {path} are corrupt: tensor {nf} holds NaN or infinite values")
    return obj


def is_ofa_state_dict(state: dict) -> bool:
    return any(k.startswith("first_conv.") for k in state) and any(".depth_conv." in k for k in state)


def load_ofa_state_dict(space, state) -> MobileNetSupernet:
    """hwnas's supernet for ``space`` holding the weights of an OFA ``OFAMobileNetV3`` state dict (or file).

    OFA must have been built with ks_list=[3,5,7], expand_ratio_list=[3,4,6], depth_list=[2,3,4] (the published
    ``ofa_mbv3_d234_e346_k357_w*`` supernets) and the space's ``width_mult`` and ``num_classes``.
    """
    if space.name != "mobilenet":
        raise HwnasError(f"Once-for-All MobileNetV3 weights need the mobilenet space, not {space.name}")
    if not isinstance(state, dict):
        state = read_ofa_state_dict(state)
    state = _normalise_ofa_keys(state)
    net = MobileNetSupernet(space)
    own = net.state_dict()
    new = {}
    for key, mine in own.items():
        if key.endswith("num_batches_tracked"):
            new[key] = mine
            continue
        theirs = _lookup(state, ofa_key(key))
        if theirs is None:
            raise HwnasError(f"the OFA state dict has no {ofa_key(key)} (for {key}): is it an OFAMobileNetV3 "
                             "supernet with kernels 3,5,7, expansions 3,4,6 and depths 2,3,4?")
        if tuple(theirs.shape) != tuple(mine.shape):
            raise ParametersError(f"OFA tensor {ofa_key(key)} has shape {tuple(theirs.shape)} but the mobilenet space "
                                  f"(width_mult={space.width_mult}, num_classes={space.num_classes}) needs "
                                  f"{tuple(mine.shape)}: set `space_opt` width_mult=... / num_classes=... to the checkpoint's")
        new[key] = theirs.to(mine.dtype)
    net.load_state_dict(new, strict=True)
    return net
