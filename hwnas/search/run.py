"""Build and run (or resume) a search into a results directory, with checkpoints.

Resuming replays the strategy from the seed: evaluations in the log are served without recomputation, so a
killed run continues to exactly the result of an unbroken run with the same seed. Only the budget of a
resumed search may change.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from ..errors import HwnasError
from ..evaluation import build_evaluator, create_executor, read_log
from ..spaces import create_space
from ..strategies import AUTO, choose_strategy, create_strategy
from .config import SearchConfig, check_option_types, make_config
from .results import LOG_NAME, write_history, write_json, write_results
from .trust import accuracy_trust, write_trust


def build(cfg: SearchConfig, log: Path | None = None, on_evaluated=None):
    """(space, evaluator, strategy) for a configuration; every name is checked before anything runs."""
    from ..spaces import SPACES
    from ..strategies import STRATEGIES

    if cfg.space in SPACES:
        check_option_types(SPACES[cfg.space], cfg.space_opt, "--space-opt")
    if cfg.strategy in STRATEGIES:
        check_option_types(STRATEGIES[cfg.strategy], cfg.strategy_opt, "--strategy-opt")
    try:
        space = create_space(cfg.space, **cfg.space_opt)
    except (ValueError, TypeError) as exc:
        raise HwnasError(f"--space-opt for space {cfg.space!r}: {exc}") from None
    if cfg.strategy != AUTO:
        strategy = create_strategy(cfg.strategy, **cfg.strategy_opt)
    executor = create_executor(cfg.executor, cfg.address)
    evaluator = build_evaluator(space, cfg.evaluator_spec(), executor=executor, log=log, on_evaluated=on_evaluated)
    if cfg.strategy == AUTO:
        name, why = choose_strategy(evaluator, cfg.strategy_opt)
        strategy = create_strategy(name, **cfg.strategy_opt)
        strategy.chosen_because = why
    return space, evaluator, strategy


def resume_config(directory: Path, changed: dict | None = None) -> SearchConfig:
    """The configuration of the search in ``directory``; ``changed``: settings given again (None = not given).
    Only ``budget`` may change: anything else would make the replay diverge from the logged evaluations."""
    changed = {k: v for k, v in (changed or {}).items() if v not in (None, [])}
    others = [k for k in changed if k != "budget"]
    if others:
        raise HwnasError("--resume DIR continues with DIR/config.yaml; only --budget may change "
                         f"(got {', '.join('--' + k.replace('_', '-') for k in others)})")
    path = Path(directory) / "config.yaml"
    if not path.is_file():
        raise HwnasError(f"{directory} holds no search to resume (no config.yaml)")
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HwnasError(f"{path} is damaged ({str(exc).splitlines()[0]}); it cannot be resumed: "
                         "start a new search with another --out") from None
    if not isinstance(saved, dict):
        raise HwnasError(f"{path} is damaged (expected a mapping of settings, got {type(saved).__name__}); "
                         "it cannot be resumed: start a new search with another --out")
    return make_config({k: v for k, v in saved.items() if k in SearchConfig.keys()},
                       {"budget": changed.get("budget")})


def prepare_out(out: Path, resume: bool) -> Path:
    out = Path(out)
    if resume:
        if not (out / "config.yaml").is_file():
            raise HwnasError(f"{out} holds no search to resume (no config.yaml)")
        return out
    if out.exists() and not out.is_dir():
        raise HwnasError(f"--out {out} is a file")
    if out.is_dir() and ((out / "config.yaml").exists() or (out / LOG_NAME).exists()):
        raise HwnasError(f"{out} already holds a search: continue it with --resume {out}, or choose another --out")
    if not out.parent.is_dir():
        raise HwnasError(f"cannot write {out}: directory {out.parent} does not exist")
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
            raise HwnasError(f"{out} is in use by another hwnas run (pid {holder}); wait for it to finish "
                             "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _make_out(out: Path) -> bool:
    """Create the results directory; True when this call created it."""
    if out.is_dir():
        return False
    try:
        out.mkdir()
    except FileExistsError:  # another run made it a moment ago: the lock decides
        return False
    except OSError as exc:
        raise HwnasError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    return True


def _unmake_out(out: Path, created: bool) -> None:
    """Undo a start that failed before evaluating anything: no config.yaml left to poison a later run."""
    for name in ("config.yaml", "checkpoint.json", "history.csv"):
        with contextlib.suppress(OSError):
            (out / name).unlink()
    if created:
        with contextlib.suppress(OSError):
            (out / LOCK_NAME).unlink()
            out.rmdir()


def _read_log(log: Path):
    try:
        return read_log(log)
    except (UnicodeDecodeError, OSError) as exc:
        raise HwnasError(f"{log} is damaged ({exc}); it cannot be resumed: start a new search with "
                         "another --out") from None


def ran(strategy) -> dict:
    """Which strategy ran and why (config.yaml): the one named, or the one ``auto`` chose."""
    why = getattr(strategy, "chosen_because", None)
    return {"strategy_ran": strategy.name, "strategy_why": why or f"named: --strategy {strategy.name}"}


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
    with kind "evaluated" (info: n_evals), "generation" (a history row), "final" (the search ended; info:
    n_front) and "trust" (the accuracy seed check starts; info: n_archs)."""
    out = prepare_out(out, resume)
    notify = progress or (lambda kind, info: None)
    counter = {"n": 0}

    def on_evaluated(e):
        counter["n"] += 1
        notify("evaluated", {"n_evals": counter["n"], "arch": e.extras.get("arch", "")})

    # build everything (and fail on bad input) before creating anything on disk
    space, evaluator, strategy = build(cfg, log=None, on_evaluated=on_evaluated)
    created = _make_out(out)
    with run_lock(out):
        out = prepare_out(out, resume)  # again, under the lock: another run may have started meanwhile
        try:
            return _run_locked(cfg, out, resume, space, evaluator, strategy, notify)
        except Exception:
            if not resume and not (out / LOG_NAME).exists():
                _unmake_out(out, created)
            raise


def _run_locked(cfg, out, resume, space, evaluator, strategy, notify):
    log = out / LOG_NAME
    if resume:
        evaluator.preload(_read_log(log))
    else:
        (out / "config.yaml").write_text(yaml.safe_dump({**cfg.to_dict(), "out": str(out), **ran(strategy)},
                                                        sort_keys=False))
    evaluator.log = log
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
    result.config = {**cfg.to_dict(), "out": str(out), **ran(strategy), "strategy_params": result.config,
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
