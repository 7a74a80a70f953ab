"""Evaluators: the objective values of a batch of architectures, cached by arch id.

An objective is written ``NAME`` or ``NAME@DEVICE``:

==================== ========================================================= ======================
name                 what                                                      where it comes from
==================== ========================================================= ======================
``error``            100 - accuracy %                                          the accuracy source
``latency_ms@DEV``   latency on device DEV                                     DEV's cost source
``energy_mj@DEV``    energy per inference on DEV                               DEV's cost source
``params``           parameters                                                counted from the graph
``macs``             multiply-accumulates                                      counted from the graph
``peak_memory_bytes`` largest single-op activation footprint (float32)         counted from the graph
==================== ========================================================= ======================

A constraint is an objective with a bound, ``latency_ms@pixel2<=15``; it need not be an objective too.

Accuracy sources: ``table:FILE`` (CSV ``arch,test_accuracy``), ``proxy[:NAME]`` (a zero-cost proxy on a real
batch; the objective becomes ``neg_<proxy>``, because a proxy score is not an accuracy) and ``train[:DATASET]``
(real PyTorch training, see :mod:`hwnas.accuracy.training`). Device cost sources: ``table:FILE`` (CSV ``arch,latency_ms``
and/or ``energy_mj``), ``predictor`` (a trained latency predictor, ``hwnas.predictors.load_predictor``) and
``measure`` (profile on the device in the loop, stored in the measurement store).

Every value carries its provenance (``Evaluation.sources``): ``imported:table:FILE``, ``proxy:naswot(digits,64)``,
``trained:digits(3 epochs, seed 0)``, ``predicted:<predictor>@DEV``, ``measured:<runtime> <version>@DEV``,
``counted:graph``.

The budget of a search counts **unique** architectures: ``evaluate`` serves duplicates (within a batch and
across calls) from the cache. Results known from a checkpoint (``preload``) are served without recomputation
and count once the search asks for them, so a resumed search replays to exactly the same state.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .contracts import Arch, Evaluation, Objective
from .errors import HwnasError, unknown

OBJECTIVE_NAMES = ("error", "latency_ms", "energy_mj", "params", "macs", "peak_memory_bytes")
DEVICE_METRICS = ("latency_ms", "energy_mj")
STATIC_METRICS = {"params": "params", "macs": "macs", "peak_memory_bytes": "peak_activation_bytes"}
PROXIES = ("naswot", "synflow", "jacob_cov")

_DEVICE_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_]+(?:@[^<>=\s]+)?)\s*<=\s*([-+0-9.eE]+)\s*$")


class MissingArchError(HwnasError):
    """A table does not hold an architecture the search asked for."""


# --------------------------------------------------------------------------------------------------------
# objectives and constraints
# --------------------------------------------------------------------------------------------------------
def parse_objective(text: str) -> Objective:
    """``error`` / ``latency_ms@pixel2`` / ``params`` -> Objective (all minimised)."""
    text = str(text).strip()
    name, _, device = text.partition("@")
    name = name.strip()
    if name not in OBJECTIVE_NAMES:
        raise unknown("objective", name, OBJECTIVE_NAMES)
    if name in DEVICE_METRICS:
        if not device:
            raise HwnasError(f"objective {name!r} needs a device: {name}@DEVICE, e.g. {name}@pixel2")
        if not _DEVICE_RE.match(device):
            raise HwnasError(f"objective {text!r}: bad device name {device!r}")
        return Objective(name, device=device)
    if device:
        raise HwnasError(f"objective {name!r} does not depend on a device; drop '@{device}'")
    return Objective(name)


def parse_constraint(text: str) -> Objective:
    """``latency_ms@pixel2<=15`` -> Objective with ``bound=15``."""
    m = _CONSTRAINT_RE.match(str(text))
    if not m:
        raise HwnasError(f"constraint {text!r}: expected OBJECTIVE<=NUMBER, e.g. latency_ms@pixel2<=15")
    obj = parse_objective(m.group(1))
    try:
        bound = float(m.group(2))
    except ValueError:
        raise HwnasError(f"constraint {text!r}: {m.group(2)!r} is not a number") from None
    return Objective(obj.name, bound=bound, device=obj.device)


def violation_of(values: Sequence[float], bounds: Sequence[float]) -> float:
    """Total relative excess over the bounds (0 = feasible): sum of max(0, (v - b) / max(|b|, 1e-9))."""
    total = 0.0
    for v, b in zip(values, bounds):
        if not np.isfinite(v):
            total += 1e6
        elif v > b:
            total += (v - b) / max(abs(b), 1e-9)
    return float(total)


# --------------------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------------------
class TableSource:
    """Values imported from a CSV with an ``arch`` column (arch strings of the space) and value columns."""

    kind = "table"

    def __init__(self, path, column: str | None = None):
        self.path = Path(path)
        self.column = column

    def describe(self) -> str:
        return f"imported:table:{self.path.name}"

    def _table(self) -> dict[str, dict[str, str]]:
        cached = getattr(self, "_rows", None)
        if cached is not None:
            return cached
        if not self.path.is_file():
            raise HwnasError(f"table {self.path} does not exist")
        try:
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                fields = reader.fieldnames or []
                if "arch" not in fields:
                    raise HwnasError(f"table {self.path}: no 'arch' column (columns: {', '.join(fields) or 'none'})")
                rows = {r["arch"].strip(): r for r in reader if r.get("arch")}
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise HwnasError(f"table {self.path} is unreadable: {exc}") from None
        self._rows = rows
        self._fields = fields
        return rows

    def check(self, column: str) -> None:
        """Read the table now (fail before a search starts, not in the middle)."""
        self._table()
        if column not in self._fields:
            raise HwnasError(f"table {self.path}: no {column!r} column (columns: {', '.join(self._fields)})")

    def values(self, space, archs: Sequence[Arch], column: str) -> np.ndarray:
        rows = self._table()
        self.check(column)
        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            key = space.to_string(arch)
            row = rows.get(key)
            if row is None:
                raise MissingArchError(f"table {self.path} has no row for arch {key}")
            try:
                out[i] = float(row[column])
            except (TypeError, ValueError):
                raise HwnasError(f"table {self.path}: {column} of arch {key} is not a number: {row[column]!r}") from None
        return out

    def __getstate__(self):  # do not ship the parsed table to remote workers
        return {"path": self.path, "column": self.column}


class ProxySource:
    """A zero-cost proxy score on one batch of real data (higher is better)."""

    kind = "proxy"

    def __init__(self, proxy: str = "naswot", dataset: str = "digits", batch_size: int = 64, seed: int = 0,
                 data_dir: str | None = None, download: bool = False):
        if proxy not in PROXIES:
            raise unknown("proxy", proxy, PROXIES)
        self.proxy, self.dataset, self.batch_size, self.seed = proxy, dataset, int(batch_size), int(seed)
        self.data_dir, self.download = data_dir, bool(download)

    def describe(self) -> str:
        return f"proxy:{self.proxy}({self.dataset},{self.batch_size})"

    def score(self, space, arch: Arch) -> float:
        from .accuracy.datasets import load_dataset
        from .accuracy.proxies import proxy_score

        data = load_dataset(self.dataset, space.input_shape(), root=self.data_dir, download=self.download)
        x, y = data.batch(self.batch_size, self.seed)
        return proxy_score(self.proxy, space, arch, x, y, seed=self.seed)


class TrainSource:
    """Real PyTorch training of each candidate for ``epochs`` epochs; test accuracy in %."""

    kind = "train"

    def __init__(self, dataset: str = "digits", epochs: int = 3, batch_size: int = 64, lr: float = 0.05,
                 seed: int = 0, data_dir: str | None = None, download: bool = False, max_train: int | None = None,
                 threads: int = 1):
        if int(epochs) < 1:
            raise HwnasError(f"--epochs must be >= 1, got {epochs}")
        self.dataset, self.epochs, self.batch_size, self.lr, self.seed = dataset, int(epochs), int(batch_size), float(lr), int(seed)
        self.data_dir, self.download, self.max_train, self.threads = data_dir, bool(download), max_train, int(threads)

    def describe(self) -> str:
        return f"trained:{self.dataset}({self.epochs} epochs, seed {self.seed})"

    def accuracy(self, space, arch: Arch) -> float:
        from .accuracy.datasets import load_dataset
        from .accuracy.training import train_and_test

        data = load_dataset(self.dataset, space.input_shape(), root=self.data_dir, download=self.download)
        return train_and_test(space, arch, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              seed=self.seed, max_train=self.max_train, threads=self.threads)


class PredictorSource:
    """Latency from a trained predictor (``hwnas.predictors.load_predictor``, built by issue 4)."""

    kind = "predictor"

    def __init__(self, device: str, root: str | None = None):
        self.device, self.root = device, root

    def _predictor(self, space):
        pred = getattr(self, "_pred", None)
        if pred is None:
            try:
                from .predictors import load_predictor
            except ImportError:
                raise HwnasError("latency source 'predictor' needs hwnas.predictors, which this build lacks; "
                                 "use --latency table:FILE or --latency measure") from None
            pred = self._pred = load_predictor(self.device, space=space.name, root=self.root)
        return pred

    def describe_for(self, space) -> str:
        card = getattr(self._predictor(space), "card", {}) or {}
        name = card.get("name") or card.get("kind") or "predictor"
        return f"predicted:{name}@{self.device}"

    def values(self, space, archs: Sequence[Arch], metric: str) -> np.ndarray:
        if metric != "latency_ms":
            raise HwnasError(f"{metric}@{self.device}: predictors predict latency only; give an energy table or --energy measure")
        mean, _std = self._predictor(space).predict(list(archs))
        return np.asarray(mean, dtype=float).reshape(len(archs))


class MeasureSource:
    """Profile each candidate on the device in the loop (``hwnas.measure.campaign.measure_archs``, built by issue 3);
    every measurement lands in the measurement store."""

    kind = "measure"

    def __init__(self, device: str, store_path: str | None = None):
        self.device, self.store_path = device, store_path

    def measure(self, space, archs: Sequence[Arch]) -> list:
        """One Measurement per arch, or a failure message (str) for an arch the device could not run;
        latency and energy of one device share the measurement."""
        cache = self.__dict__.setdefault("_cache", {})
        todo = [a for a in archs if a.arch_id not in cache]
        if todo:
            cache.update(self._measure(space, todo))
        return [cache[a.arch_id] for a in archs]

    @staticmethod
    def _modules():
        try:
            from .measure.device_profile import load_profile
            from .measure.campaign import measure_archs
            from .store import MeasurementStore
        except ImportError:
            raise HwnasError("cost source 'measure' needs hwnas.measure.campaign and hwnas.store, which this build lacks; "
                             "use --latency table:FILE or --latency predictor") from None
        return load_profile, measure_archs, MeasurementStore

    def check(self) -> None:
        """Fail now on a missing profiler or an unknown device profile."""
        load_profile = self._modules()[0]
        load_profile(self.device)

    def _measure(self, space, archs: Sequence[Arch]) -> dict:
        load_profile, measure_archs, MeasurementStore = self._modules()
        profile = load_profile(self.device)
        store = MeasurementStore(Path(self.store_path) if self.store_path else None)
        failed: dict[str, str] = {}
        done = measure_archs(space, list(archs), profile, store,
                             on_error=lambda arch, message: failed.__setitem__(arch.arch_id, str(message)))
        out: dict = {m.arch_id: m for m in done}
        for a in archs:
            out.setdefault(a.arch_id, failed.get(a.arch_id, "not measured"))
        return out


def parse_accuracy_source(spec: str, *, dataset: str = "digits", epochs: int = 3, proxy: str = "naswot",
                          data_dir: str | None = None, download: bool = False, batch_size: int = 64,
                          seed: int = 0, max_train: int | None = None):
    """``table:FILE`` | ``proxy[:NAME]`` | ``train[:DATASET]`` -> a source object."""
    spec = str(spec).strip()
    kind, _, arg = spec.partition(":")
    if kind == "table":
        if not arg:
            raise HwnasError("--accuracy table:FILE needs a file")
        return TableSource(arg, "test_accuracy")
    if kind == "proxy":
        return ProxySource(arg or proxy, dataset=dataset, batch_size=batch_size, seed=seed, data_dir=data_dir,
                           download=download)
    if kind == "train":
        return TrainSource(arg or dataset, epochs=epochs, batch_size=batch_size, seed=seed, data_dir=data_dir,
                           download=download, max_train=max_train)
    raise unknown("accuracy source", kind, ("table:FILE", "proxy", "train"))


def parse_cost_source(spec: str, device: str, *, predictor_root: str | None = None):
    """``table:FILE`` | ``predictor`` | ``measure`` -> a source object for one device."""
    spec = str(spec).strip()
    kind, _, arg = spec.partition(":")
    if kind == "table":
        if not arg:
            raise HwnasError(f"cost source for {device}: table:FILE needs a file")
        return TableSource(arg)
    if kind == "predictor":
        return PredictorSource(device, root=arg or predictor_root)
    if kind == "measure":
        return MeasureSource(device)
    raise unknown("device cost source", kind, ("table:FILE", "predictor", "measure"))


def split_device_specs(specs: Iterable[str] | str | None) -> tuple[str | None, dict[str, str]]:
    """``["predictor", "pixel2=table:p.csv"]`` -> (default "predictor", {"pixel2": "table:p.csv"})."""
    if specs is None:
        return None, {}
    if isinstance(specs, str):
        specs = [specs]
    default, per_device = None, {}
    for spec in specs:
        spec = str(spec).strip()
        head, sep, rest = spec.partition("=")
        if sep and ":" not in head and head:
            per_device[head] = rest
        else:
            default = spec
    return default, per_device


# --------------------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------------------
class InProcessExecutor:
    """Evaluate one after another in this process (the default)."""

    name = "in-process"

    def map(self, fn: Callable, items: Sequence) -> Iterable:
        for item in items:
            yield fn(item)


class RayExecutor:
    """Evaluate candidates in parallel as Ray tasks (local Ray unless ``address`` names a cluster)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1.0):
        self.address, self.num_cpus = address, num_cpus

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise HwnasError("--executor ray needs Ray, which is not installed: pip install 'hwnas[ray]' "
                             "(or pip install 'ray[default]')") from None
        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        return ray

    def map(self, fn: Callable, items: Sequence) -> Iterable:
        ray = self._ray()
        remote = ray.remote(num_cpus=self.num_cpus)(fn)
        refs = [remote.remote(item) for item in items]
        for ref in refs:  # in order, so results (and any checkpoint) do not depend on scheduling
            yield ray.get(ref)


def create_executor(name: str | None, address: str | None = None):
    if name in (None, "", "local", "in-process", "inprocess"):
        if address:
            raise HwnasError("--address only makes sense with --executor ray")
        return InProcessExecutor()
    if name == "ray":
        executor = RayExecutor(address)
        executor._ray()  # fail now, with the install hint, rather than mid-search
        return executor
    raise unknown("executor", name, ("in-process", "ray"))


# --------------------------------------------------------------------------------------------------------
# the evaluator
# --------------------------------------------------------------------------------------------------------
@dataclass
class _Quantity:
    objective: Objective  # name/device of the quantity (bound ignored here)
    source: object | None  # TableSource | ProxySource | TrainSource | PredictorSource | MeasureSource | None (static)


def _per_arch_work(task):
    """Evaluate the per-arch (heavy) quantities of one arch: training, proxies, static costs. Picklable."""
    space, arch, accuracy, want_static = task
    out: dict[str, tuple[float, str]] = {}
    if accuracy is not None:
        if isinstance(accuracy, TrainSource):
            out["accuracy"] = (accuracy.accuracy(space, arch), accuracy.describe())
        else:
            out["accuracy"] = (accuracy.score(space, arch), accuracy.describe())
    if want_static:
        costs = space.static_costs(arch)
        for name, attr in STATIC_METRICS.items():
            out[name] = (float(getattr(costs, attr)), "counted:graph")
    return out


class ArchEvaluator:
    """The Evaluator of hwnas: objectives (+ constraint-only quantities) for a batch of archs, cached by id.

    ``objectives``: what the search minimises. ``constraints``: bounded quantities; a constraint on an
    objective puts the bound on that objective (so ``SearchResult.pareto`` honours it). ``accuracy``: a source
    for ``error``. ``costs``: quantity label (``latency_ms@pixel2``) -> cost source. ``log``: a JSON-lines file to which each new
    evaluation is appended at once (the checkpoint), ``on_evaluated``: called with each new Evaluation.
    """

    def __init__(self, space, objectives: Sequence[Objective], constraints: Sequence[Objective] = (),
                 accuracy=None, costs: dict | None = None, executor=None, log: Path | None = None,
                 on_evaluated: Callable[[Evaluation], None] | None = None):
        self.space = space
        self.accuracy = accuracy
        self.costs = dict(costs or {})
        self.executor = executor or InProcessExecutor()
        self.log = Path(log) if log else None
        self.on_evaluated = on_evaluated
        if not objectives:
            raise HwnasError("a search needs at least one objective")
        bounds: dict[str, float] = {}  # label -> tightest bound
        con: dict[str, Objective] = {}
        for c in constraints:
            if c.bound is None:
                raise HwnasError(f"constraint {c.label} has no bound")
            bounds[c.label] = min(c.bound, bounds.get(c.label, math.inf))
            con.setdefault(c.label, c)
        labels = [o.label for o in objectives]
        if len(set(labels)) != len(labels):
            raise HwnasError(f"objective listed twice: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
        objs = []
        for o in objectives:
            name = o.name
            if name == "error" and isinstance(accuracy, ProxySource):
                name = f"neg_{accuracy.proxy}"  # a proxy score is not an accuracy: say so in the name
            objs.append(Objective(name, bound=bounds.get(o.label, o.bound), device=o.device))
        self.objectives: tuple[Objective, ...] = tuple(objs)
        self.constraints: tuple[Objective, ...] = tuple(
            Objective(c.name, bound=bounds[label], device=c.device) for label, c in con.items() if label not in labels)
        self._internal = labels + [c.label for c in self.constraints]
        self._check_sources(list(objectives) + [c for c in constraints])
        self._seen: dict[str, Evaluation] = {}
        self._known: dict[str, Evaluation] = {}
        self.n_computed = 0  # evaluations actually computed in this process (not served from a checkpoint)
        self.replay_diverged = False

    # -- set-up checks -------------------------------------------------------------------------------------
    def _check_sources(self, quantities: Sequence[Objective]) -> None:
        for q in quantities:
            if q.name == "error":
                if self.accuracy is None:
                    raise HwnasError("objective 'error' needs an accuracy source: --accuracy table:FILE|proxy|train")
                if isinstance(self.accuracy, ProxySource) and q.bound is not None:
                    raise HwnasError("a constraint on 'error' needs a real accuracy (table or train), not a proxy score")
            elif q.name in DEVICE_METRICS:
                if q.label not in self.costs:
                    flag = "--latency" if q.name == "latency_ms" else "--energy"
                    raise HwnasError(f"no cost source for {q.label}: {flag} {q.device}=table:FILE|predictor|measure")

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def bounds(self) -> list[float]:
        return [o.bound for o in self.objectives if o.bound is not None] + [c.bound for c in self.constraints]

    @property
    def n_unique(self) -> int:
        return len(self._seen)

    def evaluations(self) -> list[Evaluation]:
        return list(self._seen.values())

    def preload(self, evaluations: Iterable[Evaluation]) -> None:
        """Results known from a checkpoint: served without recomputation when (and if) asked for again."""
        for e in evaluations:
            self._known.setdefault(e.arch.arch_id, e)

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([e.values for e in self.evaluate_full(archs)], dtype=float).reshape(len(archs), len(self.objectives))

    def violations(self, archs: Sequence[Arch]) -> np.ndarray:
        """Total constraint violation of each arch (0 = feasible); evaluates what is not cached."""
        return np.array([e.violation for e in self.evaluate_full(archs)], dtype=float)

    def evaluate_full(self, archs: Sequence[Arch]) -> list[Evaluation]:
        archs = [self.space.check(a) for a in archs]
        new: list[Arch] = []
        pending = set()
        for a in archs:
            aid = a.arch_id
            if aid in self._seen or aid in pending:
                continue
            pending.add(aid)
            if aid in self._known:
                if new:  # keep evaluation order identical to the checkpoint
                    self._compute(new)
                    new = []
                self._accept(self._known.pop(aid))
            else:
                if self._known:
                    self.replay_diverged = True
                new.append(a)
        if new:
            self._compute(new)
        return [self._seen[a.arch_id] for a in archs]

    def _accept(self, e: Evaluation) -> None:
        self._seen[e.arch.arch_id] = e
        if self.on_evaluated is not None:
            self.on_evaluated(e)

    def _compute(self, archs: list[Arch]) -> None:
        labels = self._internal
        n = len(archs)
        values = {label: np.full(n, np.nan) for label in labels}
        sources = {label: [""] * n for label in labels}
        # batch sources first: tables, predictors, measurements (cheap, or serialised by the device anyway)
        for label in labels:
            name, _, device = label.partition("@")
            if name == "error" and isinstance(self.accuracy, TableSource):
                values[label] = 100.0 - self.accuracy.values(self.space, archs, "test_accuracy")
                sources[label] = [self.accuracy.describe()] * n
            elif name in DEVICE_METRICS:
                src = self.costs[label]
                if isinstance(src, TableSource):
                    values[label] = src.values(self.space, archs, name)
                    sources[label] = [src.describe()] * n
                elif isinstance(src, PredictorSource):
                    values[label] = src.values(self.space, archs, name)
                    sources[label] = [src.describe_for(self.space)] * n
                elif isinstance(src, MeasureSource):
                    ms = src.measure(self.space, archs)
                    for i, m in enumerate(ms):
                        if isinstance(m, str):  # the device could not run it: unknown, never 0 ms
                            sources[label][i] = f"failed:{m}"[:300]
                            continue
                        runtime = f"{m.runtime} {m.runtime_version}".strip()
                        if name == "latency_ms":
                            values[label][i] = m.latency_ms
                            sources[label][i] = f"{m.source}:{runtime}@{m.device}"
                        elif m.energy_mj is None:
                            raise HwnasError(f"energy_mj@{device}: the device profile has no energy sensor or power model")
                        else:
                            values[label][i] = m.energy_mj
                            sources[label][i] = f"{m.energy_source or 'measured'}@{m.device}"
        # per-arch work (training, proxies, static costs) through the executor, one arch at a time
        acc = self.accuracy if any(lb == "error" for lb in labels) and not isinstance(self.accuracy, TableSource) else None
        want_static = any(lb in STATIC_METRICS for lb in labels)
        if acc is None and not want_static:
            results: Iterable = ({} for _ in archs)
        else:
            results = self.executor.map(_per_arch_work, [(self.space, a, acc, want_static) for a in archs])
        for i, (arch, res) in enumerate(zip(archs, results)):
            for label in labels:
                if label == "error" and "accuracy" in res:
                    v, s = res["accuracy"]
                    values[label][i] = -v if isinstance(acc, ProxySource) else 100.0 - v
                    sources[label][i] = s
                elif label in res:
                    values[label][i], sources[label][i] = res[label]
            self._accept(self._make(arch, [values[lb][i] for lb in labels], [sources[lb][i] for lb in labels]))
            self.n_computed += 1

    def _make(self, arch: Arch, vals: list[float], srcs: list[str]) -> Evaluation:
        k = len(self.objectives)
        bounded = [(vals[j], o.bound) for j, o in enumerate(self.objectives) if o.bound is not None]
        bounded += [(vals[k + j], c.bound) for j, c in enumerate(self.constraints)]
        violation = violation_of([v for v, _ in bounded], [b for _, b in bounded])
        if not all(np.isfinite(vals)):  # an unknown value (failed measurement, degenerate proxy) is never feasible
            violation += 1e6
        extras = {"arch": self.space.to_string(arch)}
        if self.constraints:
            extras["constraints"] = {c.label: float(vals[k + j]) for j, c in enumerate(self.constraints)}
            extras["constraint_sources"] = {c.label: srcs[k + j] for j, c in enumerate(self.constraints)}
        e = Evaluation(arch, tuple(float(v) for v in vals[:k]), tuple(srcs[:k]), extras, violation=violation)
        if self.log is not None:
            append_log(self.log, e)
        return e


# --------------------------------------------------------------------------------------------------------
# the evaluation log (checkpoint of evaluations)
# --------------------------------------------------------------------------------------------------------
def evaluation_to_dict(e: Evaluation) -> dict:
    return {"space": e.arch.space, "genes": list(e.arch.genes), "arch_id": e.arch.arch_id, "values": list(e.values),
            "sources": list(e.sources), "violation": e.violation, "extras": e.extras}


def evaluation_from_dict(d: dict) -> Evaluation:
    return Evaluation(Arch(d["space"], tuple(d["genes"])), tuple(float(v) for v in d["values"]), tuple(d["sources"]),
                      dict(d.get("extras") or {}), violation=float(d.get("violation", 0.0)))


def append_log(path: Path, e: Evaluation) -> None:
    with Path(path).open("a") as fh:
        fh.write(json.dumps(evaluation_to_dict(e)) + "\n")
        fh.flush()


def read_log(path: Path) -> list[Evaluation]:
    """Evaluations from a JSON-lines log; a torn last line (killed mid-write) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(evaluation_from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out


@dataclass
class EvaluatorSpec:
    """Everything needed to build an ArchEvaluator from names (what the CLI and recipes give)."""

    objectives: list[str]
    constraints: list[str] = field(default_factory=list)
    accuracy: str | None = None
    latency: list[str] = field(default_factory=list)
    energy: list[str] = field(default_factory=list)
    dataset: str = "digits"
    epochs: int = 3
    proxy: str = "naswot"
    data_dir: str | None = None
    download: bool = False
    batch_size: int = 64
    seed: int = 0
    max_train: int | None = None


def build_evaluator(space, spec: EvaluatorSpec, executor=None, log: Path | None = None,
                    on_evaluated=None) -> ArchEvaluator:
    objectives = [parse_objective(o) for o in spec.objectives]
    constraints = [parse_constraint(c) for c in spec.constraints]
    quantities = objectives + constraints
    accuracy = None
    if any(q.name == "error" for q in quantities):
        if not spec.accuracy:
            raise HwnasError("objective 'error' needs --accuracy table:FILE|proxy|train")
        accuracy = parse_accuracy_source(spec.accuracy, dataset=spec.dataset, epochs=spec.epochs, proxy=spec.proxy,
                                         data_dir=spec.data_dir, download=spec.download,
                                         batch_size=spec.batch_size, seed=spec.seed, max_train=spec.max_train)
    lat_default, lat_per = split_device_specs(spec.latency)
    en_default, en_per = split_device_specs(spec.energy)
    costs: dict = {}
    made: dict = {}  # one source per (device, spec): latency and energy of a device share measurements
    used = set()
    for q in quantities:
        if q.name == "latency_ms":
            text = lat_per.get(q.device) or lat_default or (None if lat_per else "predictor")
        elif q.name == "energy_mj":
            text = en_per.get(q.device) or en_default or (None if en_per else "measure")
        else:
            continue
        if text is None:
            flag = "--latency" if q.name == "latency_ms" else "--energy"
            raise HwnasError(f"no cost source for {q.label}: add {flag} {q.device}=table:FILE|predictor|measure")
        used.add(q.device)
        if (q.device, text) not in made:
            made[q.device, text] = parse_cost_source(text, q.device)
        costs[q.label] = made[q.device, text]
    for name in sorted(set(lat_per) | set(en_per)):
        if name not in used:
            raise HwnasError(f"a cost source is given for device {name!r}, but no objective or constraint uses it")
    if isinstance(accuracy, TableSource):
        accuracy.check("test_accuracy")
    for label, src in costs.items():
        if isinstance(src, TableSource):
            src.check(label.partition("@")[0])
        elif isinstance(src, PredictorSource):
            src.describe_for(space)  # loads the predictor: an unknown device fails now
        elif isinstance(src, MeasureSource):
            src.check()
    return ArchEvaluator(space, objectives, constraints, accuracy=accuracy, costs=costs, executor=executor,
                         log=log, on_evaluated=on_evaluated)


__all__ = [
    "OBJECTIVE_NAMES", "PROXIES", "parse_objective", "parse_constraint", "violation_of", "TableSource",
    "ProxySource", "TrainSource", "PredictorSource", "MeasureSource", "parse_accuracy_source",
    "parse_cost_source", "ArchEvaluator", "EvaluatorSpec", "build_evaluator", "InProcessExecutor",
    "RayExecutor", "create_executor", "read_log", "append_log", "MissingArchError",
]
