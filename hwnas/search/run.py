"""Build and run (or resume) a search into a results directory, with checkpoints.

Resuming replays the strategy from the seed: evaluations in the log are served without recomputation, so a
killed run continues to exactly the result of an unbroken run with the same seed. Only the budget of a
resumed search may change.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from ..errors import HwnasError, ParameterError, ParametersError
from ..evaluation import build_evaluator, create_executor
from ..evaluation.checkpoint import read_for_resume, read_log_header, repair_tail, start_log
from ..spaces import create_space
from ..strategies import AUTO, choose_strategy, create_strategy
from .config import DEMO, FLAG, SearchConfig, check_option_types, fill_cost_defaults, make_config
from .results import LOG_NAME, write_history, write_json, write_results
from .trust import accuracy_trust, write_trust


def build(cfg: SearchConfig, log: Path | None = None, on_evaluated=None):
    """(space, evaluator, strategy) for a configuration; every name is checked before anything runs."""
    from ..spaces import SPACES
    from ..strategies import STRATEGIES

    if cfg.space in SPACES:
        check_option_types(SPACES[cfg.space], cfg.space_opt, "space_opt")
    if cfg.strategy in STRATEGIES:
        check_option_types(STRATEGIES[cfg.strategy], cfg.strategy_opt, "strategy_opt")
    fill_cost_defaults(cfg)
    try:
        space = create_space(cfg.space, **cfg.space_opt)
    except (ValueError, TypeError) as exc:
        raise ParameterError("space_opt", f"for space {cfg.space!r}: {exc}") from None
    if cfg.strategy != AUTO:
        strategy = create_strategy(cfg.strategy, **batch_for_workers(cfg, cfg.strategy))
    executor = create_executor(cfg.executor, cfg.address, cfg.workers)
    evaluator = build_evaluator(space, cfg.evaluator_spec(), executor=executor, log=log, on_evaluated=on_evaluated)
    if cfg.strategy == AUTO:
        name, why = choose_strategy(evaluator, cfg.strategy_opt)
        check_option_types(STRATEGIES[name], cfg.strategy_opt, "strategy_opt")
        strategy = create_strategy(name, **batch_for_workers(cfg, name))
        strategy.chosen_because = why
    return space, evaluator, strategy


def batch_for_workers(cfg: SearchConfig, strategy: str) -> dict:
    """``strategy_opt``, with mobo's batch (q candidates proposed at once) following ``workers`` unless the user
    set ``batch_size``: the largest multiple of workers not above mobo's default batch (10), or workers itself
    when it is larger, so every round of a batch keeps each worker busy (workers 2 -> 10, 3 -> 9, 4 -> 8, 16 -> 16)."""
    import inspect

    from ..strategies import STRATEGIES

    opts = dict(cfg.strategy_opt)
    if strategy != "mobo" or not cfg.workers or "batch_size" in opts:
        return opts
    default = inspect.signature(STRATEGIES["mobo"]).parameters["batch_size"].default
    opts["batch_size"] = max(cfg.workers, default // cfg.workers * cfg.workers)
    return opts


def resume_config(directory: Path, changed: dict | None = None) -> SearchConfig:
    """The configuration of the search in ``directory``; ``changed``: settings given again (None = not given).
    Only ``budget`` may change: anything else would make the replay diverge from the logged evaluations."""
    changed = {k: v for k, v in (changed or {}).items() if v not in (None, [])}
    others = [k for k in changed if k != "budget"]
    if others:
        raise ParametersError("`resume` DIR continues with DIR/config.yaml; only `budget` may change "
                              f"(got {', '.join(f'`{k}`' for k in others)})")
    path = Path(directory) / "config.yaml"
    if not path.is_file():
        raise HwnasError(f"{directory} holds no search to resume (no config.yaml)")
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParametersError(f"{path} is damaged ({str(exc).splitlines()[0]}); it cannot be resumed: "
                              "start a new search with another `out`") from None
    if not isinstance(saved, dict):
        raise ParametersError(f"{path} is damaged (expected a mapping of settings, got {type(saved).__name__}); "
                              "it cannot be resumed: start a new search with another `out`")
    cfg = make_config({k: v for k, v in saved.items() if k in SearchConfig.keys()},
                      {"budget": changed.get("budget")})
    origins = saved.get("settings_from")
    if isinstance(origins, dict):
        cfg.settings_from = {k: str(origins.get(k, cfg.settings_from[k])) for k in SearchConfig.keys()}
    if changed.get("budget") is not None:
        cfg.settings_from["budget"] = f"{FLAG} (on --resume)"
    return cfg


def prepare_out(out: Path, resume: bool) -> Path:
    out = Path(out)
    if resume:
        if not (out / "config.yaml").is_file():
            raise HwnasError(f"{out} holds no search to resume (no config.yaml)")
        return out
    if out.exists() and not out.is_dir():
        raise ParameterError("out", f"{out} is a file")
    if out.is_dir() and ((out / "config.yaml").exists() or (out / LOG_NAME).exists()):
        raise ParametersError(f"{out} already holds a search: continue it with `resume` {out}, or choose another `out`")
    # missing parent folders (``--out runs/sn`` on a fresh checkout) are made with the results directory;
    # the nearest existing one must be a writable directory
    above = next((p for p in out.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise HwnasError(f"cannot write {out}: {above} is a file, not a directory")
    if above is not None and not os.access(above, os.W_OK):
        raise HwnasError(f"cannot write {out}: directory {above} is not writable")
    return out


def final_test(evaluator, space, result) -> dict[str, tuple[float, str]] | None:
    """Test error of the final Pareto front, ``{arch_id: (test error %, provenance)}``: the one and only read of
    the test split, after the search has selected on validation data. None where the accuracy source has no
    held-out split of its own (a table, a proxy)."""
    source = getattr(evaluator, "accuracy", None)
    if source is None or "error" not in [o.name for o in result.objectives]:
        return None
    front = [e.arch for e in result.pareto()]
    got = source.test_values(space, front, "error") if front else None
    if got is None:
        return None
    values, provenance = got
    return {a.arch_id: (float(v), s) for a, v, s in zip(front, values, provenance)}


LOCK_NAME = ".hwnas.lock"


@contextlib.contextmanager
def run_lock(out: Path):
    """Hold an exclusive lock on the results directory for the whole run: a second run into the same
    directory (a new search or a resume) fails at once instead of interleaving its log with ours."""
    import fcntl

    path = Path(out) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HwnasError(f"cannot write in {out}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ParametersError(f"{out} is in use by another hwnas run (pid {holder}); wait for it to finish "
                                  "or choose another `out`") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _make_out(out: Path) -> bool:
    """Create the results directory (and missing parent folders); True when this call created it."""
    if out.is_dir():
        return False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
    except FileExistsError:  # another run made it a moment ago: the lock decides
        return False
    except OSError as exc:
        raise ParametersError(f"cannot create `out` {out}: {exc.strerror or exc}") from None
    return True


def _evaluated(log: Path) -> bool:
    """Whether a search log holds an evaluation (more than its header line)."""
    try:
        with Path(log).open("rb") as fh:
            fh.readline()
            return bool(fh.read(1))
    except OSError:
        return False


def _unmake_out(out: Path, created: bool) -> None:
    """Undo a start that failed before evaluating anything: no config.yaml left to poison a later run."""
    for name in ("config.yaml", "checkpoint.json", "history.csv", LOG_NAME):
        with contextlib.suppress(OSError):
            (out / name).unlink()
    if created:
        with contextlib.suppress(OSError):
            (out / LOCK_NAME).unlink()
            out.rmdir()


# -- resume checks: the log's record of the settings, a torn last line, replayed values ------------------------
RESUMABLE = [k for k in SearchConfig.keys() if k not in ("budget", "out")]  # budget may change; out may move


def search_settings(cfg: SearchConfig) -> dict:
    """The settings the evaluations of a search depend on, as the log's header records them (JSON values)."""
    d = cfg.to_dict()
    return json.loads(json.dumps({k: d[k] for k in RESUMABLE}, sort_keys=True, default=str))


def _shown(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_resume_settings(cfg: SearchConfig, out: Path) -> str | None:
    """Refuse to resume ``out`` when its config.yaml (``cfg``) no longer says what the logged evaluations were
    computed with (recorded in the log's header); only the budget may change. Returns a note where the log
    cannot tell (a log of an older hwnas, without a header), else None."""
    log = Path(out) / LOG_NAME
    header = read_log_header(log)
    if header is None:
        if log.is_file() and log.stat().st_size:
            return (f"{log} was written by an older hwnas and does not record the search's settings; "
                    "config.yaml is taken as they were")
        return None
    recorded, now = header["settings"], search_settings(cfg)
    changed = [k for k in RESUMABLE if k in recorded and recorded[k] != now.get(k)]
    if changed:
        what = "; ".join(f"{k}: {_shown(recorded[k])} -> {_shown(now.get(k))}" for k in changed)
        raise ParametersError(f"cannot resume {out}: its config.yaml no longer matches the settings the search "
                              f"started with (recorded in {log}): {what}; only `budget` may change on resume: "
                              "restore config.yaml, or start a new search with another `out`")
    return None


def _replay_log(log: Path, evaluator, notify) -> None:
    """Preload the evaluations of ``log`` (each checked as a fresh one is), then make the log end with a whole
    line (a torn last line, from a crash mid-write, is cut off and said so) so the next record is appended on a
    line of its own. A damaged or edited line refuses the resume and changes nothing."""
    fix = "; it cannot be resumed as it is: delete that line to evaluate its arch again, or start a new " \
          "search with another `out`"
    try:
        found = read_for_resume(log)
        evaluator.preload([e for _, e in found.records], where=[f"{log} line {n}" for n, _ in found.records])
    except HwnasError as exc:
        raise ParametersError(f"{exc}{fix}") from None
    if found.torn is not None:
        notify("note", {"text": repair_tail(log, found.torn)})


def ran(strategy, cfg: SearchConfig) -> dict:
    """Which strategy ran and why (config.yaml): the one ``auto`` chose, or the one named, and by whom."""
    why = getattr(strategy, "chosen_because", None)
    if why is None:
        origin = cfg.settings_from.get("strategy", "")
        why = (f"named: --strategy {strategy.name}" if origin.startswith(FLAG)
               else "the demo's strategy" if origin == DEMO else f"named in the {origin}")
    return {"strategy_ran": strategy.name, "strategy_why": why}


def config_record(cfg: SearchConfig, out: Path, strategy) -> dict:
    """What config.yaml holds: every setting, where each came from, and which strategy ran and why."""
    return {**cfg.to_dict(), "out": str(out), **ran(strategy, cfg), "settings_from": dict(cfg.settings_from)}


def missing_values(evaluations) -> dict[str, int]:
    """How many evaluated archs a source had no value for (provenance ``missing:...``), per provenance."""
    counts: dict[str, int] = {}
    for e in evaluations:
        for s in e.sources:
            if s.startswith("missing:"):
                counts[s] = counts.get(s, 0) + 1
    return counts


def run_search(cfg: SearchConfig, out: Path, resume: bool = False,
               progress: Callable[[str, dict], None] | None = None):
    """Run (or resume) a search into ``out``; returns the SearchResult. ``progress(kind, info)`` is called
    with kind "started" (every setting checked; info: strategy_ran, strategy_why), "evaluated" (info: n_evals),
    "generation" (a history row), "final" (info: n_front), "trust" (the accuracy seed check starts; info: n_archs)
    and "note" (info: text, something the user should read: a torn log line cut off on resume ...)."""
    out = prepare_out(out, resume)
    notify = progress or (lambda kind, info: None)
    counter = {"n": 0}

    def on_evaluated(e):
        counter["n"] += 1
        notify("evaluated", {"n_evals": counter["n"], "arch": e.extras.get("arch", "")})

    if resume:  # before anything is built: a config.yaml edited to another search is refused at once
        note = check_resume_settings(cfg, out)
        if note:
            notify("note", {"text": note})
    # build everything (and fail on bad input) before creating anything on disk
    space, evaluator, strategy = build(cfg, log=None, on_evaluated=on_evaluated)
    created = _make_out(out)
    with run_lock(out):
        out = prepare_out(out, resume)  # again, under the lock: another run may have started meanwhile
        try:
            return _run_locked(cfg, out, resume, space, evaluator, strategy, notify)
        except Exception:  # whatever stopped the run: remove the directory it made if it evaluated nothing, re-raise
            if not resume and not _evaluated(out / LOG_NAME):
                _unmake_out(out, created)
            raise


def _run_locked(cfg, out, resume, space, evaluator, strategy, notify):
    log = out / LOG_NAME
    if resume:
        if read_log_header(log) is None and not log.exists():  # stopped before the log began: nothing to replay
            start_log(log, search_settings(cfg))
        _replay_log(log, evaluator, notify)
    else:
        (out / "config.yaml").write_text(yaml.safe_dump(config_record(cfg, out, strategy), sort_keys=False))
        start_log(log, search_settings(cfg))
    evaluator.log = log
    notify("started", ran(strategy, cfg))
    started = time.time()
    history: list[dict] = []

    def on_generation(row):
        history.append(row)
        write_json(out / "checkpoint.json", {"status": "running", "step": row["step"], "n_evals": row["n_evals"],
                                             "hypervolume": row["hypervolume"]})
        write_history(out / "history.csv", history)
        notify("generation", row)

    try:
        result = strategy.run(space, evaluator, cfg.budget, np.random.default_rng(cfg.seed), callback=on_generation)
    except KeyboardInterrupt:
        write_json(out / "checkpoint.json", {"status": "interrupted", "n_evals": evaluator.n_unique,
                                             "step": len(history)})
        write_history(out / "history.csv", history)
        raise
    result.config = {**config_record(cfg, out, strategy), "strategy_params": result.config,
                     "elapsed_s": round(time.time() - started, 1), "computed_in_this_session": evaluator.n_computed,
                     "replay_diverged": evaluator.replay_diverged,
                     "missing_values": missing_values(result.evaluations)}
    notify("final", {"n_front": len(result.pareto())})
    test = final_test(evaluator, space, result)
    notify("trust", {"n_archs": cfg.trust_archs})
    trust = accuracy_trust(evaluator, space, result, cfg.trust_archs)
    if trust is not None:
        result.config["accuracy_trust"] = trust["summary"]
        write_trust(out, trust)
    write_results(result, out, space, test=test)
    write_json(out / "checkpoint.json", {"status": "finished", "n_evals": evaluator.n_unique,
                                         "step": len(result.history)})
    return result
