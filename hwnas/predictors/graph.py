"""Per-kernel latency models from op-level profiles, for any ONNX or TFLite graph (nn-Meter's promise, without
pickles).

Training data per model: the fused kernels (``fusion.read_graph``: ONNX Runtime's rules for .onnx, the TFLite
CPU / XNNPACK rules for .tflite), each kernel's time from an op-level profile and the whole-model latency
measured without the profiler. Profiles come from ONNX Runtime's profiler on this host (``profile_onnx``:
events matched to kernels by node / output tensor name, median over the profiled runs) or from the store's
``op_profile`` rows (``op_profiles.samples_from_store``: host / agent ORT rows, adb's benchmark_model rows).

Model: per kernel type, a regressor of kernel time on (H, Cin, Cout, k, stride, groups, MMACs, MB):
LightGBM (text model) of log(time / work), work = MMACs + MB, with at least ``GBDT_MIN`` profiled kernels, else
a Huber linear model of time on (MMACs, MB) (JSON). **Whole model** = s * (sum of kernel times) + a + b * number
of kernels, fitted by non-negative least squares on the whole-model latencies (``target``: wall ``latency_ms``,
or ``cpu_ms`` on a host shared with other jobs): a + b * n is the overhead between kernels (unmatched profiler
events such as ORT's NCHWc reorders, dispatch, session), s what the profiler adds to (or misses of) every
kernel. A kernel type never seen raises ``UnknownOpError`` (never 0 ms); a type the graphs held but no profile
ever timed (the runtime elided it) is ``absent`` and costs nothing.

Artifacts: ``card.json`` (kind ``graph-kernel``, the same card format and file hashing as the other
predictors; ``space`` is ``graph``, ``space_config.runtime`` the runtime whose graphs it was fitted on),
``kernels.json`` (per type: model kind, count, residual scale, linear coefficients; the whole-model fit)
and ``gbdt_<type>.txt``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..fileio import now_iso, sha256_file
from .base import (ARTIFACT_FORMAT, CARD, ArtifactError, PredictorError, UnknownOpError, read_card, read_model_json,
                   read_model_text, verified_files)
from .fusion import FEATURES, Kernel, graph_runtime, read_graph
from .op_profiles import ort_kernel_index

KIND = "graph-kernel"
GBDT_MIN = 60
# version 2: a Gemm with transB=1 (every torch Linear) reads cin/cout the right way round (version 1 swapped them)
SCHEMA = {"featurizer": "onnx-fused-kernels", "version": 2, "features": list(FEATURES)}


def _work(X: np.ndarray) -> np.ndarray:
    """A kernel's work for the trees' target: MMACs + MB moved + a floor (columns -2, -1 of FEATURES). The trees
    learn log(time / work) -- throughput -- so a kernel larger than any profiled one (resnet18's 3x3 convs
    next to MobileNet subnets') scales with its work instead of getting the largest profiled time."""
    return X[:, -2] + X[:, -1] + 1e-3


def profile_onnx(path: Path, runs: int = 20, threads: int = 1, warmup: int = 5) -> dict:
    """Profile one ONNX model with ONNX Runtime on this host: fused kernels, each kernel's median time (ms)
    over ``runs`` profiled runs, the unmatched profiler time, and the whole-model median latency (ms) of
    ``runs`` timed runs without the profiler (``latency_ms``, wall; ``cpu_ms``, the calling thread's CPU time)."""
    import tempfile

    from ..runtimes.onnxruntime import OrtSession

    kernels = read_graph(path)
    where = {}
    for i, k in enumerate(kernels):
        for n in k.nodes + k.outputs:
            where.setdefault(n, i)
    x = None
    with tempfile.TemporaryDirectory() as tmp:
        s = OrtSession(Path(path), threads=threads, profile_dir=Path(tmp))
        x = np.random.default_rng(0).standard_normal((1, *s.input_shape[1:])).astype(np.float32)
        for _ in range(warmup):
            s.run(x)
        for _ in range(runs):
            s.run(x)
        events = json.loads(Path(s.end_profiling()).read_text())
    per_run = np.zeros((runs + warmup, len(kernels)))
    unmatched = np.zeros(runs + warmup)
    counters: dict[str, int] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        r = counters.get(name, 0)
        counters[name] = r + 1
        if r >= runs + warmup:
            continue
        i = ort_kernel_index(where, name)
        if i is None:
            unmatched[r] += e["dur"] / 1000
        else:
            per_run[r, i] += e["dur"] / 1000
    s2 = OrtSession(Path(path), threads=threads)
    for _ in range(warmup):
        s2.run(x)
    wall, cpu = timed_runs(s2, x, runs)
    return {"kernels": kernels, "kernel_ms": np.median(per_run[warmup:], 0),
            "unmatched_ms": float(np.median(unmatched[warmup:])), "latency_ms": float(np.median(wall)),
            "cpu_ms": float(np.median(cpu)), "latency_runs_ms": wall}


def timed_runs(session, x, runs: int) -> tuple[list, list]:
    """Wall and calling-thread CPU milliseconds of ``runs`` runs. With one intra-op thread ORT computes on the
    calling thread, so its CPU time is the latency minus the time the OS gave the core to other processes
    (on a shared host the wall time is mostly waiting)."""
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.thread_time()
        session.run(x)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return wall, cpu


def _timed_kernels(samples: list[dict]) -> tuple[dict[str, list], Counter]:
    """(kernel type -> [(features, ms)] of the kernels the profiles timed (> 0 ms), how often each type occurs)."""
    by_type: dict[str, list] = {}
    seen: Counter = Counter()
    for s in samples:
        if len(s["kernel_ms"]) != len(s["kernels"]):
            raise PredictorError("profile sample: kernel_ms and kernels differ in length")
        for k, ms in zip(s["kernels"], s["kernel_ms"]):
            seen[k.type] += 1
            if ms > 0:
                by_type.setdefault(k.type, []).append((k.features(), float(ms)))
    return by_type, seen


def _mad(res: np.ndarray) -> float:
    """Median absolute deviation, scaled to a normal's standard deviation."""
    return float(1.4826 * np.median(np.abs(res - np.median(res))))


class GraphKernelPredictor:
    """Per-kernel-type latency models + inter-kernel overhead (see the module doc)."""

    kind = KIND

    def __init__(self, seed: int = 0, gbdt_min: int = GBDT_MIN, n_estimators: int = 300, target: str = "latency_ms",
                 fit_scale: bool = True, whole: str = "nnls"):
        self.seed = seed
        # whole-model map: "nnls" (s * profiled kernel sum + a + b * kernels, least squares) or "ratio" (s = the
        # median over the training models of latency / *predicted* kernel sum: robust, and it calibrates the
        # kernel models' own bias; a = b = 0)
        if whole not in ("nnls", "ratio"):
            raise PredictorError(f"graph-kernel whole-model map must be nnls or ratio, not {whole!r}")
        self.whole = whole
        self.fit_scale = fit_scale  # False: s = 1, the profiled kernel times summed as they are (ablation)
        self.target = target
        self.gbdt_min = gbdt_min
        self.n_estimators = n_estimators

    # -- fit ---------------------------------------------------------------------------------------------
    def fit(self, samples: list[dict]) -> "GraphKernelPredictor":
        """``samples``: dicts as returned by ``profile_onnx`` (kernels, kernel_ms, latency_ms)."""
        if not samples:
            raise PredictorError("cannot fit a graph-kernel predictor on no profiled models")
        if self.target not in ("latency_ms", "cpu_ms"):
            raise PredictorError(f"graph-kernel target must be latency_ms (wall) or cpu_ms, not {self.target!r}")
        by_type, seen = _timed_kernels(samples)
        self.models_, self.gbdt_ = {}, {}
        for t in sorted(set(seen) - set(by_type)):  # in the graphs, never in the profiles: the runtime elides it
            self.models_[t] = {"model": "absent", "count": seen[t], "log_scale": 0.0}
        rng = np.random.default_rng(self.seed)
        for t, rows in sorted(by_type.items()):
            self._fit_type(t, np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), rng)
        self._fit_whole(samples)
        self.n_train_ = len(samples)
        self.data_hash_ = hashlib.sha256(json.dumps([[round(s[self.target], 6), len(s["kernels"])]
                                                     for s in samples]).encode()).hexdigest()[:16]
        self.info_ = {}
        self.fitted_ = True
        return self

    def _fit_type(self, t: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """The model of kernel type ``t``: gradient-boosted trees on log time per unit of work with
        ``gbdt_min`` or more timed kernels, else a robust linear fit on (MMACs, MB)."""
        if len(y) >= self.gbdt_min:
            import lightgbm as lgb

            params = {"objective": "huber", "alpha": 0.2, "learning_rate": 0.05, "num_leaves": 15,
                      "min_data_in_leaf": 5, "min_data_in_bin": 1, "seed": self.seed, "deterministic": True,
                      "num_threads": 1, "verbose": -1}
            r = np.log(y) - np.log(_work(X))  # log time per unit of work: trees extrapolate flat in it
            b = lgb.train(params, lgb.Dataset(X, r, params={"verbose": -1, "min_data_in_bin": 1}),
                          num_boost_round=self.n_estimators)
            res = r - b.predict(X)
            self.gbdt_[t] = b
            self.models_[t] = {"model": "gbdt", "count": len(y), "log_scale": _mad(res)}
            return
        from .huber_ridge import RobustLinear

        lin = RobustLinear(1e-3, n_boot=0).fit(X[:, -2:], y, rng)
        res = np.log(np.maximum(lin.predict(X[:, -2:])[0], 1e-4)) - np.log(y)
        self.models_[t] = {"model": "linear", "count": len(y),
                           **{k: np.asarray(v).tolist() for k, v in lin.state().items()}, "log_scale": _mad(res)}

    def _fit_whole(self, samples: list[dict]) -> None:
        """Whole model = s * kernel sum + a + b * n_kernels (non-negative least squares): a + b * n is the
        overhead between kernels, s absorbs what the op profiler adds to (or misses of) every kernel; with
        ``whole="ratio"`` s is the median latency / predicted kernel sum and a = b = 0."""
        from scipy.optimize import nnls

        n = np.array([len(s["kernels"]) for s in samples], float)
        ksum = np.array([float(np.sum(s["kernel_ms"])) for s in samples])
        y = np.array([s[self.target] for s in samples], float)
        A = np.stack([ksum, np.ones_like(n), n], 1)
        coef, _ = nnls(A, y)
        if coef[0] <= 0 or not self.fit_scale:  # degenerate (e.g. every model the same size): keep the profiled kernel times as they are
            coef = np.array([1.0, *nnls(A[:, 1:], np.maximum(y - ksum, 0.0))[0]])
        self.scale_ = float(coef[0])
        self.overhead_ = [float(coef[1]), float(coef[2])]
        if self.whole == "ratio":
            self.scale_, self.overhead_, self.fitted_ = 1.0, [0.0, 0.0], True
            psum = np.array([float(np.sum(self.predict_kernels(s["kernels"])[0])) for s in samples])
            coef = np.array([float(np.median(y / np.maximum(psum, 1e-9))), 0.0, 0.0])
            A = np.stack([psum, np.ones_like(n), n], 1)
            self.scale_ = float(coef[0])
        r = y - A @ coef
        self.overhead_scale_ = float(1.4826 * np.median(np.abs(r - np.median(r)))) if len(r) > 1 else 0.0

    # -- predict -----------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise PredictorError("the graph-kernel predictor is not fitted: call fit() or load an artifact")

    def _unknown(self, t: str, example: str, arch: str | None = None) -> UnknownOpError:
        return UnknownOpError(f"kernel type {t!r} (e.g. node {example!r}" + (f" of arch {arch}" if arch else "")
                              + f") never occurred in the profiled training models (types seen: "
                              f"{', '.join(self.models_)}); profile models that use it and refit (it is not "
                              "counted as 0 ms)")

    def _predict_type(self, t: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean ms, std ms) of kernels of type ``t`` with features ``X``; None for an ``absent`` type."""
        from .huber_ridge import RobustLinear

        m = self.models_[t]
        if m["model"] == "absent":  # profiled graphs held it, the runtime never ran it as an op
            return None
        if m["model"] == "gbdt":
            p = np.exp(self.gbdt_[t].predict(X)) * _work(X)
        else:
            lin = RobustLinear.from_state({k: np.asarray(v) for k, v in m.items()
                                           if k in ("mean", "scale", "coef", "intercept", "noise", "alpha")})
            p = np.maximum(lin.predict(X[:, -2:])[0], 1e-4)
        return p, p * m["log_scale"]

    def predict_kernels(self, kernels: list[Kernel]) -> tuple[np.ndarray, np.ndarray]:
        """Per-kernel (mean ms, std ms); a kernel type never profiled raises ``UnknownOpError``."""
        self._check_fitted()
        mean, std = np.zeros(len(kernels)), np.zeros(len(kernels))
        for t in sorted({k.type for k in kernels}):
            idx = [i for i, k in enumerate(kernels) if k.type == t]
            if t not in self.models_:
                raise self._unknown(t, kernels[idx[0]].nodes[0])
            out = self._predict_type(t, np.array([kernels[i].features() for i in idx]))
            if out is not None:
                mean[idx], std[idx] = out
        return mean, std

    def predict_many(self, kernel_lists: list[list[Kernel]], name_of=None) -> tuple[np.ndarray, np.ndarray]:
        """Whole-model (mean ms, std ms) of many graphs at once (``predict_graph`` of each, batched: each distinct
        kernel configuration is predicted once, so a pool of thousands of subnets of one space costs one tree
        pass per kernel type). ``name_of(i)`` names graph ``i`` in an unknown-kernel error."""
        self._check_fitted()
        n = len(kernel_lists)
        owner = np.repeat(np.arange(n), [len(ks) for ks in kernel_lists])
        ids: dict = {}  # kernels of one space repeat (space_kernels shares them): each distinct one once
        uniq: list[Kernel] = []
        kid = np.empty(len(owner), dtype=np.int64)
        j = 0
        for ks in kernel_lists:
            for k in ks:
                u = ids.get(id(k))
                if u is None:
                    u = ids[id(k)] = len(uniq)
                    uniq.append(k)
                kid[j] = u
                j += 1
        types = np.array([k.type for k in uniq], dtype=object)
        rows = np.array([k.features() for k in uniq], dtype=float).reshape(len(uniq), len(FEATURES))
        mu, su = np.zeros(len(uniq)), np.zeros(len(uniq))
        for t in sorted(set(types.tolist())):
            idx = np.flatnonzero(types == t)
            if t not in self.models_:
                first = int(np.flatnonzero(np.isin(kid, idx))[0])
                raise self._unknown(t, uniq[kid[first]].nodes[0], name_of(int(owner[first])) if name_of else None)
            X, inv = np.unique(rows[idx], axis=0, return_inverse=True)
            out = self._predict_type(t, X)
            if out is not None:
                mu[idx], su[idx] = out[0][inv.reshape(-1)], out[1][inv.reshape(-1)]
        mean, std = mu[kid], su[kid]
        counts = np.bincount(owner, minlength=n).astype(float)
        ksum = np.bincount(owner, weights=mean, minlength=n)
        var = np.bincount(owner, weights=(self.scale_ * std) ** 2, minlength=n)
        return (self.scale_ * ksum + self.overhead_[0] + self.overhead_[1] * counts,
                np.sqrt(var + self.overhead_scale_ ** 2))

    def predict_graph(self, kernels: list[Kernel]) -> tuple[float, float]:
        """Whole-model (mean ms, std ms): kernels + overhead; std assumes independent kernel errors."""
        m, s = self.predict_kernels(kernels)
        over = self.overhead_[0] + self.overhead_[1] * len(kernels)
        return (float(self.scale_ * m.sum() + over),
                float(np.sqrt(np.sum((self.scale_ * s) ** 2) + self.overhead_scale_ ** 2)))

    def predict_file(self, path: Path | str) -> tuple[float, float]:
        """A model file's (mean ms, std ms); refuses a format whose runtime this predictor was not fitted on."""
        rt, own = graph_runtime(path), self.info_.get("graph_runtime", "onnxruntime")
        if rt != own:
            raise PredictorError(f"{path} runs on {rt}, this graph-kernel predictor was fitted on {own} profiles; "
                                 f"fit one from {rt} op profiles")
        return self.predict_graph(read_graph(path))

    def arch_kernels(self, space, archs, cache_dir: Path | None = None) -> tuple[list[list[Kernel]], int]:
        """Each arch's fused kernels: from the space's layer description (``space_kernels``) where the space has
        one for this predictor's runtime, else read from the exported graph (ONNX / TFLite, cached). Returns
        (kernel lists, how many archs were exported)."""
        from ..export import ExportSettings, export_arch
        from .space_kernels import space_kernels

        rt = self.info_.get("graph_runtime", "onnxruntime")
        fmt = "tflite" if rt == "litert" else "onnx"
        out, exported = [], 0
        for a in archs:
            ks = space_kernels(space, a, rt)
            if ks is None:
                ks = read_graph(export_arch(space, a, ExportSettings(format=fmt), cache_dir=cache_dir), rt)
                exported += 1
            out.append(ks)
        return out, exported

    def predict_archs(self, space, archs, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Any space's archs: kernels from the space's layer description (else its exported graph), predicted
        in one batch."""
        archs = list(archs)
        kernels, _ = self.arch_kernels(space, archs, cache_dir)
        return self.predict_many(kernels, lambda i: space.to_string(archs[i]))

    def cross_validate(self, samples: list[dict], folds: int = 5) -> dict:
        """Pooled out-of-fold metrics (``metrics.score``) of this configuration on ``samples`` (whole-model
        latencies of held-out models vs predicted from the other folds' profiles); models with a kernel type
        their training folds never saw count against ``coverage``."""
        from .huber_ridge import kfold_indices
        from .metrics import each_or_nan, oof_score, out_of_fold

        n = len(samples)
        if n < 6:
            return {"note": f"only {n} profiled models: no cross-validation"}
        y = np.array([s[self.target] for s in samples], float)

        def fit(train):
            return GraphKernelPredictor(self.seed, self.gbdt_min, self.n_estimators, self.target, self.fit_scale,
                                        self.whole).fit([samples[i] for i in train])

        def predict(model, fold):
            return each_or_nan(lambda i: model.predict_graph(samples[i]["kernels"])[0], fold, (UnknownOpError,))

        folds = kfold_indices(n, min(folds, n), np.random.default_rng(self.seed))
        return oof_score(y, out_of_fold(n, folds, fit, predict), len(folds))

    # -- card / artifacts --------------------------------------------------------------------------------
    def set_card(self, **fields) -> "GraphKernelPredictor":
        self.info_ = {**getattr(self, "info_", {}), **fields}
        return self

    @property
    def card(self) -> dict:
        from .. import __version__

        return {"format": ARTIFACT_FORMAT, "kind": KIND, "name": self.info_.get("name", "graph-kernel"),
                "params": {"seed": self.seed, "gbdt_min": self.gbdt_min, "n_estimators": self.n_estimators,
                           "target": self.target, "fit_scale": self.fit_scale, "whole": self.whole},
                "space": "graph", "space_config": {"runtime": self.info_.get("graph_runtime", "onnxruntime")},
                "feature_schema": SCHEMA, "training": {"count": self.n_train_, "data_hash": self.data_hash_},
                "kernel_types": {t: {"model": m["model"], "count": m["count"], "log_scale": m["log_scale"]}
                                 for t, m in self.models_.items()},
                "overhead": {"intercept_ms": self.overhead_[0], "per_kernel_ms": self.overhead_[1],
                             "kernel_scale": self.scale_, "residual_scale_ms": self.overhead_scale_},
                "method": "fused kernels (hwnas.predictors.fusion / fusion_tflite) with per-type LightGBM / "
                          "Huber-linear models fitted on op-level profiles; whole model = kernel_scale * kernel "
                          "sum + a + b * kernels, fitted (non-negative least squares) on whole-model latencies",
                "hwnas_version": __version__, "created_at": getattr(self, "created_at_", None) or now_iso(),
                **{k: v for k, v in self.info_.items() if k != "name"}}

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        card = self.card
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(directory.name + ".tmp-writing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        files = ["kernels.json"]
        (tmp / "kernels.json").write_text(json.dumps({"models": self.models_, "overhead": self.overhead_,
                                                      "kernel_scale": self.scale_,
                                                      "overhead_scale": self.overhead_scale_}, indent=1))
        for t, b in self.gbdt_.items():
            (tmp / f"gbdt_{t}.txt").write_text(b.model_to_string())
            files.append(f"gbdt_{t}.txt")
        card["files"] = {f: sha256_file(tmp / f) for f in sorted(files)}
        (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> "GraphKernelPredictor":
        directory = Path(directory)
        with verified_files():
            try:
                return cls._load_verified(directory)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise ArtifactError(f"{directory}: corrupt model file ({type(exc).__name__}: {exc}); refit the "
                                    "predictor with hwnas fit-predictor") from None

    @classmethod
    def _load_verified(cls, directory: Path) -> "GraphKernelPredictor":
        card = read_card(directory)
        if card.get("kind") != KIND:
            raise ArtifactError(f"{directory} holds a {card.get('kind')} predictor, not a {KIND} one")
        if card.get("feature_schema") != SCHEMA:
            raise ArtifactError(f"{directory}: feature schema {card.get('feature_schema')} differs from this "
                                f"hwnas' {SCHEMA}; refit it")
        obj = cls(**card.get("params", {}))
        meta = read_model_json(directory / "kernels.json")
        _check_kernels_meta(directory, meta)
        obj.models_, obj.overhead_, obj.overhead_scale_ = meta["models"], meta["overhead"], meta["overhead_scale"]
        obj.scale_ = float(meta.get("kernel_scale", 1.0))  # artifacts from before the scale: sum as profiled
        obj.gbdt_ = {}
        import lightgbm as lgb

        for t, m in obj.models_.items():
            if m["model"] == "gbdt":
                try:
                    obj.gbdt_[t] = lgb.Booster(model_str=read_model_text(directory / f"gbdt_{t}.txt"))
                except (OSError, lgb.basic.LightGBMError) as exc:
                    raise ArtifactError(f"{directory}: LightGBM model of {t} is unreadable ({exc})") from None
        obj.n_train_, obj.data_hash_ = card["training"]["count"], card["training"]["data_hash"]
        obj.created_at_ = card.get("created_at")
        obj.info_ = {k: card[k] for k in ("device", "runtime", "name", "cv_metrics") if k in card}
        obj.info_["graph_runtime"] = (card.get("space_config") or {}).get("runtime", "onnxruntime")
        obj.fitted_ = True
        return obj


def _check_kernels_meta(directory: Path, meta: dict) -> None:
    """The schema of ``kernels.json`` (its numbers already known finite: read_model_json refuses NaN / inf)."""
    def bad(what):
        raise ArtifactError(f"{directory}/kernels.json: {what}; refit the predictor with hwnas fit-predictor")

    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    models = meta.get("models")
    if not isinstance(models, dict):
        bad("'models' must be a JSON object of kernel types")
    for t, m in models.items():
        if not isinstance(m, dict) or m.get("model") not in ("absent", "gbdt", "linear") or not num(m.get("log_scale")):
            bad(f"kernel type {t!r} must have model absent|gbdt|linear and a numeric log_scale")
    over = meta.get("overhead")
    if not (isinstance(over, list) and len(over) == 2 and all(num(v) for v in over)):
        bad("'overhead' must be two numbers (intercept_ms, per_kernel_ms)")
    if not num(meta.get("overhead_scale")) or not num(meta.get("kernel_scale", 1.0)):
        bad("'overhead_scale' and 'kernel_scale' must be numbers")


def find_graph_predictor(device: str, root: Path | str | None = None,
                         runtime: str | None = None) -> GraphKernelPredictor:
    """The newest ``graph-kernel`` artifact of ``device`` (same roots as ``load_predictor``), of graphs run on
    ``runtime`` (``onnxruntime`` / ``litert``) when given."""
    from . import default_roots, list_artifacts

    corrupt: list = []
    arts = [a for a in list_artifacts(device, "graph", root, corrupt) if a[1].get("kind") == KIND]
    fitted = sorted({(a[1].get("space_config") or {}).get("runtime", "onnxruntime") for a in arts})
    if runtime is not None:
        arts = [a for a in arts if (a[1].get("space_config") or {}).get("runtime", "onnxruntime") == runtime]
    if not arts and corrupt:
        raise corrupt[0]
    if not arts:
        roots = [Path(root)] if root is not None else default_roots()
        raise ArtifactError(f"no graph-kernel predictor for device {device!r}"
                            + (f" and {runtime} graphs" if runtime else "")
                            + f" in {' or '.join(str(r / device) for r in roots)}"
                            + (f" (only of {', '.join(fitted)} graphs)" if fitted else "")
                            + "; fit one: hwnas fit-predictor --device D --kind graph-kernel (from the store's op "
                            "profiles, or --onnx FILES to profile ONNX models on this host)")
    return GraphKernelPredictor.load(arts[0][0])


__all__ = ["GraphKernelPredictor", "profile_onnx", "find_graph_predictor", "KIND"]
