"""Run the installed ``hwnas`` command the way a user does: a separate process, the progress bar on (no
``--no-progress``), its output going to a plain pipe (as in a CI log) or to a pseudo-terminal (as in a
terminal). Journey tests check what the user relies on: exit code, files, columns, provenance.

``run_hwnas(args, cwd=..., mode="pipe" | "tty")`` -> ``Ran(rc, out, err, seconds)``; in "tty" mode stdout and
stderr share the terminal, so ``err`` is empty and ``out`` holds both. ``interrupt_when`` (a callable polled
every 0.1 s) sends Ctrl-C (SIGINT to the command's process group, as a terminal does) once it returns True.
"""

from __future__ import annotations

import csv
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# the console script of the interpreter running the tests: the installed command, not the library
HWNAS = str(Path(sys.executable).with_name("hwnas"))


@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def ok(self) -> "Ran":
        """Assert a clean success (exit 0, no traceback) and return self, for chaining."""
        assert self.rc == 0 and "Traceback" not in self.text, f"exit {self.rc}\n{self.text[-3000:]}"
        return self


def user_env(extra: dict | None = None) -> dict:
    """The environment of a user's shell: this one (HWNAS_HOME and PYTHONPATH included) without a COLUMNS or
    LINES that would hide how the command sizes its output; ``extra`` on top (a None value unsets)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_hwnas(args: list[str], *, cwd: Path, mode: str = "pipe", timeout: float = 300, env: dict | None = None,
              interrupt_when=None, columns: int = 80) -> Ran:
    return run_command([HWNAS, *map(str, args)], cwd=cwd, mode=mode, timeout=timeout, env=env,
                       interrupt_when=interrupt_when, columns=columns)


def run_command(argv: list[str], *, cwd: Path, mode: str = "pipe", timeout: float = 300, env: dict | None = None,
                interrupt_when=None, columns: int = 80) -> Ran:
    env = user_env(env)
    started = time.monotonic()
    if mode == "pipe":
        env.setdefault("TERM", "dumb")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        if interrupt_when is None:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise
        else:
            out, err = _wait_and_interrupt(proc, interrupt_when, timeout)
        return Ran(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                   time.monotonic() - started)
    assert mode == "tty", mode
    env["TERM"] = "xterm-256color"
    master, slave = pty.openpty()
    import fcntl
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    interrupted = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                _kill(proc)
                raise subprocess.TimeoutExpired(argv, timeout)
            if interrupt_when is not None and not interrupted and interrupt_when():
                os.killpg(proc.pid, signal.SIGINT)
                interrupted = True
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end closed (the command exited)
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # drain what is left
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    chunks.append(data)
                break
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return Ran(proc.returncode, b"".join(chunks).decode(errors="replace"), "", time.monotonic() - started)


def _wait_and_interrupt(proc, interrupt_when, timeout):
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if interrupt_when():
            os.killpg(proc.pid, signal.SIGINT)
            break
        if time.monotonic() > deadline:
            _kill(proc)
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.1)
    return proc.communicate(timeout=max(1.0, deadline - time.monotonic()))


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_search_results(out: Path, n_evals: int | None = None) -> tuple[list[dict], list[dict]]:
    """A finished search directory as a user relies on it: pareto.csv, evaluations.csv and report.html
    written, every objective column beside its provenance column, the front marked in evaluations.csv,
    the checkpoint saying finished. Returns (pareto rows, evaluation rows)."""
    import json

    for name in ("pareto.csv", "evaluations.csv", "history.csv", "config.yaml", "report.html", "pareto.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{name} missing in {out}"
    front, evals = read_csv(out / "pareto.csv"), read_csv(out / "evaluations.csv")
    assert front, "empty Pareto front"
    if n_evals is not None:
        assert len(evals) == n_evals, (len(evals), n_evals)
    assert len({r["arch_id"] for r in evals}) == len(evals)
    objectives = [c[: -len("_source")] for c in front[0] if c.endswith("_source")]
    assert objectives, f"no provenance columns in pareto.csv: {list(front[0])}"
    prefixes = ("measured:", "predicted:", "estimated:", "imported:", "trained:", "counted:", "proxy:", "supernet:")
    for row in front:
        for name in objectives:
            float(row[name])
            assert row[f"{name}_source"].startswith(prefixes), (name, row[f"{name}_source"])
    on_front = {r["arch_id"] for r in evals if r["on_front"] == "True"}
    assert on_front == {r["arch_id"] for r in front}
    assert json.loads((out / "checkpoint.json").read_text())["status"] == "finished"
    return front, evals
