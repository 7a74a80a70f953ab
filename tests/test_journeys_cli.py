"""Journeys of the command line as the docs type it (issue #22 items 3, 5, 6, 9): the installed ``hwnas`` run
as a subprocess with the progress bar on, through a pipe (a CI log) and in a terminal, checked for exit codes,
files, columns and provenance."""

from __future__ import annotations

import re
import sys

import pytest

from journeys import run_hwnas

pytestmark = pytest.mark.journey

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _lines(text: str) -> list[str]:
    return [ANSI.sub("", line).rstrip() for line in text.replace("\r\n", "\n").split("\n")]


# -- tables to a pipe are never cropped (item 5) ----------------------------------------------------------
def test_tables_to_a_pipe_keep_every_cell(tmp_path):
    from hwnas.spaces import SPACES, create_space

    ran = run_hwnas(["spaces"], cwd=tmp_path, mode="pipe").ok()
    lines = _lines(ran.out)
    for name in SPACES:
        doc = (sys.modules[type(create_space(name)).__module__].__doc__ or "").strip().split("\n")[0]
        # each row whole on one line: the 'about' column neither cut nor folded at 80 columns
        assert any(name in line and doc in line for line in lines), (name, doc, ran.out)
    ran = run_hwnas(["devices", "--no-check"], cwd=tmp_path, mode="pipe").ok()
    assert any("host" in line and "estimated:host-cpu-generic" in line and "local" in line
               for line in _lines(ran.out)), ran.out


def test_tables_in_a_terminal_fit_its_width(tmp_path):
    ran = run_hwnas(["devices", "--no-check"], cwd=tmp_path, mode="tty", columns=80).ok()
    lines = [line for line in _lines(ran.out) if line.strip()]
    assert lines and max(map(len, lines)) <= 80, max(lines, key=len)
    assert "estimated:host-cpu-generic" in "".join(line.replace("│", "").replace(" ", "") for line in lines)
