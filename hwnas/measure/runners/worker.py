"""A model worker: a separate process that loads a model file (or several) and times inferences on request.

Measuring in a child process means a model that crashes the runtime (segfault, abort, OOM) cannot take the
caller down: the caller gets ``WorkerCrashed`` and keeps everything measured so far. The worker pins its
CPU affinity and thread count as asked, and records the first inference apart from the timed ones.

    with ModelWorker(path, runtime="litert", threads=1) as w:
        w.first_inference_ms      # the first run after loading (includes lazy init)
        w.time(50)                # list of per-inference latencies in ms (perf_counter_ns around invoke)

``extra_models`` loads more models into the same process (``w.time(50, model=1)``): the A/B check of
``hwnas.ci.ab`` holds both models in each worker so that a per-process speed offset hits both alike.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

from ...errors import HwnasError


class WorkerCrashed(HwnasError):
    """The worker process died or reported an error while loading or running the model."""


def _serve(conn, models: list[tuple[str, str | None, str | None]], threads: int, affinity, seed: int) -> None:
    import signal

    # Ctrl-C is the parent's to handle (it keeps what was measured and stops this worker); a worker that
    # died of the same SIGINT would look like a crashing model.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if affinity:
            try:
                os.sched_setaffinity(0, set(affinity))
            except (AttributeError, OSError):
                pass
        import numpy as np

        from ...runtimes import open_session

        sessions, infos = [], []
        for path, runtime, delegate in models:
            session = open_session(Path(path), runtime=runtime, threads=threads, delegate=delegate)
            x = np.random.default_rng(seed).standard_normal(session.input_shape).astype(np.float32)
            session.set_input(x)
            t0 = time.perf_counter_ns()
            session.invoke()
            first_ms = (time.perf_counter_ns() - t0) / 1e6
            sessions.append(session)
            infos.append({"first_inference_ms": first_ms, "runtime": session.runtime, "version": session.version,
                          "input_shape": list(session.input_shape), "threads": session.threads,
                          "delegate": session.delegate})
        conn.send(("ready", {**infos[0], "models": infos}))
        while True:
            msg = conn.recv()
            if msg[0] == "time":
                n = int(msg[1])
                out = []
                invoke = sessions[msg[2] if len(msg) > 2 else 0].invoke
                for _ in range(n):
                    t0 = time.perf_counter_ns()
                    invoke()
                    out.append((time.perf_counter_ns() - t0) / 1e6)
                conn.send(("times", out))
            elif msg[0] == "stop":
                conn.send(("bye", None))
                return
    except EOFError:
        return
    except BaseException as exc:  # report, then die: the parent turns this into WorkerCrashed
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except Exception:
            pass


class ModelWorker:
    def __init__(self, path, runtime: str | None = None, threads: int = 1, delegate: str | None = None,
                 affinity: list[int] | None = None, seed: int = 0, timeout_s: float = 300.0,
                 extra_models: list[tuple] = ()):
        """``extra_models``: more ``(path, runtime, delegate)`` to load in this process (``time(n, model=i)``,
        ``i`` = 1, 2, ...; model 0 is ``path``); ``info["models"]`` has each one's first inference."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        models = [(str(self.path), runtime, delegate)] + [(str(p), r, d) for p, r, d in extra_models]
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, models, threads, affinity, seed), daemon=True)
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
        if tag == "error":
            self.close(kill=True)
            raise WorkerCrashed(f"worker for {self.path.name} failed: {payload}")
        if tag != kind:  # pragma: no cover - protocol bug
            raise WorkerCrashed(f"worker protocol error: expected {kind}, got {tag}")
        return payload

    def time(self, n: int, model: int = 0) -> list[float]:
        """Run ``n`` inferences of model ``model`` back to back; return each one's latency in ms."""
        self._conn.send(("time", int(n), int(model)))
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
