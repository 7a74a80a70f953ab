"""From the measurement store to a fitted predictor (what ``hwnas fit-predictor`` runs).

Training rows: the newest measurement per (arch, settings) of the device, measured and imported alike, of one
runtime (the most common one unless ``runtime`` is given) and one space configuration (the rows'
``settings['space']``: with rows of several, the one ``space_config`` names, else an error that lists them). An arch measured several times under different settings of
that runtime contributes the median. Cross-validated metrics (5-fold, pooled out-of-fold predictions) go into
the model card, together with the device, runtime and versions, and how many rows were measured / imported.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwnasError, ParameterError, ParametersError

# a predictor whose cross-validation is below either is fitted and saved, with a warning on screen and in its card
POOR_WITHIN_10PCT = 0.5
POOR_SPEARMAN = 0.8
TRANSFER_MAX_ROWS = 200  # auto only considers transfer (and fits source predictors) below this many rows
MIN_SOURCE_ROWS = 30


@dataclass
class TrainingData:
    device: str
    space: object
    archs: list
    latency_ms: np.ndarray
    runtime: str
    runtime_versions: list[str]
    counts: dict = field(default_factory=dict)  # {"measured": n, "imported": n, "unstable": n}
    notes: list[str] = field(default_factory=list)
    cv_predicted: np.ndarray | None = None  # out-of-fold predictions of latency_ms (NaN: not predictable), once fitted


def _space_config(m) -> dict:
    cfg = (m.settings or {}).get("space")
    return cfg if isinstance(cfg, dict) else {}


def settings_text(space_name: str, config: dict) -> str:
    """A space configuration as the --space-opt values that differ from the space's defaults."""
    from ..spaces import create_space

    default = create_space(space_name).config()
    diff = [f"{k}={v}" for k, v in config.items() if default.get(k) != v]
    return " ".join(diff) if diff else "the defaults"


def space_opt_flags(space_name: str, config: dict) -> str:
    text = settings_text(space_name, config)
    return "(no --space-opt: the defaults)" if text == "the defaults" else " ".join(
        f"--space-opt {kv}" for kv in text.split())


def settings_listing(space_name: str, configs: Counter) -> str:
    """``C=8 N=1 (20 rows), the defaults (50 rows)``: each recorded space configuration and its row count."""
    return ", ".join(f"{settings_text(space_name, json.loads(c))} ({n} rows)" for c, n in configs.most_common())


def stored_space_configs(store, device: str, space_name: str) -> Counter:
    """{json of a space configuration: rows} of ``device``'s ``space_name`` rows (rows that record none left out)."""
    return Counter(json.dumps(_space_config(m), sort_keys=True)
                   for m in store.query(device=device, space=space_name) if _space_config(m))


def load_training_data(store, device: str, space_name: str = "nb201", runtime: str | None = None,
                       space_config: dict | None = None) -> TrainingData:
    from ..spaces import arch_from_text, create_space

    rows = store.query(device=device)
    if not rows:
        known = store.devices()
        listing = ", ".join(f"{d} ({n})" for d, n in known.items()) or "(none: the store is empty)"
        raise HwnasError(f"no measurements for device {device!r} in {store.path}; devices there: {listing}. "
                         f"Measure with `hwnas profile --device {device}` or import a CSV with `hwnas import latency`")
    rows = [m for m in rows if m.space == space_name]
    if not rows:
        spaces = sorted({m.space for m in store.query(device=device)})
        raise HwnasError(f"device {device!r} has no measurements of space {space_name!r} (it has: {', '.join(spaces)})")
    notes = []
    runtimes = Counter(m.runtime for m in rows)
    if runtime is None:
        runtime = runtimes.most_common(1)[0][0]
        if len(runtimes) > 1:
            notes.append(f"using runtime {runtime} ({runtimes[runtime]} rows); also in the store: "
                         + ", ".join(f"{r} ({n})" for r, n in runtimes.items() if r != runtime) + " (--runtime)")
    rows = [m for m in rows if m.runtime == runtime]
    if not rows:
        raise HwnasError(f"device {device!r} has no {space_name} measurements with runtime {runtime!r} "
                         f"(it has: {', '.join(runtimes)})")
    configs = Counter(json.dumps(_space_config(m), sort_keys=True) for m in rows if _space_config(m))
    if space_config is None:
        if len(configs) > 1:  # never fit one device's rows of one setting and leave out another's silently
            raise ParametersError(f"device {device!r} has {space_name} rows of {len(configs)} space settings: "
                                  f"{settings_listing(space_name, configs)}; pick one with `space_opt`, e.g. "
                             f"{space_opt_flags(space_name, json.loads(configs.most_common(1)[0][0]))}")
        space_config = json.loads(next(iter(configs))) if configs else {}
    try:
        space = create_space(space_name, **space_config)
    except TypeError:
        raise HwnasError(f"space settings {space_config} recorded in the store are not valid for {space_name!r}") from None
    if configs and json.dumps(space.config(), sort_keys=True) not in configs:
        raise HwnasError(f"device {device!r} has no {space_name} rows with the space settings "
                         f"{settings_text(space_name, space.config())}; it has: {settings_listing(space_name, configs)}")
    rows = [m for m in rows if (_space_config(m) or space.config()) == space.config() or not _space_config(m)]
    by_arch: dict[str, list] = {}
    arch_of = {}
    for m in rows:
        try:
            a = arch_from_text(space, m.arch)
        except HwnasError as exc:
            raise HwnasError(f"store row {m.id} ({device}): {exc}") from None
        by_arch.setdefault(a.arch_id, []).append(m.latency_ms)
        arch_of[a.arch_id] = a
    archs = [arch_of[k] for k in by_arch]
    y = np.array([float(np.median(v)) for v in by_arch.values()])
    counts = dict(Counter(m.source for m in rows))
    counts["unstable"] = sum(1 for m in rows if m.unstable)
    return TrainingData(device, space, archs, y, runtime, sorted({m.runtime_version for m in rows}), counts, notes)


def source_predictors(store, target: str, space, min_rows: int = MIN_SOURCE_ROWS, progress=None) -> dict:
    """A kernel-level (else lut) predictor for every other device with enough rows of the same space settings,
    carrying the device's measured latencies (``transfer.attach_measurements``: the transfer model's second
    feature of that source)."""
    from . import create_predictor
    from .transfer import attach_measurements

    out = {}
    for device in store.devices():
        if device == target:
            continue
        try:
            data = load_training_data(store, device, space.name, space_config=space.config())
        except HwnasError:
            continue
        if len(data.archs) < min_rows:
            continue
        if progress:
            progress(f"fitting the prior for {device} ({len(data.archs)} rows)")
        from .features import featurizer_for

        kind = "kernel" if featurizer_for(space).supports_kernels else "lut"
        out[device] = attach_measurements(
            create_predictor(kind, space=space, n_boot=0).fit(data.archs, data.latency_ms).set_card(
                device=device, runtime=data.runtime), data.archs, data.latency_ms)
    return out


def cross_validate(make, archs, y, folds: int = 5, seed: int = 0) -> dict:
    """Pooled out-of-fold metrics of the predictor ``make()`` (archs it cannot predict count in ``coverage``)."""
    return cross_validate_oof(make, archs, y, folds, seed)[0]


def cross_validate_oof(make, archs, y, folds: int = 5, seed: int = 0) -> tuple[dict, np.ndarray | None]:
    """``cross_validate``'s metrics and the out-of-fold predictions they were computed from (None: too few rows)."""
    from .base import PredictorError
    from .huber_ridge import kfold_indices
    from .metrics import each_or_nan, oof_score, out_of_fold

    n = len(y)
    if n < 6:
        return {"note": f"only {n} rows: no cross-validation"}, None
    y = np.asarray(y, float)

    def fit(train):
        return make().fit([archs[i] for i in train], y[train])

    def predict(model, fold):
        return each_or_nan(lambda i: model.predict([archs[i]])[0][0], fold, (PredictorError,))

    folds = kfold_indices(n, min(folds, n), np.random.default_rng(seed))
    oof = out_of_fold(n, folds, fit, predict)
    return oof_score(y, oof, len(folds)), oof


def cv_warnings(cv: dict, n: int) -> list[str]:
    """What the user must know before trusting a predictor with these cross-validated metrics (empty: nothing)."""
    if "within_10pct" not in cv:
        why = cv.get("note") or "no fold could predict 2 held-out archs"
        return [f"is not cross-validated ({why}): how well it predicts is unknown; measure more archs "
                "(`hwnas propose`, `hwnas profile`) and refit"]
    w, rho = float(cv["within_10pct"]), float(cv.get("spearman_rho", float("nan")))
    if w >= POOR_WITHIN_10PCT and np.isfinite(rho) and rho >= POOR_SPEARMAN:
        return []
    return [f"cross-validates poorly: within +-10% {w:.2f} (< {POOR_WITHIN_10PCT} warns), Spearman rho {rho:.2f} "
            f"(< {POOR_SPEARMAN} warns), MAPE {cv.get('mape_pct', float('nan')):.1f}% on {n} archs; its predictions "
            "are not to be trusted: measure more archs (`hwnas propose`, `hwnas profile`) or check the rows' noise "
            "(latency_cv, unstable)"]


def prior_warnings(p) -> list[str]:
    """A transfer predictor whose prior check rejected the other devices (``few_sample.prior_check``): what it
    answers with instead, and how uncertain that is (empty otherwise)."""
    chk = getattr(p, "prior_check_", None) or {}
    if chk.get("use") != "target-only":
        return []
    t, c = chk["target_only"], chk["transfer"]
    rho = f", Spearman {t['loo_spearman']:.2f}" if t.get("loo_spearman") is not None else ""
    return [f"does not use the other devices: none of them (nor a mix) explains the {chk['cells']} measured cells "
            f"(leave-one-out log error {c['loo_log_rmse']:.2f} with them, {t['loo_log_rmse']:.2f} without); it "
            f"predicts from this device's cells and graph costs alone (leave-one-out log error "
            f"{t['loo_log_rmse']:.2f}, about x{np.exp(t['loo_log_rmse']):.2f} per arch{rho}); measure more archs "
            "(`hwnas propose`) and refit"]


def fit_from_store(store, device: str, space_name: str = "nb201", kind: str = "auto", runtime: str | None = None,
                   space_config: dict | None = None, seed: int = 0, progress=None):
    """Fit a predictor for ``device`` from the store; returns (predictor, TrainingData). The card is filled."""
    from . import create_predictor

    data = load_training_data(store, device, space_name, runtime, space_config)
    n = len(data.archs)
    params: dict = {"space": data.space, "seed": seed}
    if kind in ("transfer", "fallback") or (kind == "auto" and n < TRANSFER_MAX_ROWS):
        sources = source_predictors(store, device, data.space, progress=progress)
        if kind != "auto" and not sources:
            raise ParameterError("kind", f"{kind} needs other devices with at least {MIN_SOURCE_ROWS} {space_name} "
                                 f"measurements (same space settings) in {store.path}; found none")
        if sources:
            params["sources"] = sources
            data.notes.append(f"prior: {len(sources)} other devices ({', '.join(sources)})")
    if progress:
        progress(f"fitting {kind} on {n} archs of {device}")
    make = lambda: create_predictor(kind, **params)  # noqa: E731
    p = make().fit(data.archs, data.latency_ms)
    if kind == "auto":
        cv, data.cv_predicted = p.cv_[p.chosen_], p.oof_.get(p.chosen_)
    else:
        if progress:
            progress("cross-validating")
        cv, data.cv_predicted = cross_validate_oof(make, data.archs, data.latency_ms, seed=seed)
    p.set_card(device=device, runtime=data.runtime, runtime_versions=data.runtime_versions,
               training_sources=data.counts, cv_metrics=cv, notes=data.notes,
               warnings=cv_warnings(cv, n) + prior_warnings(p.best_ if kind == "auto" else p),
               name=f"{data.space.name}-{p.chosen_ if kind == 'auto' else kind}")
    return p, data


__all__ = ["TrainingData", "load_training_data", "cv_warnings", "prior_warnings", "settings_text", "settings_listing",
           "stored_space_configs", "space_opt_flags", "source_predictors", "cross_validate", "cross_validate_oof",
           "fit_from_store"]
