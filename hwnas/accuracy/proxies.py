"""Zero-cost proxies: score an untrained network from one batch, higher = expected to train better.

- ``naswot``: Mellor et al., "Neural Architecture Search without Training" (ICML 2021). Binary codes of
  every ReLU-like unit over the batch; score = log|K_H| with K_H[i, j] = number of units on which images
  i and j agree.
- ``synflow``: Tanaka et al. (NeurIPS 2020), as a NAS proxy in Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS" (ICLR 2021): weights replaced by their absolute values, an all-ones input (data-free by
  design), score = sum |theta * dR/dtheta| (log10 of it, for a readable scale).
- ``jacob_cov``: Mellor et al. (v1 of the paper): the correlation of input Jacobians over the batch;
  score = -sum(log(lambda + k) + 1/(lambda + k)), k = 1e-5.

Weights are initialised from a seed, so a score is reproducible.
"""

from __future__ import annotations

import numpy as np

from ..errors import HwnasError, unknown

PROXIES = ("naswot", "synflow", "jacob_cov")


def _model(space, arch, seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch)


def naswot(model, x) -> float:
    import torch

    codes = []

    def hook(module, inputs, output):
        codes.append((output.detach().flatten(1) > 0).double())

    acts = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardswish, torch.nn.SiLU, torch.nn.GELU)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, acts)]
    try:
        model.train()  # batch statistics, as in the paper
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    K = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(K)
    return float(logdet) if float(sign) > 0 else float("-inf")


def synflow(model, x) -> float:
    import torch

    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            signs[name] = torch.sign(p)
            p.abs_()
    model.zero_grad()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    model(ones).sum().backward()
    total = 0.0
    for p in model.parameters():
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return float(np.log10(total)) if total > 0 else float("-inf")


def jacob_cov(model, x) -> float:
    import torch

    model.train()
    x = x.clone().requires_grad_(True)
    y = model(x)
    y.backward(torch.ones_like(y))
    jac = x.grad.detach().flatten(1).numpy().astype(np.float64)
    corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return float("-inf")
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def proxy_score(name: str, space, arch, x: np.ndarray, y: np.ndarray | None = None, seed: int = 0) -> float:
    import torch

    fn = {"naswot": naswot, "synflow": synflow, "jacob_cov": jacob_cov}.get(name)
    if fn is None:
        raise unknown("proxy", name, PROXIES)
    model = _model(space, arch, seed)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    try:
        return fn(model, xt)
    except RuntimeError as exc:
        raise HwnasError(f"proxy {name} failed on {space.to_string(arch)}: {exc}") from None
