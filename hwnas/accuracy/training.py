"""Real PyTorch training of one candidate: SGD with momentum and cosine learning rate, then test accuracy.

Reproducible: weights, batch order and augmentation-free data come from ``seed``; training runs on the CPU with
``threads`` intra-op threads (1 by default, so parallel executors do not oversubscribe the cores).
"""

from __future__ import annotations

import numpy as np

from ..errors import HwnasError


def train_and_test(space, arch, data, epochs: int = 3, batch_size: int = 64, lr: float = 0.05, seed: int = 0,
                   max_train: int | None = None, threads: int = 1) -> float:
    """Train ``arch`` on ``data.x_train`` for ``epochs`` epochs; return test accuracy in %."""
    import torch
    import torch.nn.functional as F

    num_classes = getattr(space, "num_classes", None)
    if num_classes is not None and num_classes != data.num_classes:
        raise HwnasError(f"space {space.name} has {num_classes} classes but dataset {data.name} has "
                         f"{data.num_classes}: add --space-opt num_classes={data.num_classes}")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = space.build(arch)
            x_tr = torch.from_numpy(data.x_train)
            y_tr = torch.from_numpy(data.y_train)
            if max_train is not None and int(max_train) < len(x_tr):
                keep = torch.randperm(len(x_tr))[: int(max_train)]
                x_tr, y_tr = x_tr[keep], y_tr[keep]
            n = len(x_tr)
            steps = epochs * max(1, -(-n // batch_size))
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            model.train()
            for _ in range(epochs):
                order = torch.randperm(n)
                for i in range(0, n, batch_size):
                    idx = order[i:i + batch_size]
                    if len(idx) < 2:
                        continue  # batch norm needs two samples
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
                    if not torch.isfinite(loss):
                        return _chance(data)  # diverged: the candidate learned nothing
                    loss.backward()
                    opt.step()
                    sched.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                x_te, y_te = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
                for i in range(0, len(x_te), 256):
                    correct += int((model(x_te[i:i + 256]).argmax(1) == y_te[i:i + 256]).sum())
            return 100.0 * correct / len(x_te)
    finally:
        torch.set_num_threads(old_threads)


def _chance(data) -> float:
    return 100.0 * float(np.bincount(data.y_test).max()) / len(data.y_test)
