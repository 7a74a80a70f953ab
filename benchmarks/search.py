"""Search benchmark: how close does each strategy get to the exact Pareto front of NAS-Bench-201?

Objectives (both minimised): CIFAR-10 test error from ../shared/data/nb201/accuracy_cifar10.csv and the latency
of one device from ../shared/data/nb201/latency/<device>.csv, both read through hwnas's `table` sources (the
real evaluator, cache and budget accounting). The exact front comes from enumerating all 15,625 cells.

``default`` is the strategy `hwnas pareto-search` runs when given only the problem (space, objectives, accuracy and
latency tables): resolved by the command's own configuration path (``config_from_flags`` -> ``build``: strategy
``auto`` and its choice, library-default options), once per device; the row is labelled with what it resolved to.

Score: hypervolume ratio HV(found front) / HV(exact front), objectives normalised by the exact front's ideal and
nadir, reference point = nadir + 10% of the range (1.1, 1.1 normalised). Budgets count unique evaluated
architectures. Reported: mean and worst over seeds x devices, per strategy and budget, and per device.

    python benchmarks/search.py                              # nsga2, random, evolution, monas, dppnet, mobo; 10 seeds; 100/300/1000
    python benchmarks/search.py --strategy default --strategy nsga2 --budgets 100,300   # what the command runs vs NSGA-II
    python benchmarks/search.py --strategy mobo --strategy random --peer optuna-tpe --peer optuna-nsga2  # some peers
    python benchmarks/search.py --strategy nsga2 --strategy monas --seeds 3 --budgets 300
    python benchmarks/search.py --param nsga2.population_size=30   # strategy parameters
    python benchmarks/search.py --strategy nsga2 --strategy 'nsga2[crossover=sbx,mutation=pm,population_size=20]'  # variants
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from functools import cached_property
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hwnas.contracts import Objective  # noqa: E402
from hwnas.evaluation import ArchEvaluator, TableSource  # noqa: E402
from hwnas.pareto import hypervolume, non_dominated_mask, pareto_order  # noqa: E402
from hwnas.spaces import create_space  # noqa: E402
from hwnas.strategies import STRATEGIES, create_strategy  # noqa: E402

def find_data() -> Path:
    """../shared/data/nb201 from the project root (or from a parent, for git worktrees)."""
    for base in [ROOT, *ROOT.parents]:
        cand = base.parent / "shared" / "data" / "nb201"
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared" / "data" / "nb201"


DATA = find_data()
FULL_DEVICES = ("pixel2", "samsung_s7", "essential_ph_1", "gold_6226", "silver_4114")
# the five Snapdragon tables lack the cells with no path from input to output (341 or so): unknown, infeasible
PARTIAL_DEVICES = ("mobile-cpu-snapdragon-450-cortex-a53-int8", "mobile-cpu-snapdragon-675-kryo-460-int8",
                   "mobile-dsp-snapdragon-675-hexagon-685-int8", "mobile-gpu-snapdragon-450-adreno-506-int8",
                   "mobile-gpu-snapdragon-675-adreno-612-int8")
ALL_DEVICES = FULL_DEVICES + PARTIAL_DEVICES
PEER_NAMES = ("optuna-nsga2", "optuna-tpe", "optuna-gp", "botorch-qlognehvi")
PROBLEMS = ("two", "three", "constrained")


def parse_value(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"None": None, "true": True, "false": False}.get(value, value)


def parse_strategy(spec: str) -> tuple[str, str, dict]:
    """``nsga2`` or ``nsga2[crossover=sbx,population_size=20]`` -> (label, name, params)."""
    name, _, rest = spec.partition("[")
    params = {}
    for item in rest.rstrip("]").split(","):
        if "=" in item:
            k, _, v = item.partition("=")
            params[k.strip()] = parse_value(v.strip())
    return spec, name, params


def parse_params(items):
    out: dict[str, dict] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        strategy, _, param = key.partition(".")
        out.setdefault(strategy, {})[param] = parse_value(value)
    return out


class Problem:
    """One problem: CIFAR-10 error and the latency of one or more devices (shared table sources), optionally under
    ``latency_ms@<first device> <= bound``; the exact (feasible) front and its normalisation."""

    def __init__(self, space, accuracy: TableSource, latency_csvs, devices, archs, normalise: str = "front",
                 bound: float | None = None, seeds=None):
        if isinstance(devices, str):  # one device (the two-objective problem)
            devices, latency_csvs = [devices], [latency_csvs]
        self.space, self.devices, self.bound = space, list(devices), bound
        self.device = "+".join(self.devices) + (f" (<= {bound:g} ms)" if bound is not None else "")
        self.seeds = seeds
        self.accuracy = accuracy
        self.latencies = [TableSource(c) for c in latency_csvs]
        self.latency = self.latencies[0]
        self.archs = archs
        self.values = np.column_stack([accuracy.values(space, archs, "error")[0]]
                                      + [t.values(space, archs, "latency_ms")[0] for t in self.latencies])
        self.m = self.values.shape[1]
        F = self.values[np.all(np.isfinite(self.values), axis=1)]  # archs a table lacks are never on a front
        F = F[self.feasible(F)]
        front = F[non_dominated_mask(F)]
        front = np.unique(front, axis=0)
        # "front" (the definition): the exact front's ideal and nadir; "space": every arch's range
        pts = front if normalise == "front" else F[np.all(np.isfinite(F), axis=1)]
        self.ideal, self.nadir = pts.min(axis=0), pts.max(axis=0)
        self.exact_hv = self.hv(front)
        self.front_size = len(front)

    def feasible(self, F) -> np.ndarray:
        F = np.asarray(F, dtype=float).reshape(-1, self.m)
        return np.ones(len(F), dtype=bool) if self.bound is None else F[:, 1] <= self.bound

    @cached_property
    def oracle_order(self) -> np.ndarray:
        """The class-mean oracle's evaluation order: archs with known (feasible) values in Pareto-layer order of
        (mean error of the arch's functional class, the latencies)."""
        err = self.values[:, 0]
        _, klass = np.unique([self.space.equivalence_key(a) for a in self.archs], return_inverse=True)
        mean = (np.bincount(klass, err) / np.bincount(klass))[klass]
        ok = np.flatnonzero(np.all(np.isfinite(self.values), axis=1) & self.feasible(self.values))
        return ok[pareto_order(np.column_stack([mean[ok], self.values[ok, 1:]]), np.zeros(len(ok)))]

    def oracle_ratio(self, budget: int) -> float:
        """HV ratio of the class-mean oracle's first ``budget`` archs."""
        return self.hv(self.values[self.oracle_order[:budget]]) / self.exact_hv

    def norm(self, F):
        return (np.asarray(F, dtype=float) - self.ideal) / (self.nadir - self.ideal)

    def hv(self, F) -> float:
        """Hypervolume of the feasible non-dominated points of F (normalised; reference 1.1 in each objective)."""
        F = np.asarray(F, dtype=float).reshape(-1, self.m)
        F = F[np.all(np.isfinite(F), axis=1)]
        Z = self.norm(F[self.feasible(F)])
        if not len(Z):
            return 0.0
        return hypervolume(Z[non_dominated_mask(Z)], np.full(self.m, 1.1))

    def evaluator(self):
        objectives = [Objective("error")] + [Objective("latency_ms", device=d) for d in self.devices]
        constraints = ([] if self.bound is None else
                       [Objective("latency_ms", bound=float(self.bound), device=self.devices[0])])
        return ArchEvaluator(self.space, objectives, constraints=constraints, accuracy=self.accuracy,
                             costs={f"latency_ms@{d}": t for d, t in zip(self.devices, self.latencies)})

    def flags(self, data: Path) -> dict:
        """The command-line flags that pose this problem (``hwnas pareto-search`` given only the problem)."""
        flags = {"space": "nb201", "objective": ["error", *(f"latency_ms@{d}" for d in self.devices)],
                 "accuracy": f"table:{data / 'accuracy_cifar10.csv'}",
                 "latency": [f"{d}=table:{data / 'latency' / f'{d}.csv'}" for d in self.devices]}
        if self.bound is not None:
            flags["constraint"] = [f"latency_ms@{self.devices[0]}<={self.bound!r}"]
        return flags


def make_problems(kind: str, space, accuracy, data: Path, devices, archs, normalise: str, seeds: int) -> list:
    """``two``: error + one device's latency, per device, ``seeds`` seeds each. ``three``: error + two devices'
    latencies, every unordered pair of ``devices`` once, pair k run with seed k (``seeds`` > 1: seeds k*seeds ...).
    ``constrained``: error + one device's latency under latency <= its 25th percentile (of the cells the table
    has), per device, ``seeds`` seeds each."""
    lat = {d: data / "latency" / f"{d}.csv" for d in devices}
    if kind == "two":
        return [Problem(space, accuracy, lat[d], d, archs, normalise, seeds=range(seeds)) for d in devices]
    if kind == "three":
        pairs = list(itertools.combinations(devices, 2))
        return [Problem(space, accuracy, [lat[a], lat[b]], [a, b], archs, normalise,
                        seeds=range(k * seeds, (k + 1) * seeds)) for k, (a, b) in enumerate(pairs)]
    if kind == "constrained":
        out = []
        for d in devices:
            known = TableSource(lat[d]).values(space, archs, "latency_ms")[0]
            bound = float(np.quantile(known[np.isfinite(known)], 0.25))
            out.append(Problem(space, accuracy, lat[d], d, archs, normalise, bound=bound, seeds=range(seeds)))
        return out
    raise ValueError(kind)


def default_strategy(data: Path, problem: "Problem"):
    """What `hwnas pareto-search` given only the problem's flags runs: (name, options, why), through the command's
    own configuration path (``config_from_flags`` -> ``build``)."""
    from hwnas.search import build, config_from_flags

    cfg = config_from_flags(problem.flags(data))
    _, _, strategy = build(cfg)
    return strategy.name, dict(cfg.strategy_opt), getattr(strategy, "chosen_because", "named")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", action="append", choices=PROBLEMS,
                    help="repeatable (default: two): two = error x one device's latency; three = error x two "
                         "devices' latencies (every pair of devices once); constrained = error x latency under "
                         "latency <= the device's 25th percentile (feasible hypervolume)")
    ap.add_argument("--strategy", action="append", help=f"strategy name, repeatable (registered: {', '.join(STRATEGIES)})")
    ap.add_argument("--device", action="append", help="device table name, repeatable (default: all ten tables)")
    ap.add_argument("--peers", action="store_true", help="add Optuna (NSGA-II, TPE multivariate, GP) and BoTorch "
                    "qLogNEHVI, through the same sources, budget and score (pip install -e '.[bench]')")
    ap.add_argument("--no-botorch", action="store_true", help="with --peers: leave BoTorch out (slow)")
    ap.add_argument("--peer", action="append", choices=PEER_NAMES,
                    help="one peer, repeatable (instead of all of --peers; optuna-gp and BoTorch take minutes per run)")
    ap.add_argument("--oracle", action="store_true", help="also print the class-mean oracle: knows every functional "
                    "class's mean accuracy (not each copy's) and evaluates in Pareto-layer order of (class mean, "
                    "latency) -- a ceiling for an accuracy model, not a strategy")
    ap.add_argument("--budgets", default="100,300,1000")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per problem instance (default 10; three: per "
                    "device pair, default 1 there: pair k runs seed k)")
    ap.add_argument("--param", action="append", help="STRATEGY.PARAM=VALUE, e.g. nsga2.population_size=30")
    ap.add_argument("--normalise", choices=("front", "space"), default="front",
                    help="front: by the exact front's ideal/nadir (default, the issue's definition); "
                         "space: by the range of all 15,625 archs (a looser score, for comparison)")
    ap.add_argument("--data", type=Path, default=DATA, help="the nb201 data folder (default: ../shared/data/nb201)")
    return ap.parse_args(argv)


def resolve_default(specs, data: Path, problems) -> list | None:
    """Replace ``default`` by what the command line resolves to for these problems (the same for each)."""
    if not any(name == "default" for _, name, _ in specs):
        return specs
    resolved = {p.device: default_strategy(data, p) for p in problems}
    names = {(n, tuple(sorted(o.items()))) for n, o, _ in resolved.values()}
    if len(names) != 1:
        print(f"the default resolves differently per problem: {resolved}", file=sys.stderr)
        return None
    (name, opts), = names
    print(f"default: `hwnas pareto-search` given only the problem runs {name} {dict(opts) or ''}"
          f"({next(iter(resolved.values()))[2]})")
    return [(f"default ({name})", name, dict(opts)) if n == "default" else (label, n, p) for label, n, p in specs]


def factories_for(specs, args) -> dict:
    for label, name, _ in specs:
        if name not in STRATEGIES:
            print(f"skipping strategy {label!r}: not registered in this build (registered: {', '.join(STRATEGIES)})")
    params = parse_params(args.param)
    specs = [(label, name, {**params.get(name, {}), **p}) for label, name, p in specs if name in STRATEGIES]
    factories = {label: (lambda name=name, p=p: create_strategy(name, **p)) for label, name, p in specs}
    if args.peers or args.peer:
        from peers import peers

        found = peers(botorch=not args.no_botorch)
        factories.update({k: v for k, v in found.items() if not args.peer or k in args.peer})
        if args.peers:
            factories.setdefault("random", lambda: create_strategy("random"))
    return factories


def run_cell(factory, problems, budget: int, space) -> dict[str, list[float]]:
    """HV ratio of each run: problem -> one value per seed."""
    per_problem = {}
    for p in problems:
        vals = []
        for seed in p.seeds:
            ev = p.evaluator()
            result = factory().run(space, ev, budget, np.random.default_rng(seed))
            assert ev.n_unique <= budget
            vals.append(p.hv(np.array([e.values for e in result.pareto()])) / p.exact_hv)
        per_problem[p.device] = vals
    return per_problem


def report(kind: str, problems, strategies, budgets, ratios, seconds, args) -> None:
    n_runs = sum(len(p.seeds) for p in problems)
    print()
    print(f"Problem {kind}: hypervolume ratio vs the exact front (nb201, CIFAR-10 error x latency; {n_runs} runs: "
          f"{len(problems)} instances; normalised by the {args.normalise}'s ideal and nadir)")
    print()
    print("| strategy | " + " | ".join(f"{b}: mean | {b}: worst | {b}: s/run" for b in budgets) + " |")
    print("|" + "---|" * (1 + 3 * len(budgets)))
    for name in strategies:
        cells = []
        for b in budgets:
            allv = np.concatenate(list(ratios[name, b].values()))
            cells += [f"{allv.mean():.4f}", f"{allv.min():.4f}", f"{seconds[name, b]:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if len(problems) > 12:
        return
    print()
    print("Per instance (mean over seeds):")
    print("| strategy | budget | " + " | ".join(p.device for p in problems) + " |")
    print("|" + "---|" * (2 + len(problems)))
    for name in strategies:
        for b in budgets:
            print(f"| {name} | {b} | " + " | ".join(f"{np.mean(ratios[name, b][p.device]):.4f}" for p in problems)
                  + " |")


def run_problem(kind: str, args, space, archs, accuracy, specs) -> int:
    seeds = args.seeds if args.seeds is not None else (1 if kind == "three" else 10)
    devices = args.device or list(ALL_DEVICES)
    problems = make_problems(kind, space, accuracy, args.data, devices, archs, args.normalise, seeds)
    for p in problems:
        print(f"{kind} {p.device}: exact front {p.front_size} archs; ideal {np.round(p.ideal, 3).tolist()}, "
              f"nadir {np.round(p.nadir, 3).tolist()}")
    specs = resolve_default(specs, args.data, problems)
    if specs is None:
        return 2
    factories = factories_for(specs, args)
    budgets = [int(b) for b in args.budgets.split(",")]
    if args.oracle:
        for b in budgets:
            vals = [p.oracle_ratio(b) for p in problems]
            print(f"  class-mean oracle budget {b:5d}: mean {np.mean(vals):.4f}  worst {np.min(vals):.4f}")
    ratios, seconds = {}, {}
    for name, factory in factories.items():
        for budget in budgets:
            t0 = time.perf_counter()
            ratios[name, budget] = run_cell(factory, problems, budget, space)
            n = sum(len(p.seeds) for p in problems)
            seconds[name, budget] = (time.perf_counter() - t0) / n
            allv = np.concatenate(list(ratios[name, budget].values()))
            print(f"  {kind} {name:12s} budget {budget:5d}: mean {allv.mean():.4f}  worst {allv.min():.4f}  "
                  f"({n} runs, {time.perf_counter() - t0:.1f} s)", flush=True)
    report(kind, problems, list(factories), budgets, ratios, seconds, args)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"no benchmark data at {args.data}", file=sys.stderr)
        return 2
    specs = [parse_strategy(s) for s in (args.strategy or ["default", "nsga2", "random", "evolution", "monas", "dppnet"])]
    space = create_space("nb201")
    archs = space.all_archs()
    accuracy = TableSource(args.data / "accuracy_cifar10.csv")
    for kind in args.problem or ["two"]:
        rc = run_problem(kind, args, space, archs, accuracy, specs)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
