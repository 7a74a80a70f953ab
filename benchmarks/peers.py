"""Peers for ``benchmarks/search.py --peers``: Optuna samplers and a BoTorch qLogNEHVI loop, run through the same
evaluator (hwnas table sources), the same budget accounting (unique archs; a repeated arch is served from the
cache and costs nothing) and the same score as hwnas's strategies. Benchmark-only (the optional ``bench`` extra).

Each peer treats every objective as a black box: it sees one categorical parameter per gene and the values the
evaluator returns; an arch the table lacks (nan) is told as a failed trial. On a constrained problem the Optuna
samplers get the evaluator's violation of each trial through their ``constraints_func`` (feasible: <= 0).
"""

from __future__ import annotations

import numpy as np

from hwnas.strategies.toolkit import Budget, Recorder


class OptunaPeer:
    """``optuna-nsga2`` | ``optuna-tpe`` (multivariate) | ``optuna-gp`` through ``study.ask``/``tell``."""

    def __init__(self, sampler: str):
        self.sampler = sampler
        self.name = f"optuna-{sampler}"

    def _make_sampler(self, seed: int, constrained: bool = False):
        import optuna

        # a constrained problem: the sampler sees the evaluator's violation (<= 0 feasible) of each trial
        cons = {"constraints_func": (lambda t: [t.user_attrs["violation"]])} if constrained else {}
        if self.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **cons)
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, **cons)
        if self.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
        raise ValueError(self.sampler)

    def run(self, space, evaluator, budget, rng, callback=None):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = int(rng.integers(0, 2**31 - 1))
        constrained = bool(evaluator.bounds)
        study = optuna.create_study(directions=["minimize"] * len(evaluator.objectives),
                                    sampler=self._make_sampler(seed, constrained))
        guard = Budget(evaluator, budget, space)
        rec = Recorder(evaluator, callback)
        cards = list(space.cardinalities())
        dist = {f"g{i}": optuna.distributions.CategoricalDistribution(list(range(c))) for i, c in enumerate(cards)}
        tries = 0
        while not guard.exhausted and tries < 50 * guard.limit:
            tries += 1
            trial = study.ask(dist)
            arch = space.make([trial.params[f"g{i}"] for i in range(len(cards))])
            _, F = guard.evaluate([arch])
            f = F[0]
            if np.all(np.isfinite(f)):
                if constrained:
                    trial.set_user_attr("violation", float(evaluator.violations([arch])[0]))
                study.tell(trial, [float(v) for v in f])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        rec.record(1)
        return rec.result(self.name, space, {"sampler": self.sampler, "seed": seed, "trials": tries})


class BoTorchPeer:
    """qLogNEHVI (BoTorch) over the space's candidates: independent GPs on one-hot genes for every objective,
    the acquisition maximised over a random subset of unevaluated archs each step (batches of ``q``)."""

    name = "botorch-qlognehvi"

    def __init__(self, n_init: int = 20, q: int = 10, n_candidates: int = 2000):
        self.n_init, self.q, self.n_candidates = n_init, q, n_candidates

    def run(self, space, evaluator, budget, rng, callback=None):
        import torch
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.models.transforms import Standardize
        from gpytorch.mlls import SumMarginalLogLikelihood

        guard = Budget(evaluator, budget, space)
        rec = Recorder(evaluator, callback)
        cards = list(space.cardinalities())

        def onehot(archs):
            return torch.tensor(np.hstack([np.eye(c)[[a.genes[i] for a in archs]] for i, c in enumerate(cards)]),
                                dtype=torch.double)

        guard.evaluate(space.sample_distinct(min(self.n_init, guard.remaining), rng))
        torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
        while not guard.exhausted:
            done = [e for e in evaluator.evaluations() if np.all(np.isfinite(e.values))]
            X = onehot([e.arch for e in done])
            Y = -torch.tensor([e.values for e in done], dtype=torch.double)  # BoTorch maximises
            models = [SingleTaskGP(X, Y[:, j:j + 1], outcome_transform=Standardize(m=1)) for j in range(Y.shape[1])]
            model = ModelListGP(*models)
            fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            ref = Y.min(0).values - 0.1 * (Y.max(0).values - Y.min(0).values)
            acq = qLogNoisyExpectedHypervolumeImprovement(model=model, ref_point=ref.tolist(), X_baseline=X,
                                                          prune_baseline=True)
            seen = {e.arch.arch_id for e in evaluator.evaluations()}
            cand = space.sample_distinct(self.n_candidates, rng, exclude=seen)
            if not cand:
                break
            Xc = onehot(cand)
            picks: list[int] = []
            with torch.no_grad():  # greedy sequential batch: each pick conditions the next as pending
                for _ in range(min(self.q, guard.remaining, len(cand))):
                    acq.set_X_pending(Xc[picks] if picks else None)
                    vals = torch.cat([acq(Xc[i:i + 500].unsqueeze(1)) for i in range(0, len(Xc), 500)])
                    if picks:
                        vals[picks] = -float("inf")
                    picks.append(int(vals.argmax()))
            guard.evaluate([cand[i] for i in picks])
        rec.record(1)
        return rec.result(self.name, space, {"n_init": self.n_init, "q": self.q})


def peers(botorch: bool = True) -> dict:
    """name -> factory of the peers that are installed (the others are skipped with a note)."""
    out: dict = {}
    try:
        import optuna  # noqa: F401

        for s in ("nsga2", "tpe", "gp"):
            out[f"optuna-{s}"] = (lambda s=s: OptunaPeer(s))
    except ImportError:
        print("skipping Optuna peers: optuna is not installed (pip install -e '.[bench]')")
    if botorch:
        try:
            import botorch  # noqa: F401

            out[BoTorchPeer.name] = BoTorchPeer
        except ImportError:
            print("skipping the BoTorch peer: botorch is not installed (pip install -e '.[bench]')")
    return out
