"""DPP-Net: device-aware progressive search for Pareto-optimal networks (Dong et al., ECCV 2018,
arXiv 1806.08198), as a search strategy over any hwnas space.

Progressive sequential model-based optimisation (as in PNAS, Liu et al. 2018):

1. evaluate every cell of length 1 (every choice of the first layer);
2. for l = 2 .. max_length: fit an LSTM surrogate that regresses accuracy (and any cost objective the
   evaluator cannot give for free) from the layer sequence of everything evaluated so far; expand each of
   the K current cells by every choice of the next layer; predict their accuracy; take their device
   objectives from the evaluator's cost objectives; keep K by Pareto selection (non-dominated sorting, the
   last front filled by crowding distance so that exactly K remain); evaluate those K; they are the
   current cells for the next length.

A space that offers a layer sequence (``layer_choices`` / ``from_layers``, e.g. the ``dppnet`` space) grows
one (Norm, Conv) layer per step. Any other space grows one gene per step, the genes not yet chosen set to
``fill`` (nb201: edges are filled in arch-string order, unfilled edges are ``skip_connect`` by default so a
partial cell is still a connected network). Budget = unique architectures evaluated; ``k=None`` picks the
largest K such that the whole progression fits the budget.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..core import Arch
from ..errors import HwnasError
from ._shared import BudgetedEvaluation, accuracy_index, hypervolume_of, is_accuracy_objective, seeded_torch, torch_seed, torch_threads
from .base import SearchResult

DEFAULT_FILL = {"nb201": 1}  # skip_connect: an unfilled nb201 edge passes its input through


# -- Pareto selection ----------------------------------------------------------------------------------------


def pareto_select(F: np.ndarray, k: int) -> np.ndarray:
    """Indices of exactly min(k, n) rows of F (all minimised): whole non-dominated fronts in order, the
    front that does not fit entirely filled by largest crowding distance (ties: lower index first)."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    n = len(F)
    k = int(k)
    if k < 0:
        raise HwnasError(f"pareto_select: k must be >= 0, got {k}")
    if k >= n:
        return np.arange(n)
    if k == 0:
        return np.zeros(0, dtype=int)
    chosen: list[int] = []
    for front in NonDominatedSorting().do(F):
        front = np.sort(np.asarray(front, dtype=int))
        if len(chosen) + len(front) <= k:
            chosen.extend(front.tolist())
            if len(chosen) == k:
                break
            continue
        cd = calc_crowding_distance(F[front]) if len(front) > 2 else np.full(len(front), np.inf)
        order = np.lexsort((front, -np.nan_to_num(cd, posinf=np.finfo(float).max)))
        chosen.extend(front[order[: k - len(chosen)]].tolist())
        break
    return np.array(sorted(chosen), dtype=int)


# -- surrogate ------------------------------------------------------------------------------------------------


class LSTMSurrogate:
    """An LSTM regressor from token sequences (ints >= 1; 0 pads) to one or more targets.

    Targets are standardised; training is full-batch Adam for ``epochs`` steps, seeded by ``seed``.
    """

    def __init__(self, vocab: int, n_out: int = 1, embed: int = 16, hidden: int = 64, epochs: int = 300,
                 lr: float = 0.01, weight_decay: float = 1e-4, seed: int = 0, threads: int = 1):
        self.vocab = vocab
        self.n_out = n_out
        self.embed = embed
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.threads = threads

    def _tensors(self, seqs):
        import torch

        lengths = [len(s) for s in seqs]
        if min(lengths) < 1:
            raise HwnasError("surrogate: every sequence needs at least one token")
        X = torch.zeros(len(seqs), max(lengths), dtype=torch.long)
        for i, s in enumerate(seqs):
            X[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        return X, torch.as_tensor(lengths, dtype=torch.long)

    def _forward(self, X, L):
        out, _ = self.lstm_(self.emb_(X))
        last = out[torch_arange(len(X)), L - 1]
        return self.head_(last)

    def fit(self, seqs: Sequence[Sequence[int]], Y) -> "LSTMSurrogate":
        with torch_threads(self.threads):
            return self._fit(seqs, Y)

    def _fit(self, seqs, Y):
        import torch
        from torch import nn

        Y = np.asarray(Y, dtype=float).reshape(len(seqs), -1)
        self.mean_ = Y.mean(0)
        self.std_ = Y.std(0)
        self.std_[self.std_ < 1e-12] = 1.0
        with seeded_torch(self.seed):
            self.emb_ = nn.Embedding(int(self.vocab), int(self.embed), padding_idx=0)
            self.lstm_ = nn.LSTM(int(self.embed), int(self.hidden), batch_first=True)
            self.head_ = nn.Linear(int(self.hidden), Y.shape[1])
        params = [*self.emb_.parameters(), *self.lstm_.parameters(), *self.head_.parameters()]
        opt = torch.optim.Adam(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
        X, L = self._tensors(seqs)
        T = torch.as_tensor((Y - self.mean_) / self.std_, dtype=torch.float32)
        for _ in range(int(self.epochs)):
            opt.zero_grad()
            loss = torch.mean((self._forward(X, L) - T) ** 2)
            loss.backward()
            opt.step()
        self.train_loss_ = float(loss.detach())
        return self

    def predict(self, seqs: Sequence[Sequence[int]]) -> np.ndarray:
        import torch

        X, L = self._tensors(seqs)
        with torch.no_grad(), torch_threads(self.threads):
            out = self._forward(X, L).numpy().astype(float)
        return out * self.std_ + self.mean_


def torch_arange(n):
    import torch

    return torch.arange(n)


# -- progressions: how a space grows one step at a time ------------------------------------------------------


class GeneProgression:
    """Grow a gene vector one gene at a time; genes not chosen yet hold ``fill``."""

    def __init__(self, space, fill: int, max_length: int | None):
        self.space = space
        self.cards = [int(c) for c in space.cardinalities()]
        self.n_steps = len(self.cards) if max_length is None else min(int(max_length), len(self.cards))
        self.fill = [min(int(fill), c - 1) for c in self.cards]
        self.offsets = np.concatenate([[0], np.cumsum(self.cards)])
        self.vocab = int(self.offsets[-1]) + 1

    def choices(self, step: int) -> int:
        return self.cards[step]

    def arch(self, prefix: Sequence[int]) -> Arch:
        return self.space.make(list(prefix) + self.fill[len(prefix):])

    def tokens(self, prefix: Sequence[int]) -> list[int]:
        return [int(self.offsets[i]) + int(c) + 1 for i, c in enumerate(prefix)]


class LayerProgression:
    """Grow a layer sequence (spaces with ``layer_choices()`` and ``from_layers(seq)``, e.g. ``dppnet``)."""

    def __init__(self, space, max_length: int | None):
        self.space = space
        self.n_choices = int(space.layer_choices())
        top = int(space.max_length)
        self.n_steps = top if max_length is None else min(int(max_length), top)
        self.vocab = self.n_choices + 1

    def choices(self, step: int) -> int:
        return self.n_choices

    def arch(self, prefix: Sequence[int]) -> Arch:
        return self.space.from_layers(list(prefix))

    def tokens(self, prefix: Sequence[int]) -> list[int]:
        return [int(c) + 1 for c in prefix]


def progression_for(space, fill: int | None, max_length: int | None):
    if hasattr(space, "from_layers") and hasattr(space, "layer_choices"):
        return LayerProgression(space, max_length)
    if fill is None:
        fill = DEFAULT_FILL.get(space.name, 0)
    return GeneProgression(space, fill, max_length)


# -- the strategy -------------------------------------------------------------------------------------------


class DPPNet:
    """DPP-Net progressive search with an LSTM accuracy surrogate and Pareto (NSGA-II style) selection."""

    name = "dppnet"

    def __init__(self, k: int | None = None, max_length: int | None = None, epochs: int = 300,
                 hidden: int = 64, embed: int = 16, lr: float = 0.01, fill: int | None = None,
                 accuracy_objective: str | None = None, hv_ref: Sequence[float] | None = None, threads: int = 1):
        self.k = k
        self.max_length = max_length
        self.epochs = epochs
        self.hidden = hidden
        self.embed = embed
        self.lr = lr
        self.fill = fill
        self.accuracy_objective = accuracy_objective
        self.hv_ref = hv_ref
        self.threads = threads

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("k", "max_length", "epochs", "hidden", "embed", "lr", "fill",
                                              "accuracy_objective", "hv_ref", "threads")}

    @staticmethod
    def auto_k(budget: int, n_first: int, n_steps: int) -> int:
        """Largest K with n_first + K * (n_steps - 1) <= budget (at least 1)."""
        if n_steps <= 1:
            return max(1, n_first)
        return max(1, (int(budget) - n_first) // (n_steps - 1))

    def _cheap_costs(self, evaluator, archs, idx):
        """Cost objectives the evaluator gives without spending budget (``objective_values(archs, names)``),
        else None (the surrogate predicts them)."""
        fn = getattr(evaluator, "cost_values", None)
        if fn is None or not idx:
            return None
        try:
            out = fn(archs, [evaluator.objectives[i].label for i in idx])
        except (NotImplementedError, KeyError, ValueError):
            return None
        return None if out is None else np.asarray(out, dtype=float).reshape(len(archs), len(idx))

    def run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        with torch_threads(self.threads):
            return self._run(space, evaluator, budget, rng, callback)

    def _run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        objectives = tuple(evaluator.objectives)
        ai = accuracy_index(objectives, self.accuracy_objective)
        others = [i for i in range(len(objectives)) if i != ai]
        if self.k is not None and int(self.k) < 1:
            raise HwnasError(f"DPP-Net k must be >= 1, got {self.k}")
        if self.max_length is not None and int(self.max_length) < 1:
            raise HwnasError(f"DPP-Net max_length must be >= 1, got {self.max_length}")
        prog = progression_for(space, self.fill, self.max_length)
        guard = BudgetedEvaluation(evaluator, budget)
        seed = torch_seed(rng)
        history: list[dict] = []
        prefixes: dict[str, tuple[int, ...]] = {}  # arch id -> the layer sequence that produced it

        def record(step, length, extra=None):
            row = {"step": step, "n_evals": int(evaluator.n_unique), "hypervolume": hypervolume_of(evaluator, self.hv_ref),
                   "length": length, **(extra or {})}
            history.append(row)
            if callback is not None:
                callback(dict(row))

        # length 1: every choice of the first layer (a random subset when the budget is smaller)
        first = [(c,) for c in range(prog.choices(0))]
        if len(first) > guard.remaining:
            pick = np.sort(rng.choice(len(first), size=guard.remaining, replace=False))
            first = [first[i] for i in pick]
        k = int(self.k) if self.k is not None else self.auto_k(budget, len(first), prog.n_steps)
        current = self._evaluate(prog, guard, first, prefixes)
        record(1, 1, {"k": k})
        step = 1
        for length in range(2, prog.n_steps + 1):
            if guard.exhausted or not current:
                break
            step += 1
            # fit the surrogate on everything evaluated so far
            seqs, Y = [], []
            for aid, pre in prefixes.items():
                f = guard.seen.get(aid)
                if f is not None:
                    seqs.append(prog.tokens(pre))
                    Y.append(f)
            Y = np.asarray(Y, dtype=float)
            cands = []
            seen_c = set()
            for pre in current:
                for c in range(prog.choices(length - 1)):
                    p = tuple(pre) + (c,)
                    a = prog.arch(p)
                    if a.arch_id not in seen_c:
                        seen_c.add(a.arch_id)
                        cands.append((p, a))
            archs = [a for _, a in cands]
            cheap = self._cheap_costs(evaluator, archs, others)
            targets = [ai] if cheap is not None else [ai] + others
            sur = LSTMSurrogate(prog.vocab, n_out=len(targets), embed=int(self.embed), hidden=int(self.hidden),
                                epochs=int(self.epochs), lr=float(self.lr), seed=seed + step)
            sur.fit(seqs, Y[:, targets])
            pred = sur.predict([prog.tokens(p) for p, _ in cands])
            F = np.empty((len(cands), len(objectives)))
            for j, t in enumerate(targets):
                F[:, t] = pred[:, j]
            if cheap is not None:
                F[:, others] = cheap
            for i, a in enumerate(archs):  # already evaluated: use the true values
                f = guard.known(a)
                if f is not None:
                    F[i] = f
            keep = pareto_select(F, k)
            chosen = [cands[i][0] for i in keep]
            current = self._evaluate(prog, guard, chosen, prefixes)
            record(step, length, {"k": k, "n_candidates": len(cands), "surrogate_train_loss": sur.train_loss_})
        config = {**self.get_params(), "k_used": k, "budget": int(budget), "seed": seed,
                  "n_steps": prog.n_steps, "progression": type(prog).__name__,
                  "accuracy_objective": objectives[ai].label,
                  "stopped": "budget" if guard.exhausted else "max_length"}
        return SearchResult(strategy=self.name, space=space.name, objectives=objectives,
                            evaluations=list(evaluator.evaluations()), history=history, config=config)

    @staticmethod
    def _evaluate(prog, guard, prefixes_in, prefixes):
        archs = [prog.arch(p) for p in prefixes_in]
        kept, _ = guard.evaluate(archs)
        kept_ids = {a.arch_id for a in kept}
        out = []
        for p, a in zip(prefixes_in, archs):
            if a.arch_id in kept_ids:
                prefixes.setdefault(a.arch_id, tuple(p))
                out.append(tuple(p))
        return out


__all__ = ["DPPNet", "LSTMSurrogate", "pareto_select", "GeneProgression", "LayerProgression", "is_accuracy_objective"]
