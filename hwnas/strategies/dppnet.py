"""DPP-Net: device-aware progressive search for Pareto-optimal networks (Dong et al., ECCV 2018,
arXiv 1806.08198), as a search strategy over any hwnas space.

Progressive sequential model-based optimisation (as in PNAS, Liu et al. 2018):

1. evaluate every cell of the first length (every choice of the first layer);
2. for each longer length up to max_length: fit an LSTM surrogate that regresses accuracy (and any cost objective the
   evaluator cannot give for free) from the layer sequence of everything evaluated so far; expand each of
   the K current cells by every choice of the next layer; predict their accuracy; take their device
   objectives from the evaluator's cost objectives; keep K by Pareto selection (non-dominated sorting, the
   last front filled by crowding distance so that exactly K remain); evaluate those K; they are the
   current cells for the next length.

On the ``dppnet`` space (``growth="layer"``, the default) a cell grows by one layer per step, a Norm or a Conv
by turn (3 or 6 children per cell), starting from every (Norm, Conv) pair; ``growth="pair"`` grows one
(Norm, Conv) pair per step (18 children). Any other space grows one gene per step, the genes not yet chosen set to
``fill`` (default: the space's ``partial_fill``; nb201: edges are filled in arch-string order, unfilled edges
are ``skip_connect`` so a partial cell is still a connected network).

Budget = unique architectures evaluated. ``k`` fixed: K cells per length (PNAS/DPP-Net; the ``dppnet`` recipe's
mode), and whatever budget the progression does not need (``budget_needed(space)``) stays unspent. ``k=None`` (default): what is left of the budget is spread over
the remaining lengths (K_l = ceil(left / lengths left)), counting only new architectures, and the last length
takes all that is left, in Pareto order of the predictions, so the budget is spent exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..contracts import Arch, SearchResult
from ..errors import HwnasError
from ..params import Params
from ..pareto import pareto_order
from .toolkit import Budget, Recorder, accuracy_index, cheap_objective_values, seeded_torch, torch_seed, torch_threads


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
        import torch

        out, _ = self.lstm_(self.emb_(X))
        last = out[torch.arange(len(X)), L - 1]
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


# -- progressions: how a space grows one step at a time ------------------------------------------------------


class GeneProgression:
    """Grow a gene vector one gene at a time; genes not chosen yet hold ``fill``. Length = genes chosen."""

    unit = "genes"

    def __init__(self, space, fill: int, max_length: int | None):
        self.space = space
        self.cards = [int(c) for c in space.cardinalities()]
        self.n_steps = len(self.cards) if max_length is None else min(int(max_length), len(self.cards))
        self.fill = [min(int(fill), c - 1) for c in self.cards]
        self.offsets = np.concatenate([[0], np.cumsum(self.cards)])
        self.vocab = int(self.offsets[-1]) + 1

    def first(self) -> list[tuple[int, ...]]:
        return [(c,) for c in range(self.cards[0])]

    def children(self, prefix: Sequence[int]) -> list[tuple[int, ...]]:
        return [tuple(prefix) + (c,) for c in range(self.cards[len(prefix)])]

    def arch(self, prefix: Sequence[int]) -> Arch:
        return self.space.make(list(prefix) + self.fill[len(prefix):])

    def tokens(self, prefix: Sequence[int]) -> list[int]:
        return [int(self.offsets[i]) + int(c) + 1 for i, c in enumerate(prefix)]


class LayerProgression(GeneProgression):
    """Grow a cell by one (Norm, Conv) pair per step (spaces with ``layer_choices()`` / ``from_layers(seq)``):
    3 x 6 = 18 children per cell. Length = pairs."""

    unit = "pairs"

    def __init__(self, space, max_length: int | None):
        self.space = space
        self.n_choices = int(space.layer_choices())
        top = int(space.max_length)
        self.n_steps = top if max_length is None else min(int(max_length), top)
        self.cards = [self.n_choices] * top
        self.vocab = self.n_choices + 1

    def arch(self, prefix: Sequence[int]) -> Arch:
        return self.space.from_layers(list(prefix))

    def tokens(self, prefix: Sequence[int]) -> list[int]:
        return [int(c) + 1 for c in prefix]


class SingleLayerProgression(GeneProgression):
    """Grow a cell by one layer per step, a Norm (3 children) or a Conv (6 children) by turn, in CondenseNet's
    pre-activation order (Norm, Conv, Norm, Conv, ...; spaces with ``single_layer_choices`` /
    ``from_single_layers``, e.g. ``dppnet``). The first step evaluates every (Norm, Conv) start (3 x 6 = 18:
    a cell needs a conv); a cell ending in a Norm is evaluated with that Norm on its output. Length = single
    layers, from 2 to 2 x the space's ``max_length``; ``n_steps`` counts the lengths visited."""

    unit = "layers"

    def __init__(self, space, max_length: int | None):
        self.space = space
        top = 2 * int(space.max_length)
        top = top if max_length is None else min(int(max_length), top)
        self.n_steps = max(1, top - 1)
        self.cards = [int(space.single_layer_choices(i)) for i in range(max(top, 2))]
        self.n_norms = int(space.single_layer_choices(0))
        self.vocab = self.n_norms + int(space.single_layer_choices(1)) + 1

    def first(self) -> list[tuple[int, ...]]:
        return [(n, c) for n in range(self.cards[0]) for c in range(self.cards[1])]

    def arch(self, prefix: Sequence[int]) -> Arch:
        return self.space.from_single_layers(list(prefix))

    def tokens(self, prefix: Sequence[int]) -> list[int]:  # Norms 1..3, Convs 4..9
        return [int(c) + 1 + (self.n_norms if i % 2 else 0) for i, c in enumerate(prefix)]


GROWTH = ("layer", "pair")


def progression_for(space, fill: int | None, max_length: int | None, growth: str = "layer"):
    if growth not in GROWTH:
        raise HwnasError(f"DPP-Net growth must be one of {', '.join(GROWTH)}, got {growth!r}")
    if growth == "layer" and hasattr(space, "from_single_layers") and hasattr(space, "single_layer_choices"):
        return SingleLayerProgression(space, max_length)
    if hasattr(space, "from_layers") and hasattr(space, "layer_choices"):
        return LayerProgression(space, max_length)
    if fill is None:
        fill = getattr(space, "partial_fill", 0)
    return GeneProgression(space, fill, max_length)


# -- the strategy -------------------------------------------------------------------------------------------


def _expand(prog, current) -> list[tuple[tuple[int, ...], Arch]]:
    """(prefix, arch) for every child of every current prefix, each arch once."""
    cands: list[tuple[tuple[int, ...], Arch]] = []
    ids = set()
    for pre in current:
        for p in prog.children(pre):
            a = prog.arch(p)
            if a.arch_id not in ids:
                ids.add(a.arch_id)
                cands.append((p, a))
    return cands


def _scores(prog, guard, prefixes: dict, sur: "LSTMSurrogate", cands, targets: list[int], cheap: dict,
            m: int) -> np.ndarray:
    """Every objective for the candidates: the surrogate, fitted on everything evaluated so far (layer sequence
    -> objectives), predicts ``targets``; cheap ones are known; an arch already evaluated keeps its true values."""
    seqs, Y = [], []
    for aid, pre in prefixes.items():
        f = guard.seen.get(aid)
        if f is not None:
            seqs.append(prog.tokens(pre))
            Y.append(f)
    sur.fit(seqs, np.asarray(Y, dtype=float)[:, targets])
    pred = sur.predict([prog.tokens(p) for p, _ in cands])
    F = np.empty((len(cands), m))
    for col, j in enumerate(targets):
        F[:, j] = pred[:, col]
    for j, v in cheap.items():
        F[:, j] = v
    for i, (_, a) in enumerate(cands):  # already evaluated: the true values
        f = guard.known(a)
        if f is not None:
            F[i] = f
    return F


class DPPNet(Params):
    """DPP-Net progressive search with an LSTM accuracy surrogate and Pareto (NSGA-II style) selection."""

    name = "dppnet"

    def __init__(self, k: int | None = None, max_length: int | None = None, epochs: int = 300,
                 hidden: int = 32, embed: int = 16, lr: float = 0.01, fill: int | None = None,
                 accuracy_objective: str | None = None, cheap_costs: bool = True, growth: str = "layer",
                 threads: int = 1):
        self.k = k
        self.growth = growth
        self.max_length = max_length
        self.epochs = epochs
        self.hidden = hidden
        self.embed = embed
        self.lr = lr
        self.fill = fill
        self.accuracy_objective = accuracy_objective
        self.cheap_costs = cheap_costs
        self.threads = threads

    def run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        objectives = tuple(evaluator.objectives)
        ai = accuracy_index(objectives, self.accuracy_objective)
        others = [i for i in range(len(objectives)) if i != ai]
        self._check_params()
        prog = progression_for(space, self.fill, self.max_length, self.growth)
        guard = Budget(evaluator, budget, space)
        rec = Recorder(evaluator, callback)
        seed = torch_seed(rng)
        prefixes: dict[str, tuple[int, ...]] = {}  # arch id -> the layer sequence that first produced it
        static_cache: dict = {}
        bounds = [(j, o.bound) for j, o in enumerate(objectives) if o.bound is not None]

        # the first length: every choice of the first layer (a random subset when the budget is smaller)
        first = prog.first()
        if len(first) > guard.remaining:
            pick = np.sort(rng.choice(len(first), size=guard.remaining, replace=False))
            first = [first[i] for i in pick]
        current = self._evaluate(prog, guard, first, prefixes)
        rec.record(1, length=len(first[0]), k=len(current))
        ks = []
        for step in range(2, prog.n_steps + 1):
            if guard.exhausted or not current:
                break
            cands = _expand(prog, current)  # every current cell by every choice of the next layer
            archs = [a for _, a in cands]
            cheap = cheap_objective_values(evaluator, space, archs, others, static_cache) if self.cheap_costs else {}
            targets = [ai] + [j for j in others if j not in cheap]
            sur = LSTMSurrogate(prog.vocab, n_out=len(targets), embed=int(self.embed), hidden=int(self.hidden),
                                epochs=int(self.epochs), lr=float(self.lr), seed=seed + step, threads=int(self.threads))
            F = _scores(prog, guard, prefixes, sur, cands, targets, cheap, len(objectives))
            violation = np.zeros(len(F))
            for j, b in bounds:
                violation += np.maximum(F[:, j] - b, 0.0)
            chosen, k = self._choose(pareto_order(F, violation), cands, guard, step, prog.n_steps)
            ks.append(k)
            current = self._evaluate(prog, guard, chosen, prefixes)
            rec.record(step, length=len(cands[0][0]), k=k, n_candidates=len(cands),
                       surrogate_train_loss=sur.train_loss_, predicted=[objectives[j].label for j in targets])
        config = {**self.get_params(), "k_used": ks, "budget": int(budget), "seed": seed,
                  "budget_needed": self.budget_needed(space),
                  "n_steps": prog.n_steps, "progression": type(prog).__name__, "length_unit": prog.unit,
                  "accuracy_objective": objectives[ai].label,
                  "stopped": "budget" if guard.exhausted else "max_length"}
        return rec.result(self.name, space, config)

    def _check_params(self) -> None:
        if self.k is not None and int(self.k) < 1:
            raise HwnasError(f"DPP-Net k must be >= 1, got {self.k}")
        if self.max_length is not None and int(self.max_length) < 1:
            raise HwnasError(f"DPP-Net max_length must be >= 1, got {self.max_length}")

    def _choose(self, order, cands, guard, step: int, n_steps: int) -> tuple[list, int]:
        """(the prefixes to evaluate next, k): the best ``k`` in Pareto order, or with ``k`` unset what is left
        of the budget spread over the remaining lengths (the last one takes the rest), counting new archs."""
        if self.k is not None:
            k = int(self.k)
            return [cands[i][0] for i in order[:k]], k
        left = guard.remaining
        k = left if step == n_steps else -(-left // (n_steps - step + 1))
        chosen, n_new = [], 0
        for i in order:
            if n_new >= k:
                break
            chosen.append(cands[i][0])
            n_new += guard.known(cands[i][1]) is None
        return chosen, k

    def budget_needed(self, space) -> int | None:
        """With a fixed ``k``: the most unique architectures the progression can evaluate (the first length's
        cells, then K per longer length); None in the spread mode (it spends whatever budget it is given)."""
        if self.k is None:
            return None
        prog = progression_for(space, self.fill, self.max_length, self.growth)
        return len(prog.first()) + int(self.k) * (prog.n_steps - 1)

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


__all__ = ["DPPNet", "LSTMSurrogate", "GeneProgression", "LayerProgression", "SingleLayerProgression"]
