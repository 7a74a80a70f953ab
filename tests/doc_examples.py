"""The command examples of README.md and docs/*.md, extracted and run as a user would type them.

Every fenced block that holds commands (a line starting with ``hwnas``, ``python``, ``pip`` ...) is either run by
tests/test_doc_examples.py or carries a mark on the line before its fence::

    <!-- example: install -->       the set-up block: .ci/run runs exactly these commands (a test compares them)
    <!-- example: benchmark -->     benchmark commands (minutes, read third-party data): the scripts and every flag
                                    they pass must exist; the figures are in the docs
    <!-- example: not-run REASON --> anything else that is not run, with the reason (kept rare)
    <!-- example: new-world -->     runs, and needs nothing the blocks above it made: a fresh world starts here

A block with no mark runs. The blocks of one file run in order in one fresh "world" (a user following that page),
a new world starting at each ``new-world`` block (so the chains of a long page run as separate tests, spread over
the test workers):
a project directory with the repository's search/ and device_profiles/, the third-party NB201 tables as small
synthetic stand-ins under ``$NB201_DATA`` (tests never read ../shared), the input files the examples name,
a fake ``adb`` on PATH (there is no phone here: tests/fakes/fake_adb.py) and a fake ``ssh`` that runs the remote
command locally (there is no board either), a raspberry-pi-4 profile pointing at loopback where
``hwnas agent serve`` (a real agent) runs in the background. Commands are run as typed except that numbers which
only make a run longer are capped (``SHRINK``; ``hwnas profile`` gets ``--quick``: the same protocol, short caps),
so the whole set stays within CI's time, and a command that a journey
test runs word for word, uncapped (``RUN_BY_JOURNEY``: the no-argument demo), is not run a second time; nor is a
README chain whose commands a docs/ page's chain runs word for word and in the same order (``covering_chains``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FAKES = Path(__file__).resolve().parent / "fakes"

FENCE = re.compile(r"^(?P<indent>[ ]{0,3})```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*example:\s*(?P<kind>install|benchmark|not-run|new-world)\b\s*(?P<why>.*?)\s*-->\s*$")
COMMAND = re.compile(r"^\s*(\$ )?(hwnas|python3?|pip|\.venv/|PYTHONPATH=|\. \.venv|export |umask )")

# flag -> the largest value a doc example runs with here (the value as typed is kept when smaller)
SHRINK = {"--budget": 8, "--epochs": 1, "--n": 2, "--k": 3, "--top": 1, "--seeds": 1, "--rounds": 3,
          "--sample": 2, "--repeats": 5, "--trust-archs": 2}
RECIPE_BUDGET = 6  # a recipe's (or the demo's) own budget is capped by appending --budget when none is named

# Commands that a journey test runs exactly as typed (no cap) and checks in depth: a page's test does not run them a
# second time but checks that the journey runs these very words (test_doc_examples.py::
# test_commands_left_to_journeys_are_run_by_them). command -> (test file, test function)
RUN_BY_JOURNEY = {
    "hwnas pareto-search": ("tests/test_journeys.py", "test_no_argument_demo_in_a_terminal"),
}


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    text: str
    mark: str | None
    why: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def commands(self) -> list[str]:
        """Logical lines (continuations joined), comments and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        out = []
        for line in joined.splitlines():
            stripped = strip_comment(line).strip()
            if stripped:
                out.append(stripped)
        return out

    @property
    def has_commands(self) -> bool:
        if self.lang == "python":
            return True
        if self.lang not in ("", "bash", "sh", "shell", "console"):
            return False
        return any(COMMAND.match(c) for c in self.commands())


def strip_comment(line: str) -> str:
    """``line`` without a shell comment (a ``#`` at the start or after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        line = text[: m.start()].count("\n") + 1
        before = text[: m.start()].rstrip("\n").splitlines()
        mark = MARK.search(before[-1]) if before else None
        found.append(Block(path, line, m.group("lang"), m.group("body"),
                           mark.group("kind") if mark else None, mark.group("why") if mark else ""))
    return found


def all_blocks() -> list[Block]:
    return [b for p in DOCS for b in blocks(p)]


def runs(block: Block) -> bool:
    """The block is run by tests/test_doc_examples.py (it holds commands and is not marked otherwise)."""
    return block.has_commands and block.mark in (None, "new-world")


def chains(path: Path) -> list[list[Block]]:
    """The runnable blocks of a page, in order, cut into the chains that each run in one fresh world: a chain
    starts at the page's first runnable block and at each ``new-world`` block."""
    out: list[list[Block]] = []
    for block in filter(runs, blocks(path)):
        if not out or block.mark == "new-world":
            out.append([])
        out[-1].append(block)
    return out


def chain_commands(chain: list[Block]) -> list[str]:
    """The shell commands a chain runs, in order (its python blocks left out)."""
    return [c for b in chain if b.lang != "python" for c in b.commands()]


def covering_chains(pages: list[Path]) -> dict[tuple[Path, int], tuple[Path, int]]:
    """(page, chain) -> the chain that runs it: a chain whose commands a chain of another page runs too, word for
    word and in the same order (with other commands between them: a world with more in it), is not run a second
    time (the README repeats the pages' first steps). Pages under docs/ cover first, README last; a covered chain
    covers nothing."""
    order = sorted(pages, key=lambda p: p.name == "README.md")
    runs_: list[tuple[Path, int, list[str]]] = []
    covered = {}
    for page in order:
        for i, chain in enumerate(chains(page)):
            mine = chain_commands(chain)
            alone = all(b.lang != "python" for b in chain)  # a chain with a python block is always run itself
            by = next(((q, j) for q, j, theirs in runs_ if q != page and alone and _in_order(mine, theirs)), None)
            if by:
                covered[page, i] = by
            else:
                runs_.append((page, i, mine))
    return covered


def _in_order(mine: list[str], theirs: list[str]) -> bool:
    it = iter(theirs)
    return all(any(c == t for t in it) for c in mine)


# -- rewriting a block into the script the test runs ------------------------------------------------------
def shrink(command: str) -> str:
    """``command`` with its run-lengthening flags capped; each command of an ``a && b`` list on its own."""
    if " && " in command:
        return " && ".join(shrink(part) for part in command.split(" && "))
    if not command.lstrip().startswith("hwnas"):
        return command

    def cap(m):
        flag, value = m.group(1), int(m.group(3))
        return f"{flag}{m.group(2)}{min(value, SHRINK[flag])}"

    command = re.sub(r"(" + "|".join(map(re.escape, SHRINK)) + r")(\s+|=)(\d+)\b", cap, command)
    if re.match(r"hwnas pareto-search\b", command) and not re.search(r"--budget|--resume", command):
        command += f" --budget {RECIPE_BUDGET}"
    if re.match(r"hwnas pareto-search\b", command) and not re.search(r"--trust-archs|--resume", command):
        command += f" --trust-archs {SHRINK['--trust-archs']}"  # a trained run's seed check (6 re-trainings)
    if re.match(r"hwnas profile\b", command) and not re.search(r"--n\b|--archs\b", command):
        command += f" --n {SHRINK['--n']}"  # profile's own default is 50 archs
    if re.match(r"hwnas profile\b", command) and not re.search(r"--quick\b|--max-time-s\b", command):
        command += " --quick"  # the same protocol with short caps (ProtocolSettings.quick): ~1 s per arch, not ~13
    return command


def script_for(block: Block, agent_port: int = 8765) -> str:
    """The bash script that runs ``block``: each command announced (so a failure names it), agents started in
    the background on ``agent_port`` (the world's raspberry-pi-4 profile points there), ci-check verdicts other
    than an error (0 pass, 1 regression, 3 inconclusive) accepted."""
    lines = ["set -euo pipefail"]
    for command in block.commands():
        if command in RUN_BY_JOURNEY:
            where = "::".join(RUN_BY_JOURNEY[command])
            lines.append(f"printf '%s\\n' {_quote(f'>>> {command} (run as typed by {where})')} >&2")
            continue
        command = shrink(command)
        lines.append(f"printf '%s (at %ss)\\n' {_quote('>>> ' + command)} \"$SECONDS\" >&2")
        if re.match(r"hwnas agent serve\b", command):
            command = re.sub(r"\s--port\s+\d+", "", command) + f" --port {agent_port}"
            lines.append(f"{command} > agent.log 2>&1 &")
            lines.append(f"wait-port {agent_port}")
        elif re.match(r"hwnas ci-check\b", command) and " calibrate " not in command:
            lines.append(f"rc=0; {command} || rc=$?")
            lines.append('if [ "$rc" = 2 ] || [ "$rc" -gt 3 ]; then exit "$rc"; fi')
        else:
            lines.append(command)
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# -- the world a page's examples run in -------------------------------------------------------------------
def write_nb201_data(data: Path) -> Path:
    """Synthetic stand-ins for the third-party NB201 tables (README: Third-party data), with the real files'
    names and columns: ``accuracy_cifar10.csv`` and ``latency/<device>.csv``."""
    from search_fixtures import write_nb201_tables

    (data / "latency").mkdir(parents=True)
    for i, device in enumerate(("pixel2", "samsung_s7", "gold_6226")):
        tmp = data / f"seed{i}"
        tmp.mkdir()
        acc, lat = write_nb201_tables(tmp, seed=i)
        if i == 0:
            acc.rename(data / "accuracy_cifar10.csv")
        lat.rename(data / "latency" / f"{device}.csv")
        shutil.rmtree(tmp)
    return data


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_world(root: Path, data: Path, export_cache: Path | None = None, agent_port: int = 8765) -> tuple[Path, dict]:
    """(project directory, environment) for running one page's examples; ``data``: write_nb201_data's folder;
    the raspberry-pi-4 profile points at ``agent_port`` on loopback."""
    project, home, bin_dir = root / "project", root / "home", root / "bin"
    for d in (project, home, bin_dir):
        d.mkdir(parents=True)
    for name in ("search", "device_profiles", "benchmarks"):
        (project / name).symlink_to(REPO / name)
    (project / ".venv").symlink_to(Path(sys.executable).parent.parent)
    shutil.copy(data / "latency" / "pixel2.csv", project / "pixel2.csv")
    shutil.copy(data / "accuracy_cifar10.csv", project / "acc.csv")
    shutil.copy(data / "latency" / "pixel2.csv", project / "lat.csv")

    # inputs the examples name: the archs `hwnas profile --n 2` samples (seed 0), so every runtime converts the
    # same two cells once per test session (the export cache is shared), plus one more
    import numpy as np

    from hwnas.spaces import create_space

    nb201 = create_space("nb201")
    archs = [nb201.to_string(a) for a in nb201.sample_distinct(SHRINK["--n"], np.random.default_rng(0))]
    archs.append("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    (project / "archs.txt").write_text("\n".join(archs[:SHRINK["--n"]]) + "\n")
    (project / "archs.csv").write_text("arch\n" + "\n".join(archs[1:]) + "\n")

    # fakes: no phone, no board here
    (bin_dir / "adb").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKES / 'fake_adb.py'} \"$@\"\n")
    (bin_dir / "ssh").write_text('#!/bin/sh\n# fake ssh: run the remote command here, in $HOME\nshift\ncd "$HOME" && '
                                 'exec sh -c "$*"\n')
    (bin_dir / "wait-port").write_text(
        f"#!{sys.executable}\nimport socket, sys, time\nend = time.time() + 60\nwhile time.time() < end:\n"
        "    try:\n        socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close(); sys.exit(0)\n"
        "    except OSError:\n        time.sleep(0.2)\nsys.exit('nothing listens on port ' + sys.argv[1])\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    hwnas_home = root / "hwnas_home"
    (hwnas_home / "device_profiles").mkdir(parents=True)
    pi = (REPO / "device_profiles" / "raspberry-pi-4.yaml").read_text()
    (hwnas_home / "device_profiles" / "raspberry-pi-4.yaml").write_text(
        pi.replace("host: raspberrypi.local", "host: 127.0.0.1").replace("port: 8765", f"port: {agent_port}"))
    if export_cache is not None:
        (hwnas_home / "cache").mkdir()
        (hwnas_home / "cache" / "exports").symlink_to(export_cache)
    token = home / ".hwnas-agent-token"
    token.write_text("doc-example-token\n")
    token.chmod(0o600)

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"HOME": str(home), "HWNAS_HOME": str(hwnas_home), "NB201_DATA": str(data),
                "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "FAKE_ADB_ROOT": str(root / "phone"), "HWNAS_AGENT_TOKEN": "doc-example-token", "TERM": "dumb",
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)})
    return project, env


def provide_models(project: Path, tflite: bool = False) -> None:
    """Small real ONNX and TFLite models under the names the ci-check and predictor examples use, and a git
    repository whose origin/main holds models/ (``--against origin/main``). ``tflite``: also
    ``mobilenet_v2.tflite`` (a LiteRT conversion: seconds, so only for the pages that name it)."""
    import subprocess

    import torch

    def tiny(channels: int, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(3, channels, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, 10))

    def onnx(path: Path, channels: int, seed: int = 0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            model = tiny(channels, seed).eval()
        torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), opset_version=17, dynamo=False)

    for rel in ("models/net_a.onnx", "old.onnx", "new.onnx", "baseline_models/net_a.onnx", "build/models/net_a.onnx",
                "exported/net_a.onnx", "mobilenet_v2.onnx"):
        onnx(project / rel, 16)
    onnx(project / "models" / "net_b.onnx", 8, seed=1)
    if tflite:
        from hwnas.export import ExportSettings, export_model

        with torch.random.fork_rng(devices=[]):
            model = tiny(16, 0).eval()
        export_model(model, (3, 32, 32), project / "mobilenet_v2.tflite", ExportSettings(format="tflite"))
    onnx(project / "exported" / "net_b.onnx", 24, seed=1)
    git = ["git", "-c", "user.name=doc", "-c", "user.email=doc@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(git + ["add", "models"], cwd=project, check=True)
    subprocess.run(git + ["commit", "-qm", "models"], cwd=project, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=project, check=True)
