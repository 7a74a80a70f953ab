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


# -- (a) profile -> fit-predictor -> predict -> pareto-search on the predictor (items 3, 6) -----------------
TINY = ["--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]


def test_profile_fit_predict_then_search_on_the_predictor(tmp_path):
    from hwnas.spaces import arch_from_text, create_space

    # --next: the archs that cover every op and kernel first (a predictor raises on an op it never saw)
    ran = run_hwnas(["profile", "--device", "host", "--space", "nb201", *TINY, "--next", "10", "--quick"],
                    cwd=tmp_path, mode="tty").ok()
    assert re.search(r"measured now\s*│\s*10\b", ANSI.sub("", ran.out)), ran.out[-3000:]
    ran = run_hwnas(["fit-predictor", "--device", "host", "--space", "nb201"], cwd=tmp_path, mode="pipe").ok()
    assert "trained " in ran.out and "on 10 archs of host" in ran.out
    picked = re.search(r"auto picked ([\w+]+)", ran.out).group(1)  # kernel, or kernel+lut (composed)
    (artifact,) = (tmp_path / "latency_models" / "host").iterdir()
    assert artifact.name == f"nb201-{picked}" and (artifact / "card.json").is_file()
    import json

    card = json.loads((artifact / "card.json").read_text())
    assert card["space_config"] == {"C": 8, "N": 1, "input_size": 8, "num_classes": 10}
    assert card["training"]["count"] == 10
    # a warning exactly when the cross-validation is poor, on stderr and in the card
    cv = card["cv_metrics"]
    poor = cv["within_10pct"] < 0.5 or not cv["spearman_rho"] >= 0.8
    assert bool(card["warnings"]) == poor == ("cross-validates poorly" in ran.err)

    sp = create_space("nb201", C=8, N=1, input_size=8)
    from hwnas.store import MeasurementStore

    archs = [m.arch for m in MeasurementStore().query(device="host")][:3]  # the archs just profiled
    (tmp_path / "archs.txt").write_text("\n".join(archs) + "\n")
    run_hwnas(["predict", "--device", "host", "--archs", "archs.txt", "--out", "predicted.csv"], cwd=tmp_path,
              mode="pipe").ok()
    from journeys import assert_search_results, read_csv

    rows = read_csv(tmp_path / "predicted.csv")
    assert list(rows[0]) == ["arch", "latency_ms", "latency_std_ms", "provenance"]
    assert [r["arch"] for r in rows] == archs
    kind = picked.split("+")[0]  # a composed kernel+lut labels the rows its primary model answered "kernel"
    for r in rows:  # the profiled archs: answered by the primary model
        float(r["latency_ms"]), float(r["latency_std_ms"])
        assert r["provenance"].startswith(f"predicted:{kind}:{card['name']} device=host runtime=onnxruntime "
                                          f"trained_on=10@{card['training']['data_hash']}"), r["provenance"]

    out = tmp_path / "runs" / "predicted"
    ran = run_hwnas(["pareto-search", "--space", "nb201", *TINY, "--objective", "error", "--objective",
                     "latency_ms@host", "--accuracy", "proxy", "--latency", "host=predictor", "--budget", "4",
                     "--seed", "0", "--out", out], cwd=tmp_path, mode="tty").ok()
    front, evals = assert_search_results(out, n_evals=4)
    assert all(r["latency_ms@host_source"] == f"predicted:{card['name']}@host" for r in evals)
    for r in evals:
        arch_from_text(sp, r["arch"])  # archs of the space the predictor was fitted on


def test_profile_exits_1_when_every_arch_fails_in_a_pipe(tmp_path):
    from hwnas.spaces import create_space

    sp = create_space("nb201", C=8, N=1, input_size=8)
    constants = [sp.from_index(i) for i in (10, 12, 74)]
    assert not any(sp.has_path(a) for a in constants)
    (tmp_path / "archs.txt").write_text("\n".join(sp.to_string(a) for a in constants) + "\n")
    ran = run_hwnas(["profile", "--device", "host", "--space", "nb201", *TINY, "--archs", "archs.txt"],
                    cwd=tmp_path, mode="pipe")
    assert ran.rc == 1 and "Traceback" not in ran.text, ran.text
    assert "error: no arch was measured on host: all 3 failed" in ran.err
    assert re.search(r"failed \(recorded in the store\)\s*│\s*3\b", ran.out), ran.out


# -- (b) import a latency table -> propose (item 9) ---------------------------------------------------------
@pytest.fixture(scope="module")
def latency_table(tmp_path_factory):
    from search_fixtures import write_nb201_tables

    return write_nb201_tables(tmp_path_factory.mktemp("tables"))[1]


def test_import_then_propose(tmp_path, latency_table):
    # a small part of the table: 300 cells of pixel2
    small = tmp_path / "pixel2_part.csv"
    small.write_text("".join(latency_table.read_text().splitlines(keepends=True)[:301]))
    ran = run_hwnas(["import", "latency", small.name, "--device", "pixel2", "--space", "nb201"], cwd=tmp_path).ok()
    assert "imported 300 measurements for pixel2" in ran.out
    ran = run_hwnas(["propose", "--device", "pixel2", "--k", "5", "--out", "next.csv"], cwd=tmp_path).ok()
    assert "wrote 5 proposals for pixel2 to next.csv: unmeasured nb201 archs (the defaults; uncertainty of a" in ran.out
    assert "300 already measured" in ran.out
    from journeys import read_csv

    from hwnas.spaces import arch_from_text, create_space

    sp = create_space("nb201")
    rows = read_csv(tmp_path / "next.csv")
    assert list(rows[0]) == ["arch", "reason", "predicted_latency_ms", "predicted_std_ms"]
    imported = {arch_from_text(sp, r["arch"]).arch_id for r in read_csv(small)}
    proposed = [arch_from_text(sp, r["arch"]) for r in rows]
    assert len({a.arch_id for a in proposed}) == 5 and not imported & {a.arch_id for a in proposed}
    assert all(sp.has_path(a) for a in proposed)
    # a device of the reader's own (host, nothing measured yet): pixel2's rows are the prior
    ran = run_hwnas(["propose", "--device", "host", "--k", "3", "--out", "host_next.csv"], cwd=tmp_path).ok()
    assert "new device: covering every op and kernel, then D-optimal" in ran.out and "(pixel2)" in ran.out
    assert len(read_csv(tmp_path / "host_next.csv")) == 3
    # the whole table imported: nothing left to propose, said precisely (exit 2, one line)
    run_hwnas(["import", "latency", str(latency_table), "--device", "pixel2", "--space", "nb201"], cwd=tmp_path).ok()
    ran = run_hwnas(["propose", "--device", "pixel2", "--k", "20", "--out", "again.csv"], cwd=tmp_path)
    assert ran.rc == 2 and len(ran.err.strip().splitlines()) == 1, ran.text
    assert "nothing to propose: every one of the 15,625 archs of nb201 (the defaults)" in ran.err
    assert "(15,925 rows: 15,925 imported)" in ran.err and not (tmp_path / "again.csv").exists()


# -- (c) ci-check pass / fail / inconclusive, every report, piped (item 5) -----------------------------------
LIGHT = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
HEAVY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    from hwnas.export import ExportSettings, export_arch
    from hwnas.spaces import create_space

    d = tmp_path_factory.mktemp("onnx")
    sp = create_space("nb201", C=4, N=1)
    return {name: export_arch(sp, sp.from_string(arch), ExportSettings(format="onnx"), out=d / f"{name}.onnx",
                              cache_dir=d / "cache") for name, arch in (("light", LIGHT), ("heavy", HEAVY))}


@pytest.mark.parametrize("case", ["fail", "pass", "inconclusive"])
def test_ci_check_verdicts_with_every_report_piped(tmp_path, onnx_models, case):
    import json
    import shutil
    import xml.etree.ElementTree as ET

    shutil.copy(onnx_models["light"], tmp_path / "baseline.onnx")
    candidate = {"fail": "heavy", "pass": "light", "inconclusive": "light"}[case]
    shutil.copy(onnx_models[candidate], tmp_path / "model.onnx")
    extra = {"fail": [], "pass": ["--delta", "0.5"], "inconclusive": ["--max-rounds", "4"]}[case]
    ran = run_hwnas(["ci-check", "model.onnx", "--against", "baseline.onnx", "--device", "host", "--budget-s", "3",
                     *extra, "--json", "ci.json", "--junit", "ci.xml", "--markdown", "ci.md"], cwd=tmp_path,
                    mode="pipe")
    code = {"fail": 1, "pass": 0, "inconclusive": 3}[case]
    assert ran.rc == code and "Traceback" not in ran.text, ran.text
    assert f"ci-check: {case} (exit {code})" in ran.out
    lines = _lines(ran.out)
    (row,) = [line for line in lines if "model.onnx" in line and "│" in line]
    # the table's row whole on one line in the CI log: verdict, ratio and the gates column
    assert case in row and re.search(r"\d\.\d{3} \[", row), row
    if case == "fail":
        assert "macs, params, size_bytes, op_count grew" in row
        (reason,) = [line for line in lines if line.startswith("  model.onnx: ")]
        assert "lower bound > 1.050" in reason  # the reason for the failure, whole, in the piped output
    elif case == "inconclusive":
        assert any(line.startswith("  model.onnx: too few rounds (4 < 12); ratio ") for line in lines), lines
    else:
        assert row.rstrip(" │").endswith("ok")
    report = json.loads((tmp_path / "ci.json").read_text())
    assert report["verdict"] == case and report["exit_code"] == code
    (m,) = report["models"]
    assert m["verdict"] == case and m["latency"]["n_rounds"] >= 1
    assert m["measurement"]["rounds"] and "device" in report
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "ci.xml").getroot().iter("testcase")}
    assert "latency" in cases
    latency = cases["latency"]
    assert (latency.find("failure") is not None) == (case == "fail")
    assert (latency.find("skipped") is not None) == (case == "inconclusive")
    md = (tmp_path / "ci.md").read_text()
    assert "model.onnx" in md and {"fail": "❌ FAIL", "pass": "✅ pass", "inconclusive": "⚠️ inconclusive"}[case] in md
    # the two sample distributions, drawn beside the summary and linked from it (issue 27)
    link = re.search(r"!\[samples of model\.onnx\]\((ci-plots/[^)]+\.svg)\)", md)
    assert link, md
    svg = ET.parse(tmp_path / link.group(1)).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    pooled = {side: [v for r in m["measurement"]["rounds"] for v in r[f"{side}_ms"]] for side in ("baseline", "candidate")}
    assert len(svg.findall(f"{ns}circle")) == sum(map(len, pooled.values()))
    medians = {line.get("data-side"): float(line.get("data-ms")) for line in svg.iter(f"{ns}line") if line.get("data-side")}
    import numpy as np

    assert medians == {side: pytest.approx(float(np.median(v)), rel=1e-5) for side, v in pooled.items()}
