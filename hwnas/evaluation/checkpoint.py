"""The evaluations log: one JSON line per unique evaluation, appended the moment it is computed (the
checkpoint a resumed search replays).

A log begins with a header line, ``{"hwnas_log": 1, "settings": {...}}``: the settings the evaluations come
from, written (whole, atomically) before the first evaluation, so a resume can tell that the editable
``config.yaml`` still describes them. Logs of older hwnas versions have no header; they are read as before.

Reading a log to continue it (:func:`read_for_resume`) is strict: every complete line must be a record, or a
``LogError`` names the first that is not (the log was damaged or edited). Only the last line may be torn (a
crash mid-write leaves it without its newline): it is cut off, or completed when only the newline is missing
(:func:`repair_tail`), before anything is appended, so the next record starts on a line of its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..contracts import Arch, Evaluation
from ..errors import HwnasError
from ..fileio import atomic_path

HEADER_KEY = "hwnas_log"
LOG_FORMAT = 1


class LogError(HwnasError):
    """A search log that cannot be continued as it is (a damaged or edited line)."""


def evaluation_to_dict(e: Evaluation) -> dict:
    return {"space": e.arch.space, "genes": list(e.arch.genes), "arch_id": e.arch.arch_id, "values": list(e.values),
            "sources": list(e.sources), "violation": e.violation, "extras": e.extras}


def evaluation_from_dict(d: dict) -> Evaluation:
    return Evaluation(Arch(d["space"], tuple(d["genes"])), tuple(float(v) for v in d["values"]), tuple(d["sources"]),
                      dict(d.get("extras") or {}), violation=float(d.get("violation", 0.0)))


def start_log(path: Path, settings: dict) -> None:
    """Begin a log with its header: the settings its evaluations come from (written whole or not at all)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({HEADER_KEY: LOG_FORMAT, "settings": settings}, sort_keys=True) + "\n")


def append_log(path: Path, e: Evaluation) -> None:
    with Path(path).open("a") as fh:
        fh.write(json.dumps(evaluation_to_dict(e)) + "\n")
        fh.flush()


def _header(obj) -> dict | None:
    """The header a parsed first line is, or None when it is not one."""
    return obj if isinstance(obj, dict) and HEADER_KEY in obj else None


def read_log(path: Path) -> list[Evaluation]:
    """Evaluations from a JSON-lines log (lenient, for looking at a run: the header and any line that is not a
    record, a torn last line included, are skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
            if _header(d) is None:
                out.append(evaluation_from_dict(d))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def read_log_header(path: Path) -> dict | None:
    """The header of a log (``{"hwnas_log": 1, "settings": {...}}``); None when there is no log, or it has no
    header (empty, or written by an older hwnas)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogError(f"{path} is damaged ({exc.strerror or exc})") from None
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise LogError(f"{path} is damaged (line 1 is not UTF-8 text)") from None
    try:
        header = _header(json.loads(text))
    except ValueError:
        return None
    if header is not None and not isinstance(header.get("settings"), dict):
        raise LogError(f"{path} is damaged (line 1, its header, holds no settings mapping)")
    return header


@dataclass
class TornLine:
    """The last line of a log without its newline: ``offset`` where it starts, ``line`` its number,
    ``record`` True when it is nevertheless a whole record (only the newline is missing)."""

    offset: int
    line: int
    nbytes: int
    record: bool


@dataclass
class ResumeLog:
    header: dict | None
    records: list[tuple[int, Evaluation]]  # (line number, evaluation), in log order
    torn: TornLine | None


def _record(text: str) -> Evaluation:
    d = json.loads(text)
    if not isinstance(d, dict):
        raise TypeError(f"a {type(d).__name__}, not a mapping")
    return evaluation_from_dict(d)


def read_for_resume(path: Path) -> ResumeLog:
    """Read a log to continue it: its header, every record with its line number, and a torn last line if
    there is one. Changes nothing on disk; a line before the last that is not a record is a LogError naming it.
    A torn line that is a whole record (only its newline missing) is among ``records``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ResumeLog(None, [], None)
    except OSError as exc:
        raise LogError(f"{path} is damaged ({exc.strerror or exc})") from None
    cut = data.rfind(b"\n") + 1
    lines = data[:cut].split(b"\n")[:-1]
    header, records = None, []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LogError(f"{path} is damaged (line {number} is not UTF-8 text)") from None
        if not text.strip():
            continue
        if number == 1:
            try:
                first = _header(json.loads(text))
            except ValueError:
                first = None
            if first is not None:
                if not isinstance(first.get("settings"), dict):
                    raise LogError(f"{path} is damaged (line 1, its header, holds no settings mapping)")
                header = first
                continue
        try:
            records.append((number, _record(text)))
        except (ValueError, KeyError, TypeError) as exc:
            why = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            raise LogError(f"{path} is damaged: line {number} is not a complete evaluation record ({why})") from None
    torn = None
    if cut < len(data):
        tail, number = data[cut:], len(lines) + 1
        try:
            records.append((number, _record(tail.decode("utf-8"))))
            whole = True
        except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
            whole = False
        torn = TornLine(offset=cut, line=number, nbytes=len(tail), record=whole)
    return ResumeLog(header, records, torn)


def repair_tail(path: Path, torn: TornLine) -> str:
    """Make a log end with a whole line before anything is appended to it: cut a torn last line off, or add the
    newline a whole last record lacks. Returns a note saying which."""
    path = Path(path)
    if torn.record:
        with path.open("ab") as fh:
            fh.write(b"\n")
        return f"{path}: line {torn.line} lacked its newline (a crash mid-write); completed it"
    os.truncate(path, torn.offset)
    return (f"{path}: cut off the torn last line {torn.line} ({torn.nbytes} bytes; a crash mid-write); "
            "its arch is evaluated again")
