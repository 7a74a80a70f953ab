"""The CI check's schedule, gates, verdict / exit codes and report writers (hwnas.ci), without a runtime."""

import json

import numpy as np
import pytest

from hwnas.ci.ab import MeasureSettings, abba_orders
from hwnas.ci.baseline import fingerprint_mismatch
from hwnas.ci.check import CheckReport, ModelResult
from hwnas.ci.gates import compare_gates
from hwnas.ci.reports import junit_xml, markdown
from hwnas.ci.stats import FAIL, INCONCLUSIVE, PASS, Thresholds
from hwnas.errors import HwnasError
from hwnas.measure.protocol import host_fingerprint
from hwnas.spaces import parse_arch_table


def test_abba_schedule_is_balanced_and_seeded():
    orders = abba_orders(40, np.random.default_rng(0))
    pairs = [tuple(orders[i:i + 2]) for i in range(0, 40, 2)]
    assert set(pairs) == {("AB", "BA"), ("BA", "AB")}  # randomised, both patterns occur
    assert orders.count("AB") == orders.count("BA") == 20
    assert orders == abba_orders(40, np.random.default_rng(0))
    assert abba_orders(5, np.random.default_rng(0)) == orders[:5]


def test_gates_are_exact():
    base = {"macs": 100, "params": 10, "size_bytes": 1000, "op_count": 5}
    res = compare_gates(base, {"macs": 101, "params": 10, "size_bytes": 900, "op_count": 5})
    assert res["macs"]["verdict"] == FAIL and "100 -> 101" in res["macs"]["reason"]
    assert res["params"]["verdict"] == PASS and res["params"]["reason"] == "unchanged"
    assert res["size_bytes"]["verdict"] == PASS and "shrank" in res["size_bytes"]["reason"]


def _report(latency_verdict, gate_verdict=PASS):
    model = ModelResult(name="m.onnx", candidate="m.onnx", baseline="base/m.onnx", candidate_sha256="0" * 64,
                        runtime="onnxruntime", runtime_version="1", verdict=latency_verdict, reason="r",
                        gates={"macs": {"verdict": gate_verdict, "reason": "g", "baseline": 1, "candidate": 1}})
    return CheckReport(device={"name": "host", "threads": 1, "fingerprint": {"cpu": "x"}}, thresholds=Thresholds(),
                       settings=MeasureSettings(), gates=["macs"], models=[model])


@pytest.mark.parametrize("verdict, gate, policy, code", [
    (PASS, PASS, "exit3", 0), (FAIL, PASS, "exit3", 1), (PASS, FAIL, "exit3", 1),
    (INCONCLUSIVE, PASS, "exit3", 3), (INCONCLUSIVE, PASS, "pass", 0),
    (INCONCLUSIVE, PASS, "fail", 1), ("new", "new", "exit3", 0),
])
def test_exit_codes(verdict, gate, policy, code):
    assert _report(verdict, gate).exit_code(policy) == code


def test_exit_code_rejects_an_unknown_policy():
    with pytest.raises(HwnasError, match="^inconclusive 'maybe': expected one of"):
        _report(PASS).exit_code("maybe")


def test_junit_one_testcase_per_model_and_metric():
    import xml.etree.ElementTree as ET

    root = ET.fromstring(junit_xml(_report(INCONCLUSIVE, FAIL)))
    cases = root.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [("m.onnx", "latency"), ("m.onnx", "macs")]
    assert cases[0].find("skipped") is not None and cases[1].find("failure") is not None
    assert root.get("tests") == "2" and root.get("failures") == "1" and root.get("skipped") == "1"
    strict = ET.fromstring(junit_xml(_report(INCONCLUSIVE), inconclusive="fail"))
    assert strict.find("testcase").find("failure") is not None


def test_markdown_has_a_row_per_model():
    md = markdown(_report(FAIL))
    assert "| `m.onnx` | ❌ FAIL |" in md and md.startswith("### hwnas ci-check: ❌ FAIL")


def test_parse_arch_table_with_names():
    rows = parse_arch_table('# models\nname,arch\nsmall,"genes:0,0,0,0,0,0"\nbig,genes:3,3,3,3,3,3\n')
    assert rows == [("small", "genes:0,0,0,0,0,0"), ("big", "genes:3,3,3,3,3,3")]
    assert parse_arch_table("|a~0|\n\n|b~0|\n") == [(None, "|a~0|"), (None, "|b~0|")]


def test_fingerprint_mismatch_names_the_difference():
    fp = host_fingerprint()
    assert fp["cores"] >= 1 and fp["machine"]
    assert fingerprint_mismatch(fp, dict(fp)) == []
    assert fingerprint_mismatch({**fp, "cpu": "Other CPU"}, fp) == [f"cpu: 'Other CPU' != {fp['cpu']!r}"]


def test_bad_thresholds_are_usage_errors():
    with pytest.raises(HwnasError, match="^min_rounds 1: must be >= 2"):
        Thresholds(min_rounds=1)
    with pytest.raises(HwnasError, match="^budget_s 0: must be > 0"):
        MeasureSettings(budget_s=0)


def test_report_json_keeps_its_keys_and_the_verdict_once_concluded():
    report = _report(FAIL)
    d = report.to_dict()
    assert list(d) == ["format", "hwnas_version", "created_at", "device", "thresholds", "measurement_settings",
                       "gates", "source", "models", "suite", "statistics"]
    assert list(d["models"][0]) == ["name", "candidate", "baseline", "candidate_sha256", "runtime",
                                    "runtime_version", "notes", "gates", "latency", "candidate_facts", "op_types",
                                    "mode", "verdict", "reason"]
    assert report.conclude("exit3") == 1
    d = json.loads(json.dumps(report.to_dict()))
    assert (d["verdict"], d["exit_code"], d["inconclusive_policy"]) == ("fail", 1, "exit3")


def test_under_floor_is_its_own_verdict_in_json_junit_and_markdown():
    import xml.etree.ElementTree as ET

    from hwnas.ci.stats import UNDER_FLOOR

    report = _report(UNDER_FLOOR)
    report.models[0].reason = "slower (ratio 1.200 [1.150, 1.250]) by +0.0200 ms, under the explicit 0.05 ms floor"
    report.thresholds = Thresholds(floor_ms=0.05)
    assert report.conclude("exit3") == 0  # the user's explicit floor: exit 0 ...
    d = json.loads(json.dumps(report.to_dict()))
    assert d["models"][0]["verdict"] == UNDER_FLOOR and d["thresholds"]["floor_ms"] == 0.05  # ... but named
    case = ET.fromstring(junit_xml(report)).find("testcase")
    assert case.find("failure") is None and case.find("skipped") is None
    assert case.find("properties/property").attrib == {"name": "verdict", "value": UNDER_FLOOR}
    assert case.find("system-out").text.startswith("under_floor: slower")
    md = markdown(report)
    assert "| `m.onnx` | 🔶 slower, under floor |" in md and "**under_floor**: slower" in md
    assert "explicit 0.05 ms floor: under_floor" in md
    assert "noise floor (A/A spread, timer)" in markdown(_report(PASS))  # the default: no explicit floor


def test_markdown_escapes_a_pipe_and_backticks_in_a_file_name():
    """Issue 23 item 15: a `|` in a model's file name split its table row."""
    report = _report(FAIL)
    report.models[0].name = "a|b`c.onnx"
    row = next(line for line in markdown(report).splitlines() if "a\\|b" in line)
    cells = [c for c in row.replace("\\|", "\0").split("|")][1:-1]
    assert len(cells) == 7 and cells[0].strip().replace("\0", "|") == "``a|b`c.onnx``"
