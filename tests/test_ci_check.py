"""`hwnas ci-check` end to end on tiny real ONNX models (onnxruntime in worker processes), plus usage errors."""

import json
import shutil
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from hwnas.cli.main import main
from hwnas.export import ExportSettings, export_arch
from hwnas.spaces import create_space

LIGHT = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
HEAVY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SPACE = ["--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1"]
FAST = ["--budget-s", "3", "--seed", "1"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """light and heavy nb201 C=4 N=1 cells as ONNX files (heavy: all 3x3 convs, ~2.5x the latency)."""
    d = tmp_path_factory.mktemp("models")
    sp = create_space("nb201", C=4, N=1)
    out = {}
    for name, arch in (("light", LIGHT), ("heavy", HEAVY)):
        out[name] = export_arch(sp, sp.from_string(arch), ExportSettings(format="onnx"), out=d / f"{name}.onnx",
                                cache_dir=d / "cache")
    return out


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.slow
def test_planted_slowdown_fails_with_every_report(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["ci-check", *SPACE, HEAVY, "--against", LIGHT, *FAST, "--json", str(tmp_path / "r.json"),
                 "--junit", str(tmp_path / "r.xml")])
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    (m,) = report["models"]
    assert m["verdict"] == "fail" and m["mode"] == "paired (same job)"
    lat = m["latency"]
    assert lat["ci_low"] > 1.05 and lat["slowdown_ms"] > 0.05 and lat["n_rounds"] >= 8
    assert {g: r["verdict"] for g, r in m["gates"].items()} == dict.fromkeys(("macs", "params", "size_bytes", "op_count"), "fail")
    meas = m["measurement"]
    assert set(meas["first_inference_ms"]) == {"baseline", "candidate"}
    orders = [r["order"] for r in meas["rounds"]]
    assert all({orders[i], orders[i + 1]} == {"AB", "BA"} for i in range(0, len(orders) - 1, 2))  # ABBA pairs
    for r in meas["rounds"]:  # raw samples are kept, and each round contributes its median
        assert len(r["baseline_ms"]) == len(r["candidate_ms"]) == meas["per_block"]
        for side in ("baseline", "candidate"):
            assert r[f"{side}_median_ms"] == pytest.approx(statistics.median(r[f"{side}_ms"]), rel=1e-9)
    cases = ET.parse(tmp_path / "r.xml").getroot().findall("testcase")
    assert sorted(c.get("name") for c in cases) == ["latency", "macs", "op_count", "params", "size_bytes"]
    assert all(c.find("failure") is not None for c in cases)
    assert "❌ FAIL" in summary.read_text()


@pytest.mark.slow
def test_same_model_does_not_fail_and_noise_is_reported(models, tmp_path):
    cand, base = tmp_path / "cand", tmp_path / "base"
    cand.mkdir(), base.mkdir()
    shutil.copy(models["light"], cand / "net.onnx")
    shutil.copy(models["light"], base / "net.onnx")
    assert main(["ci-check", "calibrate", str(cand / "net.onnx"), "--rounds", "4"]) == 0
    code = main(["ci-check", str(cand), "--against", str(base), "--delta", "0.001", "--floor-ms", "0.05", *FAST,
                 "--json", str(tmp_path / "r.json")])
    assert code in (0, 3)  # an A/A comparison is never a regression (the explicit floor alone forbids it here)
    (m,) = json.loads((tmp_path / "r.json").read_text())["models"]
    assert m["verdict"] != "fail" and all(r["verdict"] == "pass" for r in m["gates"].values())
    assert m["noise"]["rounds"] == 4
    assert any("below this model's calibrated A/A noise" in n for n in m["notes"])


@pytest.mark.slow
def test_against_a_git_ref_pairs_same_named_files(models, tmp_path):
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    shutil.copy(models["light"], repo / "models" / "net.onnx")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "light")
    shutil.copy(models["heavy"], repo / "models" / "net.onnx")  # the change under review
    shutil.copy(models["light"], repo / "models" / "added.onnx")  # a model that did not exist at HEAD
    out = tmp_path / "r.json"
    code = main(["ci-check", str(repo / "models"), "--against", "HEAD", "--gates", "none", *FAST, "--json", str(out)])
    assert code == 1
    by_name = {m["name"]: m for m in json.loads(out.read_text())["models"]}
    assert by_name["net.onnx"]["verdict"] == "fail" and by_name["net.onnx"]["baseline"].startswith("HEAD:")
    assert by_name["added.onnx"]["verdict"] == "new" and "does not exist at HEAD" in by_name["added.onnx"]["reason"]


@pytest.mark.slow
def test_stored_baseline_only_trusted_on_the_same_machine(models, tmp_path):
    base_file = tmp_path / "baseline.json"
    assert main(["ci-check", str(models["light"]), "--update-baseline", str(base_file), "--rounds", "8"]) == 0
    stored = json.loads(base_file.read_text())
    entry = stored["models"]["light.onnx"]
    assert len(entry["round_medians_ms"]) == 8 and entry["gates"]["op_count"] > 0

    out = tmp_path / "r.json"
    code = main(["ci-check", str(models["light"]), "--baseline", str(base_file), *FAST, "--json", str(out)])
    assert code in (0, 3)
    (m,) = json.loads(out.read_text())["models"]
    assert m["mode"] == "stored baseline (unpaired)" and m["latency"]["paired"] is False

    stored["fingerprint"]["cpu"] = "Some Other CPU"
    base_file.write_text(json.dumps(stored))
    assert main(["ci-check", str(models["light"]), "--baseline", str(base_file), "--json", str(out)]) == 3
    (m,) = json.loads(out.read_text())["models"]
    assert m["verdict"] == "inconclusive" and m["reason"].startswith("inconclusive: different machine (cpu:")
    assert "measurement" not in m  # nothing was measured against an untrustworthy baseline
    assert main(["ci-check", str(models["light"]), "--baseline", str(base_file), "--inconclusive", "pass"]) == 0

    stored["fingerprint"] = json.loads(out.read_text())["device"]["fingerprint"]  # same machine ...
    stored["device_settings"]["threads"] = 4  # ... measured with other settings
    base_file.write_text(json.dumps(stored))
    assert main(["ci-check", str(models["light"]), "--baseline", str(base_file), "--json", str(out)]) == 3
    (m,) = json.loads(out.read_text())["models"]
    assert m["reason"] == "inconclusive: different machine (threads: 4 != 1)"


@pytest.mark.parametrize("args, message", [
    (["m.onnx"], "nothing to compare against"),
    (["m.onnx", "--against", "a.onnx", "--baseline", "b.json"], "either --against"),
    (["missing.onnx", "--against", "x.onnx"], "does not exist"),
    (["m.onnx", "--against", "not-a-ref-or-file"], "not a file, a directory or a git ref"),
    (["m.onnx", "--baseline", "bad.json"], "not valid JSON"),
    (["m.onnx", "--against", "m.onnx", "--inconclusive", "maybe"], "--inconclusive 'maybe'"),
    (["m.onnx", "--against", "m.onnx", "--device", "nope"], "unknown device 'nope'"),
    (["m.onnx", "--against", "m.onnx", "--gates", "flops"], "unknown gate 'flops'"),
    (["notes.txt", "--against", "m.onnx"], "expected a .onnx or .tflite"),
])
def test_usage_errors_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"not really a model")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "notes.txt").write_text("x")
    assert main(["ci-check", *args]) == 2
    assert message in capsys.readouterr().err


def test_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hwnas", "ci-check", "missing.onnx", "--against", "HEAD"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_arch_file_against_a_git_ref_pairs_rows_by_name(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "archs.csv").write_text(f"name,arch\nnet,{LIGHT}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "light")
    (repo / "archs.csv").write_text(f"name,arch\nextra,{LIGHT}\nnet,{HEAVY}\n")  # reordered + a new row
    out = tmp_path / "r.json"
    code = main(["ci-check", *SPACE, "--archs", str(repo / "archs.csv"), "--against", "HEAD", "--gates", "macs",
                 *FAST, "--json", str(out)])
    assert code == 1
    by_name = {m["name"]: m for m in json.loads(out.read_text())["models"]}
    assert by_name["net"]["candidate"] == HEAVY and by_name["net"]["baseline"] == LIGHT
    assert by_name["net"]["verdict"] == "fail" and by_name["net"]["gates"]["macs"]["verdict"] == "fail"
    assert by_name["extra"]["verdict"] == "new" and "archs.csv at HEAD" in by_name["extra"]["reason"]


def test_calibrate_is_a_sub_command_and_check_the_default(capsys):
    assert main(["ci-check", "--help"]) == 0
    out = capsys.readouterr().out
    assert "check" in out and "calibrate" in out
    assert main(["ci-check", "calibrate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--rounds" in out and "--against" not in out  # calibrate takes only what it uses


@pytest.mark.parametrize("empty", ["candidate", "baseline"])
def test_an_empty_model_is_named_by_its_own_file(models, tmp_path, monkeypatch, capsys, empty):
    """Issue 23 item 15: a 0-byte candidate used to be reported as 'worker for <baseline> failed'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.onnx").write_bytes(b"")
    shutil.copy(models["light"], tmp_path / "good.onnx")
    cand, base = ("empty.onnx", "good.onnx") if empty == "candidate" else ("good.onnx", "empty.onnx")
    assert main(["ci-check", cand, "--against", base, *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {empty} model empty.onnx is empty (0 bytes)"


def test_worker_names_the_model_it_could_not_load(models, tmp_path):
    from hwnas.measure.runners.worker import ModelWorker, WorkerCrashed

    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(WorkerCrashed, match=r"^cannot load bad\.onnx: "):
        ModelWorker(models["light"], reference=tmp_path / "bad.onnx", timeout_s=120)
