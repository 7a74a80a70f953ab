"""The evaluations log: one JSON line per unique evaluation, appended the moment it is computed (the
checkpoint a resumed search replays)."""

from __future__ import annotations

import json
from pathlib import Path

from ..contracts import Arch, Evaluation


def evaluation_to_dict(e: Evaluation) -> dict:
    return {"space": e.arch.space, "genes": list(e.arch.genes), "arch_id": e.arch.arch_id, "values": list(e.values),
            "sources": list(e.sources), "violation": e.violation, "extras": e.extras}


def evaluation_from_dict(d: dict) -> Evaluation:
    return Evaluation(Arch(d["space"], tuple(d["genes"])), tuple(float(v) for v in d["values"]), tuple(d["sources"]),
                      dict(d.get("extras") or {}), violation=float(d.get("violation", 0.0)))


def append_log(path: Path, e: Evaluation) -> None:
    with Path(path).open("a") as fh:
        fh.write(json.dumps(evaluation_to_dict(e)) + "\n")
        fh.flush()


def read_log(path: Path) -> list[Evaluation]:
    """Evaluations from a JSON-lines log; a torn last line (killed mid-write) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(evaluation_from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out
