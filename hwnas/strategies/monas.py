"""MONAS: multi-objective NAS by reinforcement learning (Hsu et al., 2018, arXiv 1806.10332).

A "robot network" (an LSTM controller) emits one categorical choice per gene of the search space: its first
input is a fixed zero vector (``learn_input=True``: a trained one), at step t it reads the previous choice as
a one-hot vector (``feedback=False``: zeros at every step), its softmax head for gene t gives p(a_t | a_<t), and a
choice is sampled. The "target networks" built from N sampled gene vectors are evaluated by the Evaluator
(accuracy + device cost), each gets a reward, and the controller is updated with REINFORCE (Williams 1992,
as in Zoph & Le 2017):

    grad J ~ 1/N sum_i sum_t grad log p(a_t^i | a_<t^i) * (R_i - b),   b <- decay * b + (1 - decay) * mean(R)

Rewards (``reward=``): ``mixed`` R = alpha * Acc - (1 - alpha) * Cost/cost_ref; ``constrained``
R = Acc if Cost <= threshold else penalty; ``accuracy_floor`` R = 1 - Cost/cost_ref if Acc >= threshold
else penalty (minimise cost subject to an accuracy floor). Acc is a fraction in [0, 1]. With
``penalise_violations`` (default) a target that breaks any bound of the evaluator (``--constraint``, e.g. a
peak power limit while the reward is on energy) gets ``penalty`` whatever the reward would be.

What the papers do not pin down is a documented parameter (see docs/reproductions.md): controller size,
learning rate, batch N, baseline decay, cost normalisation (``cost_ref``; default: the largest cost seen so
far), penalty, and when to stop once the policy has converged (``patience`` steps without a new arch).
Budget = unique architectures evaluated; re-sampled architectures are served from the evaluator's cache and
still give the controller their reward.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..contracts import SearchResult
from ..errors import HwnasError
from ..params import Params
from .toolkit import (Budget, Recorder, accuracy_from_value, accuracy_index, cost_index, seeded_torch, torch_seed,
                      torch_threads)

# -- rewards -----------------------------------------------------------------------------------------------


class MixedReward:
    """R = alpha * Acc - (1 - alpha) * Cost_normalised."""

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def __call__(self, acc: np.ndarray, cost: np.ndarray, cost_norm: np.ndarray) -> np.ndarray:
        return self.alpha * acc - (1.0 - self.alpha) * cost_norm


class ConstrainedReward:
    """R = Acc if Cost <= threshold (in the cost objective's unit) else penalty."""

    def __init__(self, threshold: float, penalty: float = 0.0):
        self.threshold, self.penalty = threshold, penalty

    def __call__(self, acc, cost, cost_norm):
        return np.where(cost <= self.threshold, acc, self.penalty)


class AccuracyFloorReward:
    """Minimise cost subject to Acc >= threshold (accuracy in %): R = 1 - Cost_normalised if the floor is met,
    else penalty."""

    def __init__(self, threshold: float, penalty: float = 0.0):
        self.threshold, self.penalty = threshold, penalty

    def __call__(self, acc, cost, cost_norm):
        return np.where(acc * 100.0 >= self.threshold, 1.0 - cost_norm, self.penalty)


REWARDS = {"mixed": MixedReward, "constrained": ConstrainedReward, "accuracy_floor": AccuracyFloorReward}


# -- controller --------------------------------------------------------------------------------------------


def _controller_class():
    import torch
    from torch import nn

    class Controller(nn.Module):
        """LSTM policy over a gene sequence: previous choice in (one-hot), one softmax head per gene.

        The first step's input is a zero vector (MONAS) unless ``learn_input`` makes it a trained parameter;
        ``feedback=False`` feeds zeros at every step (the choices then reach later steps only through the
        LSTM state)."""

        def __init__(self, cards: Sequence[int], hidden: int = 64, layers: int = 1, learn_input: bool = False,
                     feedback: bool = True):
            super().__init__()
            self.cards = [int(c) for c in cards]
            self.width = max(self.cards)
            self.feedback = bool(feedback)
            if learn_input:
                self.start = nn.Parameter(torch.zeros(self.width))
            else:
                self.register_buffer("start", torch.zeros(self.width))
            self.cells = nn.ModuleList(nn.LSTMCell(self.width if i == 0 else hidden, hidden) for i in range(layers))
            self.heads = nn.ModuleList(nn.Linear(hidden, c) for c in self.cards)
            self.hidden = hidden

        def _steps(self, n: int, actions=None, generator=None, temperature: float = 1.0):
            """Run the policy over all genes; sample (actions None) or score given actions.
            Returns actions (n, T), summed log-prob (n,), summed entropy (n,)."""
            state = [(torch.zeros(n, self.hidden), torch.zeros(n, self.hidden)) for _ in self.cells]
            x = self.start.expand(n, self.width)
            logp = torch.zeros(n)
            ent = torch.zeros(n)
            out = []
            for t, card in enumerate(self.cards):
                h = x
                new_state = []
                for cell, (hc, cc) in zip(self.cells, state):
                    hc, cc = cell(h, (hc, cc))
                    new_state.append((hc, cc))
                    h = hc
                state = new_state
                logits = self.heads[t](h) / temperature
                logprobs = torch.log_softmax(logits, dim=-1)
                if actions is None:
                    a = torch.multinomial(logprobs.exp().detach(), 1, generator=generator).squeeze(1)
                else:
                    a = actions[:, t]
                out.append(a)
                logp = logp + logprobs.gather(1, a[:, None]).squeeze(1)
                ent = ent - (logprobs.exp() * logprobs).sum(-1)
                x = torch.nn.functional.one_hot(a, self.width).float() if self.feedback else torch.zeros(n, self.width)
            return torch.stack(out, 1), logp, ent

        def sample(self, n: int, generator):
            return self._steps(n, generator=generator)

        def log_prob(self, actions):
            return self._steps(len(actions), actions=actions)[1]

    return Controller


def _sampled_rows(archs, kept, F) -> tuple[list[int], np.ndarray]:
    """(indices of the sampled archs that were evaluated, their objective rows). The canonical genes may differ
    from the sampled ones (inactive genes); what was sampled is scored."""
    kept_ids = {a.arch_id for a in kept}
    rows = [i for i, a in enumerate(archs) if a.arch_id in kept_ids]
    by_id = {a.arch_id: f for a, f in zip(kept, F)}
    return rows, np.array([by_id[archs[i].arch_id] for i in rows], dtype=float)


class MONAS(Params):
    """MONAS search strategy (REINFORCE-trained LSTM controller over the space's genes)."""

    name = "monas"

    def __init__(self, reward: str = "mixed", alpha: float = 0.5, threshold: float | None = None,
                 penalty: float = 0.0, cost_objective: str | None = None, accuracy_objective: str | None = None,
                 cost_ref: float | None = None, batch_size: int = 8, hidden: int = 64, layers: int = 1,
                 lr: float = 0.0035, baseline_decay: float = 0.95, entropy_weight: float = 0.0,
                 patience: int = 50, learn_input: bool = False, feedback: bool = True, penalise_violations: bool = True,
                 threads: int = 1):
        self.reward = reward
        self.learn_input = learn_input
        self.feedback = feedback
        self.penalise_violations = penalise_violations
        self.alpha = alpha
        self.threshold = threshold
        self.penalty = penalty
        self.cost_objective = cost_objective
        self.accuracy_objective = accuracy_objective
        self.cost_ref = cost_ref
        self.batch_size = batch_size
        self.hidden = hidden
        self.layers = layers
        self.lr = lr
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.patience = patience
        self.threads = threads

    def _make_reward(self, objectives, ci):
        if self.reward not in REWARDS:
            raise HwnasError(f"unknown MONAS reward {self.reward!r}; known: {', '.join(REWARDS)}")
        if self.reward == "mixed":
            if not 0.0 <= float(self.alpha) <= 1.0:
                raise HwnasError(f"MONAS alpha must be in [0, 1], got {self.alpha}")
            return MixedReward(float(self.alpha))
        if self.reward == "constrained":
            threshold = self.threshold if self.threshold is not None else objectives[ci].bound
            if threshold is None:
                raise HwnasError(f"MONAS reward 'constrained' needs threshold= (a bound on {objectives[ci].label})")
            return ConstrainedReward(float(threshold), float(self.penalty))
        if self.threshold is None:
            raise HwnasError("MONAS reward 'accuracy_floor' needs threshold= (the accuracy floor in %)")
        return AccuracyFloorReward(float(self.threshold), float(self.penalty))

    def run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        import torch

        objectives = tuple(evaluator.objectives)
        ai = accuracy_index(objectives, self.accuracy_objective)
        ci = cost_index(objectives, ai, self.cost_objective)
        reward_fn = self._make_reward(objectives, ci)
        self._check_params()
        cards = [int(c) for c in space.cardinalities()]
        guard = Budget(evaluator, budget, space)
        rec = Recorder(evaluator, callback)

        seed = torch_seed(rng)
        with seeded_torch(seed):
            controller = _controller_class()(cards, hidden=int(self.hidden), layers=int(self.layers),
                                             learn_input=bool(self.learn_input), feedback=bool(self.feedback))
        gen = torch.Generator().manual_seed(seed + 1)
        opt = torch.optim.Adam(controller.parameters(), lr=float(self.lr))
        baseline: float | None = None
        cost_max = 0.0
        best = (-math.inf, None)
        stall = 0
        step = 0
        while not guard.exhausted and stall < int(self.patience):
            step += 1
            before = evaluator.n_unique
            with torch_threads(self.threads):  # the controller only: evaluation keeps its own threads
                actions, _, _ = controller.sample(int(self.batch_size), gen)
            archs = [space.make(a.tolist()) for a in actions]
            kept, F = guard.evaluate(archs)
            if not kept:
                break
            rows, Fb = _sampled_rows(archs, kept, F)
            cost_max = max(cost_max, float(np.max(Fb[:, ci])))
            R = self._rewards(evaluator, objectives, (ai, ci), reward_fn, [archs[i] for i in rows], Fb, cost_max)
            baseline = self._reinforce(controller, opt, actions[rows], R, baseline)
            for i, r in zip(rows, R):
                if r > best[0]:
                    best = (float(r), archs[i])
            stall = stall + 1 if evaluator.n_unique == before else 0
            rec.record(step, reward_mean=float(R.mean()), reward_max=float(R.max()), baseline=baseline)
        config = {**self.get_params(), "budget": int(budget), "seed": seed,
                  "best_reward": best[0] if best[1] is not None else None,
                  "best_arch": space.to_string(best[1]) if best[1] is not None else None,
                  "accuracy_objective": objectives[ai].label, "cost_objective_used": objectives[ci].label,
                  "stopped": "budget" if guard.exhausted else "converged"}
        return rec.result(self.name, space, config)

    def _check_params(self) -> None:
        if int(self.batch_size) < 1:
            raise HwnasError(f"MONAS batch_size must be >= 1, got {self.batch_size}")
        if self.cost_ref is not None and float(self.cost_ref) <= 0:
            raise HwnasError(f"MONAS cost_ref must be > 0, got {self.cost_ref}")

    def _rewards(self, evaluator, objectives, aci: tuple[int, int], reward_fn, targets, Fb: np.ndarray,
                 cost_max: float) -> np.ndarray:
        """The reward of each evaluated target (accuracy and cost at ``aci``; cost normalized by ``cost_ref`` or
        the largest cost seen); a target that breaks a bound of the evaluator gets the penalty."""
        ai, ci = aci
        acc = np.array([accuracy_from_value(objectives[ai], v) for v in Fb[:, ai]])
        cost = Fb[:, ci]
        ref = float(self.cost_ref) if self.cost_ref is not None else (cost_max if cost_max > 0 else 1.0)
        R = np.asarray(reward_fn(acc, cost, cost / ref), dtype=float)
        if self.penalise_violations and hasattr(evaluator, "violations"):
            # any bound of the evaluator (e.g. --constraint peak_power_w@DEV<=W) that a target breaks
            V = np.asarray(evaluator.violations(targets), dtype=float)
            R = np.where(V > 0, float(self.penalty), R)
        return R

    def _reinforce(self, controller, opt, actions, R: np.ndarray, baseline: float | None) -> float:
        """One REINFORCE step on the sampled ``actions`` (advantage: reward - moving baseline, plus an entropy
        bonus); returns the updated baseline."""
        import torch

        if baseline is None:
            baseline = float(R.mean())
        adv = torch.as_tensor(R - baseline, dtype=torch.float32)
        baseline = float(self.baseline_decay) * baseline + (1 - float(self.baseline_decay)) * float(R.mean())
        with torch_threads(self.threads):
            _, logp, ent = controller._steps(len(actions), actions=actions)
            loss = -(adv * logp).mean() - float(self.entropy_weight) * ent.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return baseline

    # exposed for tests and analysis
    @staticmethod
    def controller(cards: Sequence[int], hidden: int = 64, layers: int = 1, seed: int = 0, learn_input: bool = False,
                   feedback: bool = True):
        with seeded_torch(seed):
            return _controller_class()(cards, hidden=hidden, layers=layers, learn_input=learn_input,
                                       feedback=feedback)
