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
partial cell is still a connected network).

Budget = unique architectures evaluated. ``k`` fixed: K cells per length (PNAS/DPP-Net), and whatever budget
the progression does not need stays unspent. ``k=None`` (default): what is left of the budget is spread over
the remaining lengths (K_l = ceil(left / lengths left)), counting only new architectures, and the last length
takes all that is left, in Pareto order of the predictions, so the budget is spent exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..contracts import Arch
from ..errors import HwnasError
from ._shared import BudgetedEvaluation, accuracy_index, seeded_torch, torch_seed, torch_threads
from ..contracts import SearchResult
from .common import Recorder

DEFAULT_FILL = {"nb201": 1}  # skip_connect: an unfilled nb201 edge passes its input through


# -- Pareto selection ----------------------------------------------------------------------------------------


def pareto_order(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """All row indices of F (minimised) in NSGA-II survival order: non-dominated fronts in turn, each front by
    decreasing crowding distance (ties: lower index first); rows with violation > 0 after every feasible
    row, by increasing violation."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    n = len(F)
    violation = np.zeros(n) if violation is None else np.asarray(violation, dtype=float)
    feasible = np.flatnonzero(violation <= 0)
    out: list[int] = []
    if len(feasible):
        for front in NonDominatedSorting().do(F[feasible]):
            front = np.sort(np.asarray(front, dtype=int))
            cd = calc_crowding_distance(F[feasible][front]) if len(front) > 2 else np.full(len(front), np.inf)
            cd = np.nan_to_num(cd, nan=0.0, posinf=np.finfo(float).max)
            out.extend(feasible[front[np.lexsort((front, -cd))]].tolist())
    infeasible = np.flatnonzero(violation > 0)
    out.extend(infeasible[np.argsort(violation[infeasible], kind="stable")].tolist())
    return np.array(out, dtype=int)


def pareto_select(F: np.ndarray, k: int, violation: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted) of exactly min(k, n) rows of F: whole non-dominated fronts in order, the front that
    does not fit entirely filled by largest crowding distance (NSGA-II survival)."""
    if int(k) < 0:
        raise HwnasError(f"pareto_select: k must be >= 0, got {k}")
    return np.sort(pareto_order(F, violation)[: int(k)])


# -- surrogate ------------------------------------------------------------------------------------------------


class LSTMSurrogate:
    """An LSTM regressor from token sequences (ints >= 1; 0 pads) to one or more targets.

    Targets are standardised; training is full-batch Adam for at most ``epochs`` steps (stopping early once
    the training loss is below 1e-3 or has not improved by 1% for ``patience`` steps), seeded by ``seed``.
    """

    def __init__(self, vocab: int, n_out: int = 1, embed: int = 16, hidden: int = 64, epochs: int = 300,
                 lr: float = 0.01, weight_decay: float = 1e-4, patience: int | None = 20, seed: int = 0,
                 threads: int = 1):
        self.vocab = vocab
        self.n_out = n_out
        self.embed = embed
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
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
        best, since = np.inf, 0
        self.epochs_run_ = 0
        for _ in range(int(self.epochs)):
            opt.zero_grad()
            loss = torch.mean((self._forward(X, L) - T) ** 2)
            loss.backward()
            opt.step()
            self.epochs_run_ += 1
            value = float(loss.detach())
            if value < 1e-3:
                break  # fitted (standardised targets: 0.1% of their variance left)
            if value < best * (1 - 1e-2):
                best, since = value, 0
            else:
                since += 1
                if self.patience and since >= int(self.patience):
                    break  # the training loss has stopped improving by 1% per `patience` steps
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


STATIC = {"params": "params", "macs": "macs", "peak_memory_bytes": "peak_activation_bytes"}


def cheap_objective_values(evaluator, space, archs: Sequence[Arch], idx: Sequence[int], cache: dict) -> dict[int, np.ndarray]:
    """Objective columns (by index) that can be had without spending budget: static costs counted from the
    built graph, and device costs whose source is a table or a predictor (``source.values(space, archs,
    metric)``). Measured costs (device in the loop) and anything that fails are left to the surrogate."""
    out: dict[int, np.ndarray] = {}
    sources = getattr(evaluator, "costs", None) or {}
    for j in idx:
        obj = evaluator.objectives[j]
        try:
            if obj.name in STATIC:
                col = []
                for a in archs:
                    if a.arch_id not in cache:
                        cache[a.arch_id] = space.static_costs(a)
                    col.append(getattr(cache[a.arch_id], STATIC[obj.name]))
                out[j] = np.asarray(col, dtype=float)
            elif obj.label in sources and getattr(sources[obj.label], "cheap", False):
                out[j] = np.asarray(sources[obj.label].values(space, list(archs), obj.name)[0], dtype=float)
        except (HwnasError, KeyError, ValueError, NotImplementedError):
            continue
    return out


class DPPNet:
    """DPP-Net progressive search with an LSTM accuracy surrogate and Pareto (NSGA-II style) selection."""

    name = "dppnet"

    def __init__(self, k: int | None = None, max_length: int | None = None, epochs: int = 300,
                 hidden: int = 32, embed: int = 16, lr: float = 0.01, fill: int | None = None,
                 accuracy_objective: str | None = None, cheap_costs: bool = True, threads: int = 1):
        self.k = k
        self.max_length = max_length
        self.epochs = epochs
        self.hidden = hidden
        self.embed = embed
        self.lr = lr
        self.fill = fill
        self.accuracy_objective = accuracy_objective
        self.cheap_costs = cheap_costs
        self.threads = threads

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("k", "max_length", "epochs", "hidden", "embed", "lr", "fill",
                                              "accuracy_objective", "cheap_costs", "threads")}

    def run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        objectives = tuple(evaluator.objectives)
        ai = accuracy_index(objectives, self.accuracy_objective)
        others = [i for i in range(len(objectives)) if i != ai]
        if self.k is not None and int(self.k) < 1:
            raise HwnasError(f"DPP-Net k must be >= 1, got {self.k}")
        if self.max_length is not None and int(self.max_length) < 1:
            raise HwnasError(f"DPP-Net max_length must be >= 1, got {self.max_length}")
        prog = progression_for(space, self.fill, self.max_length)
        guard = BudgetedEvaluation(evaluator, min(int(budget), space.size()))
        rec = Recorder(evaluator, callback)
        seed = torch_seed(rng)
        prefixes: dict[str, tuple[int, ...]] = {}  # arch id -> the layer sequence that first produced it
        static_cache: dict = {}
        bounds = [(j, o.bound) for j, o in enumerate(objectives) if o.bound is not None]

        # length 1: every choice of the first layer (a random subset when the budget is smaller)
        first = [(c,) for c in range(prog.choices(0))]
        if len(first) > guard.remaining:
            pick = np.sort(rng.choice(len(first), size=guard.remaining, replace=False))
            first = [first[i] for i in pick]
        current = self._evaluate(prog, guard, first, prefixes)
        rec.record(1, length=1, k=len(current))
        ks = []
        step = 1
        for length in range(2, prog.n_steps + 1):
            if guard.exhausted or not current:
                break
            step += 1
            # the surrogate learns everything evaluated so far: layer sequence -> objectives
            seqs, Y = [], []
            for aid, pre in prefixes.items():
                f = guard.seen.get(aid)
                if f is not None:
                    seqs.append(prog.tokens(pre))
                    Y.append(f)
            Y = np.asarray(Y, dtype=float)
            # expand every current cell by every choice of the next layer
            cands: list[tuple[tuple[int, ...], Arch]] = []
            ids = set()
            for pre in current:
                for c in range(prog.choices(length - 1)):
                    p = tuple(pre) + (c,)
                    a = prog.arch(p)
                    if a.arch_id not in ids:
                        ids.add(a.arch_id)
                        cands.append((p, a))
            archs = [a for _, a in cands]
            cheap = cheap_objective_values(evaluator, space, archs, others, static_cache) if self.cheap_costs else {}
            targets = [ai] + [j for j in others if j not in cheap]
            sur = LSTMSurrogate(prog.vocab, n_out=len(targets), embed=int(self.embed), hidden=int(self.hidden),
                                epochs=int(self.epochs), lr=float(self.lr), seed=seed + step, threads=int(self.threads))
            sur.fit(seqs, Y[:, targets])
            pred = sur.predict([prog.tokens(p) for p, _ in cands])
            F = np.empty((len(cands), len(objectives)))
            for col, j in enumerate(targets):
                F[:, j] = pred[:, col]
            for j, v in cheap.items():
                F[:, j] = v
            for i, a in enumerate(archs):  # already evaluated: the true values
                f = guard.known(a)
                if f is not None:
                    F[i] = f
            violation = np.zeros(len(F))
            for j, b in bounds:
                violation += np.maximum(F[:, j] - b, 0.0)
            order = pareto_order(F, violation)
            if self.k is not None:
                k = int(self.k)
                chosen = [cands[i][0] for i in order[:k]]
            else:  # spread what is left of the budget over the remaining lengths; the last one takes the rest
                left = guard.remaining
                k = left if length == prog.n_steps else -(-left // (prog.n_steps - length + 1))
                chosen, n_new = [], 0
                for i in order:
                    if n_new >= k:
                        break
                    chosen.append(cands[i][0])
                    n_new += guard.known(cands[i][1]) is None
            ks.append(k)
            current = self._evaluate(prog, guard, chosen, prefixes)
            rec.record(step, length=length, k=k, n_candidates=len(cands),
                       surrogate_train_loss=sur.train_loss_, predicted=[objectives[j].label for j in targets])
        config = {**self.get_params(), "k_used": ks, "budget": int(budget), "seed": seed,
                  "n_steps": prog.n_steps, "progression": type(prog).__name__,
                  "accuracy_objective": objectives[ai].label,
                  "stopped": "budget" if guard.exhausted else "max_length"}
        return rec.result(self.name, space, config)

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


__all__ = ["DPPNet", "LSTMSurrogate", "pareto_order", "pareto_select", "cheap_objective_values", "GeneProgression",
           "LayerProgression"]
