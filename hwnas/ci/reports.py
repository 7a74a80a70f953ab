"""Report writers of the CI check: JSON (everything, raw samples included), JUnit XML and Markdown.
They return text or write files; nothing here prints (the terminal table lives in ``hwnas.cli.ci_check_cmd``)."""

from __future__ import annotations

from pathlib import Path

from .baseline import write_json
from .check import CheckReport, ModelResult
from .stats import FAIL, INCONCLUSIVE, PASS, UNDER_FLOOR

ICONS = {PASS: "✅ pass", FAIL: "❌ FAIL", INCONCLUSIVE: "⚠️ inconclusive", "new": "🆕 new",
         UNDER_FLOOR: "🔶 slower, under floor"}


def write_report(report: CheckReport, path: Path) -> Path:
    """The ``--json`` report."""
    return write_json(report.to_dict(), path)


def write_text(text: str, path: Path) -> Path:
    from ..fileio import atomic_path, check_writable

    path = check_writable(Path(path))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def latency_cells(m: ModelResult) -> tuple[str, str, str, str]:
    """baseline ms, candidate ms, ratio [95% CI], rounds -- or the reason when nothing was compared."""
    lat = m.latency
    if lat:
        return (f"{lat['baseline_ms']:.3f}", f"{lat['candidate_ms']:.3f}",
                f"{lat['ratio']:.3f} [{lat['ci_low']:.3f}, {lat['ci_high']:.3f}]", str(lat["n_rounds"]))
    return "", "", m.reason, str((m.measurement or {}).get("n_rounds", ""))


def floor_text(th) -> str:
    """How the floor was set: the measurement's noise floor, and the explicit one when given."""
    own = "each model's noise floor (A/A spread, timer)"
    return own if th.floor_ms is None else f"{own}; under the explicit {th.floor_ms:g} ms floor: {UNDER_FLOOR}"


def failed_gates(m: ModelResult) -> list[str]:
    return [g for g, r in m.gates.items() if r["verdict"] == FAIL]


def _latency_line(m: ModelResult) -> str:
    lat = m.latency
    if not lat:
        return m.reason
    return (f"{lat['baseline_ms']:.3f} -> {lat['candidate_ms']:.3f} ms, ratio {lat['ratio']:.3f} "
            f"[{lat['ci_low']:.3f}, {lat['ci_high']:.3f}], {lat['n_rounds']} rounds")


def junit_xml(report: CheckReport, inconclusive: str = "exit3") -> str:
    """One testcase per model and metric (latency + each gate); fail -> <failure>, inconclusive -> <skipped>
    (or <failure> with ``--inconclusive fail``), new models -> <skipped>; under_floor passes (exit 0) but
    carries a ``verdict`` property and says so in its <system-out>."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="hwnas-ci-check")
    counts = {"tests": 0, "failures": 0, "skipped": 0}

    def case(classname: str, name: str, verdict: str, message: str, details: str = "", seconds: float = 0.0):
        tc = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        counts["tests"] += 1
        if verdict == FAIL or (verdict == INCONCLUSIVE and inconclusive == "fail"):
            el = ET.SubElement(tc, "failure", message=message, type=verdict)
            el.text = details or message
            counts["failures"] += 1
        elif verdict in (INCONCLUSIVE, "new"):
            ET.SubElement(tc, "skipped", message=f"{verdict}: {message}")
            counts["skipped"] += 1
        else:
            if verdict == UNDER_FLOOR:
                props = ET.SubElement(tc, "properties")
                ET.SubElement(props, "property", name="verdict", value=UNDER_FLOOR)
                details = f"{UNDER_FLOOR}: {message}\n{details}"
            if details:
                ET.SubElement(tc, "system-out").text = details

    for m in report.models:
        details = _latency_line(m) + "".join(f"\nnote: {n}" for n in m.notes)
        case(m.name, "latency", m.verdict, m.reason, details, float((m.measurement or {}).get("seconds", 0.0)))
        for g, res in m.gates.items():
            case(m.name, g, res["verdict"], res["reason"])
    if report.suite:
        case("suite", "geomean_latency", report.suite["verdict"], report.suite["reason"])
    for k, v in counts.items():
        suite.set(k, str(v))
    suite.set("errors", "0")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def md_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span: fenced with more backticks than it holds, newlines as spaces, and in a
    table cell every ``|`` escaped (GFM splits cells at an unescaped ``|`` even inside a code span)."""
    text = " ".join(str(text).splitlines())
    run, best = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    fence = "`" * (best + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    out = f"{fence}{pad}{text}{pad}{fence}"
    return out.replace("|", "\\|") if in_table else out


def markdown(report: CheckReport, inconclusive: str = "exit3", plots: dict[str, str] | None = None) -> str:
    """The job-summary table: one row per model, the suite, every note and failed gate, and links to the models'
    sample-distribution pictures (``plots``: model name -> path relative to the Markdown file)."""
    dev, th, verdict = report.device, report.thresholds, report.verdict
    lines = [f"### hwnas ci-check: {ICONS.get(verdict, verdict)}", "",
             f"Measured on `{dev['name']}` ({dev['fingerprint'].get('cpu', '?')}, {dev['threads']} thread(s)); "
             f"regression = ratio CI lower bound > {1 + th.delta:.2f} and slowdown above {floor_text(th)}.", "",
             "| model | verdict | baseline ms | candidate ms | ratio [95% CI] | rounds | gates |",
             "|---|---|---:|---:|---|---:|---|"]
    for m in report.models:
        failed = failed_gates(m)
        gates = "❌ " + ", ".join(failed) if failed else "ok"
        lines.append(f"| {md_code(m.name, in_table=True)} | {ICONS.get(m.verdict, m.verdict)} | "
                     + " | ".join(latency_cells(m)) + f" | {gates} |")
    if report.suite:
        s = report.suite
        lines += ["", f"Suite geometric mean over {s['models']} models: **{s['ratio']:.3f}** "
                      f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}] ({s['verdict']})."]
    notes = [(m.name, f"**{m.verdict}**: {m.reason}") for m in report.models if m.verdict == UNDER_FLOOR]
    notes += [(m.name, n) for m in report.models for n in m.notes]
    notes += [(m.name, r["reason"]) for m in report.models for r in m.gates.values() if r["verdict"] == FAIL]
    if notes:
        lines += [""] + [f"- {md_code(name)}: {' '.join(str(n).splitlines())}" for name, n in notes]
    if verdict == INCONCLUSIVE:
        lines += ["", f"Inconclusive results are treated as: `{inconclusive}`."]
    if plots:
        lines += ["", "Every timed inference of baseline and candidate, per model:", ""]
        lines += [f"- {md_code(name)}: ![samples of {name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"
