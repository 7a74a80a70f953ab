"""A model worker: a separate process that loads one model file and times inferences on request.

Measuring in a child process means a model that crashes the runtime (segfault, abort, OOM) cannot take the
caller down: the caller gets ``WorkerCrashed`` and keeps everything measured so far. The worker pins its
CPU affinity and thread count as asked, and records the first inference apart from the timed ones.

    with ModelWorker(path, runtime="litert", threads=1) as w:
        w.first_inference_ms      # the first run after loading (includes lazy init)
        w.time(50)                # list of per-inference latencies in ms (perf_counter_ns around invoke)

    with ModelWorker(path, reference=ref_path) as w:   # a second model in the same process (drift reference)
        w.time(50, reference=True)                     # times the reference, same threads and cores
        w.info["pinned"]          # the cores the OS actually left the worker on, and the thread counts
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

from ...errors import HwnasError


# What a forkserver holds imported, so a worker starts as a fork of it instead of a fresh interpreter importing numpy
# and hwnas (~0.16 s of CPU per model on a 2-core x86 host, more on a board). No runtime is preloaded: each worker
# imports its own after the fork (onnxruntime starts a native thread when imported, which a fork would not carry).
PRELOAD = ["numpy", "hwnas.measure.runners.worker", "hwnas.runtimes"]


def _context():
    """A forkserver context where the OS has one (Linux, macOS): a fresh, single-threaded process per model as
    with spawn, without paying for the imports each time; spawn elsewhere."""
    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class WorkerCrashed(HwnasError):
    """The worker process died or reported an error while loading or running the model."""


def _pin(affinity) -> tuple[list[int] | None, str | None]:
    """(the cores the OS left this process on, the error where pinning to ``affinity`` failed)."""
    pin_error = None
    if affinity:
        try:
            os.sched_setaffinity(0, set(affinity))
        except (AttributeError, OSError) as exc:  # recorded: the row says it was not pinned
            pin_error = f"{type(exc).__name__}: {exc}"
    try:
        return sorted(os.sched_getaffinity(0)), pin_error
    except AttributeError:  # pragma: no cover - not Linux
        return None, pin_error


def _open_sessions(conn, path: str, reference: str | None, runtime, threads, delegate, seed,
                   input_shape=None) -> dict | None:
    """{"model": session[, "reference": session]}, each with its seeded input set; None after telling the parent
    which file failed to load (the worker holds two)."""
    import numpy as np

    from ...runtimes import open_session

    sessions = {}
    for key, p in (("model", path), ("reference", reference)):
        if p is None:
            continue
        try:
            s = open_session(Path(p), runtime=runtime, threads=threads, delegate=delegate, input_shape=input_shape)
        except Exception as exc:  # noqa: BLE001 - named by the file that failed (the worker holds two)
            conn.send(("load_error", f"{Path(p).name}: {type(exc).__name__}: {exc}"))
            return None
        s.set_input(np.random.default_rng(seed).standard_normal(s.input_shape).astype(np.float32))
        sessions[key] = s
    return sessions


def _answer(conn, sessions: dict) -> None:
    """Time runs on request ("time", n[, reference]) until "stop"."""
    while True:
        msg = conn.recv()
        if msg[0] == "time":
            out = []
            invoke = sessions["reference" if len(msg) > 2 and msg[2] else "model"].invoke
            for _ in range(int(msg[1])):
                t0 = time.perf_counter_ns()
                invoke()
                out.append((time.perf_counter_ns() - t0) / 1e6)
            conn.send(("times", out))
        elif msg[0] == "stop":
            conn.send(("bye", None))
            return


def _serve(conn, path: str, runtime: str | None, threads: int, delegate: str | None, affinity, seed: int,
           reference: str | None = None, input_shape=None) -> None:
    import signal

    # Ctrl-C is the parent's to handle (it keeps what was measured and stops this worker); a worker that
    # died of the same SIGINT would look like a crashing model.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cores, pin_error = _pin(affinity)
        sessions = _open_sessions(conn, path, reference, runtime, threads, delegate, seed, input_shape)
        if sessions is None:
            return
        session = sessions["model"]
        if "reference" in sessions:
            sessions["reference"].invoke()
        t0 = time.perf_counter_ns()
        session.invoke()
        first_ms = (time.perf_counter_ns() - t0) / 1e6
        pinned = {"requested": list(affinity) if affinity else None, "cores": cores, "error": pin_error,
                  "intra_op_threads": session.threads,
                  "inter_op_threads": 1 if session.runtime == "onnxruntime" else None}
        conn.send(("ready", {"first_inference_ms": first_ms, "runtime": session.runtime, "version": session.version,
                             "input_shape": list(session.input_shape), "threads": session.threads,
                             "delegate": session.delegate, "pinned": pinned}))
        _answer(conn, sessions)
    except EOFError:
        return
    except BaseException as exc:  # report, then die: the parent turns this into WorkerCrashed
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:  # the parent is gone (broken pipe): nobody to tell
            pass


class ModelWorker:
    def __init__(self, path, runtime: str | None = None, threads: int = 1, delegate: str | None = None,
                 affinity: list[int] | None = None, seed: int = 0, timeout_s: float = 300.0,
                 reference: Path | None = None, input_shape: tuple[int, ...] | None = None):
        self.path = Path(path)
        self.timeout_s = timeout_s
        ctx = _context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, str(self.path), runtime, threads, delegate, affinity, seed,
                                                            None if reference is None else str(reference), input_shape),
                                 daemon=True)
        self._proc.start()
        child.close()
        self.info = self._expect("ready")
        self.first_inference_ms: float = self.info["first_inference_ms"]

    def _expect(self, kind: str):
        if not self._conn.poll(self.timeout_s):
            self.close(kill=True)
            raise WorkerCrashed(f"worker for {self.path.name} did not answer within {self.timeout_s:.0f} s")
        try:
            tag, payload = self._conn.recv()
        except (EOFError, ConnectionError):
            code = self._proc.exitcode if not self._proc.is_alive() else None
            self.close(kill=True)
            raise WorkerCrashed(f"worker for {self.path.name} died (exit code {code})") from None
        if tag == "load_error":  # the payload names the model that failed to load (the model or the reference)
            self.close(kill=True)
            raise WorkerCrashed(f"cannot load {payload}")
        if tag == "error":
            self.close(kill=True)
            raise WorkerCrashed(f"worker for {self.path.name} failed: {payload}")
        if tag != kind:  # pragma: no cover - protocol bug
            raise WorkerCrashed(f"worker protocol error: expected {kind}, got {tag}")
        return payload

    def time(self, n: int, reference: bool = False) -> list[float]:
        """Run ``n`` inferences back to back (of the reference model with ``reference``); return each one's
        latency in ms."""
        self._conn.send(("time", int(n), bool(reference)))
        return self._expect("times")

    def close(self, kill: bool = False) -> None:
        if self._proc.is_alive() and not kill:
            try:
                self._conn.send(("stop",))
                self._conn.poll(5)
            except (OSError, BrokenPipeError):
                pass
        self._proc.join(timeout=5 if not kill else 0.1)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
