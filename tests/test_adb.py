"""The adb runner against a fake `adb` on PATH (there is no phone here) replaying benchmark_model output."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hwnas.measure.runners.adb import (FACT_PROPS, AdbRunner, facts_command, parse_benchmark_output, parse_facts,
                                       parse_perf_test_output)
from hwnas.measure.device_profile import load_profile
from hwnas.errors import HwnasError
from hwnas.measure.campaign import measure_archs
from hwnas.measure.protocol import DeviceUnreachable, ProtocolSettings
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

DATA = Path(__file__).parent / "data"
FAKE = Path(__file__).parent / "fakes" / "fake_adb.py"


def test_parse_recent_benchmark_model_output():
    text = (DATA / "benchmark_model_xnnpack.txt").read_text()
    values = {"NUM_RUNS": 120, "WARMUP_RUNS": 5, "GRAPH": "/data/local/tmp/hwnas/m.tflite", "OP_PROFILING": 1,
              "MIN_SECS": 0, "MAX_SECS": 150, "FIRST": 2201, "CURR": 2160, "MIN": 2110, "MAX": 2402, "AVG": 2160.3,
              "STD": 38, "P5": 2114, "MEDIAN": 2151, "P95": 2232}
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    r = parse_benchmark_output(text)
    assert r["count"] == 120 and r["avg_ms"] == pytest.approx(2.1603) and r["std_ms"] == pytest.approx(0.038)
    assert r["median_ms"] == pytest.approx(2.151) and r["p95_ms"] == pytest.approx(2.232)
    assert r["first_inference_ms"] == pytest.approx(4.412) and r["init_ms"] == pytest.approx(3.418)
    assert r["memory_overall_mb"] == pytest.approx(3.01953) and r["peak_memory_mb"] == pytest.approx(9.97266)
    ops = r["op_profile"]
    assert len(ops) == 7 and ops[4]["op_type"] == "Convolution (NHWC, F32) IGEMM" and ops[4]["ms"] == pytest.approx(1.479)
    assert ops[0]["name"] == "Delegate/Convolution (NHWC, F32) IGEMM:0" and ops[0]["calls"] == 1


def test_parse_legacy_output_without_percentiles():
    r = parse_benchmark_output((DATA / "benchmark_model_v2_legacy.txt").read_text())
    assert r["count"] == 50 and r["avg_ms"] == pytest.approx(98.215) and r["median_ms"] is None
    assert r["first_inference_ms"] == pytest.approx(112.043) and r["memory_overall_mb"] == pytest.approx(38.809)
    assert r["op_profile"] is None


def test_parse_failure_quotes_the_output():
    with pytest.raises(HwnasError, match="no timing summary.*Failed to load model"):
        parse_benchmark_output("STARTING!\nERROR: Could not open 'x.tflite'.\nERROR: Failed to load model\n")


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "adb"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    wrapper.chmod(0o755)
    root = tmp_path / "phone"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    return root


def _pixel(**conn):
    p = load_profile("pixel")
    return replace(p, connection={**p.connection, "energy_duration_s": 0.6, **conn})


def test_the_facts_line_runs_in_a_real_shell(tmp_path):
    """facts_command as a POSIX shell runs it (a `getprop` stand-in on PATH; the fake adb only replays the answer):
    the model folder made, the tool found with its sha1, each property on its line, values with spaces kept."""
    import hashlib
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "getprop").write_text('#!/bin/sh\ncase "$1" in ro.product.model) echo "Pixel 7 Pro";; '
                                     'ro.soc.model) echo;; *) echo "v-$1";; esac\n')
    (bin_dir / "getprop").chmod(0o755)
    tool = tmp_path / "bench tool"
    tool.write_bytes(b"ELF")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def run(folder, tool_path):
        cmd = facts_command(str(folder), str(tool_path))
        return parse_facts(subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env).stdout)

    facts = run(tmp_path / "remote dir" / "hwnas", tool)
    assert (tmp_path / "remote dir" / "hwnas").is_dir() and facts["dir"] == "ok" and facts["tool"] == str(tool)
    assert facts["sha1"].split()[0] == hashlib.sha1(b"ELF").hexdigest()
    assert facts["props"] == {**{k: f"v-{k}" for k in FACT_PROPS}, "ro.product.model": "Pixel 7 Pro", "ro.soc.model": ""}
    (tmp_path / "file").write_text("")
    bad = run(tmp_path / "file" / "sub", tmp_path / "missing")
    assert bad["dir"] != "ok" and "No such file" in bad["tool"] and bad["sha1"] == ""


def test_reachability(fake_adb, monkeypatch):
    ok, why = AdbRunner().reachable(_pixel())
    assert ok and "FAKE0001" in why
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    assert AdbRunner().reachable(_pixel()) == (False, "no adb device connected")
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A,B")
    assert "set connection.serial" in AdbRunner().reachable(_pixel())[1]
    assert AdbRunner().reachable(_pixel(serial="B"))[0]
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "adb not found" in AdbRunner().reachable(_pixel())[1]


@pytest.mark.slow
def test_profile_pixel_through_fake_adb(fake_adb, tmp_path, shared_export_cache, monkeypatch):
    sp = create_space("nb201", C=4, N=1)
    arch = sp.from_index(3)
    store = MeasurementStore(tmp_path / "m.db")
    proto = ProtocolSettings.quick()
    (m,) = measure_archs(sp, [arch], _pixel(energy_duration_s=5), store, proto, cache_dir=shared_export_cache)
    calls = (fake_adb / "calls.log").read_text()
    assert "push" in calls and f"/data/local/tmp/hwnas/{arch.arch_id}" in calls
    assert "taskset f0 /data/local/tmp/benchmark_model" in calls and "--num_threads=4" in calls
    assert "--use_xnnpack=true" in calls and "--enable_op_profiling=true" in calls
    # the phone's facts (model folder, tool, its sha1, build properties) in one adb round trip per arch, not eight
    (facts,) = [ln for ln in calls.splitlines() if "getprop" in ln]
    assert all(k in facts for k in FACT_PROPS) and "sha1sum" in facts and "mkdir -p" in facts
    assert not [ln for ln in calls.splitlines() if ln.startswith(("shell 'getprop", "shell 'sha1sum", "shell 'ls"))]
    assert not list((fake_adb / "data/local/tmp/hwnas").glob("*.tflite"))  # cleaned up on the phone
    assert m.device == "pixel" and m.runtime == "litert" and m.runtime_version == "benchmark_model sha1:3f786850e387"
    assert m.latency_ms == pytest.approx(2.139, rel=0.01) and m.first_inference_ms == pytest.approx(4.412)
    assert m.latency_p90_ms is None and m.latency_cv > 0 and m.n_runs > 100 and not m.unstable
    assert m.fingerprint["android"]["ro.product.model"] == "Pixel 7"
    assert m.fingerprint["protocol"]["sample"] == "benchmark_model round medians"
    assert m.energy_source == "measured:battery"
    sustained = [ln for ln in calls.splitlines() if "--num_runs=1000000" in ln]
    assert len(sustained) == 1 and "--min_secs=1 --max_secs=1 " in sustained[0]  # the quick protocol's cap, not the profile's 5 s
    assert m.fingerprint["protocol"]["energy_run_s"] == 1.0  # and the row says how long the battery was sampled
    assert m.energy_mj == pytest.approx(0.612 * 3.871 * m.latency_ms, rel=1e-6)  # W x ms
    assert m.op_profile and m.op_profile[0]["op_type"].startswith("Convolution")

    # no battery access: the power model, labelled estimated
    monkeypatch.setenv("FAKE_ADB_BATTERY", "0")
    (m2,) = measure_archs(sp, [arch], _pixel(), store, proto, cache_dir=shared_export_cache, op_profile=False,
                          skip_measured=False)
    assert m2.energy_source == "estimated:phone-big-cores" and m2.energy_mj == pytest.approx(4.0 * m2.latency_ms)

    # phone unplugged mid-run: a clear error, earlier results kept
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    with pytest.raises(DeviceUnreachable, match="pixel is not reachable: no adb device connected"):
        measure_archs(sp, [arch], _pixel(), store, proto, cache_dir=shared_export_cache, skip_measured=False)
    assert len(store) == 2


def test_missing_benchmark_binary_is_a_clear_error(fake_adb, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_ADB_NO_BENCHMARK", "1")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(DeviceUnreachable, match="benchmark_model not found at /data/local/tmp/benchmark_model on the phone; push the official"):
        AdbRunner().run(model, _pixel())


# -- ONNX Runtime over adb: onnxruntime_perf_test ------------------------------------------------------------
def _fill(name, **values):
    text = (DATA / name).read_text()
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def test_parse_perf_test_output():
    text = _fill("onnxruntime_perf_test.txt", THREADS=4, FIRST=3, TOTAL=0.2181, NUM_RUNS=100, AVG=2.181,
                 RUNTIME=0.2203, IPS=453.9, MIN=0.002051, MAX=0.003302, P50=0.002139, P90=0.002231, P95=0.002301,
                 P99=0.002911, P999=0.003302)
    r = parse_perf_test_output(text)
    assert r["count"] == 100 and r["avg_ms"] == pytest.approx(2.181) and r["median_ms"] == pytest.approx(2.139)
    assert r["min_ms"] == pytest.approx(2.051) and r["max_ms"] == pytest.approx(3.302)
    assert r["p90_ms"] == pytest.approx(2.231) and r["p95_ms"] == pytest.approx(2.301) and r["p99_ms"] == pytest.approx(2.911)
    assert r["first_inference_ms"] == 3.0 and r["init_ms"] == pytest.approx(41.2931)
    assert r["peak_memory_mb"] == pytest.approx(38297600 / 2 ** 20) and r["std_ms"] is None and r["op_profile"] is None


def test_parse_perf_test_legacy_format():
    r = parse_perf_test_output((DATA / "onnxruntime_perf_test_legacy.txt").read_text())
    assert r["count"] == 1000 and r["avg_ms"] == pytest.approx(58.8053) and r["median_ms"] == pytest.approx(58.7108)
    assert r["p99_ms"] == pytest.approx(61.9517) and r["first_inference_ms"] is None


def test_parse_perf_test_failure_quotes_the_output():
    with pytest.raises(HwnasError, match="no latency statistics.*not included in perf test runner"):
        parse_perf_test_output("This backend is not included in perf test runner.\n")


def test_tool_commands_for_delegates_and_providers():
    r = AdbRunner()
    pixel = load_profile("pixel")
    assert "--use_gpu=true" in r._bench_cmd(replace(pixel, delegate="gpu"), "/m.tflite", 10, 1)
    assert "--use_nnapi=true" in r._bench_cmd(replace(pixel, delegate="nnapi"), "/m.tflite", 10, 1)
    ort = load_profile("pixel-onnxruntime")
    cmd = r._bench_cmd(ort, "/d/m.onnx", 50, 1)
    assert cmd == ("taskset f0 /data/local/tmp/onnxruntime_perf_test -I -s -e xnnpack -x 4 -y 1 -m times -r 50 "
                   "/d/m.onnx")
    qnn = replace(ort, delegate="QNNExecutionProvider", connection={**ort.connection, "ep_options": "backend_path|libQnnHtp.so"})
    assert "-e qnn" in r._bench_cmd(qnn, "/m.onnx", 5, 1) and "-i 'backend_path|libQnnHtp.so'" in r._bench_cmd(qnn, "/m.onnx", 5, 1)
    assert "-m duration -t 5" in r._bench_cmd(ort, "/m.onnx", 1_000_000, 1, min_secs=5, max_secs=5)


def test_adb_delegate_is_validated_per_runtime(tmp_path):
    from hwnas.measure.device_profile import ProfileError, validate_profile

    data = load_profile("pixel-onnxruntime").to_dict()
    data["delegate"] = "gpu"
    with pytest.raises(ProfileError, match="key 'delegate': expected one of cpu, xnnpack, nnapi, qnn.*for onnxruntime"):
        validate_profile(data, where="x.yaml")


def test_profile_pixel_onnxruntime_through_fake_adb(fake_adb, tmp_path, shared_export_cache):
    sp = create_space("nb201", C=4, N=1)
    arch = sp.from_index(5)
    store = MeasurementStore(tmp_path / "m.db")
    prof = replace(load_profile("pixel-onnxruntime"), energy={"sensor": "none", "power_model": None})
    proto = replace(ProtocolSettings.quick(), max_time_s=60.0)  # converges in 3 rounds; the cap only guards a slow box
    (m,) = measure_archs(sp, [arch], prof, store, proto, cache_dir=shared_export_cache)
    calls = (fake_adb / "calls.log").read_text()
    assert "taskset f0 /data/local/tmp/onnxruntime_perf_test -I -s -e xnnpack -x 4 -y 1 -m times" in calls
    assert f"/data/local/tmp/hwnas/{arch.arch_id}" in calls and ".onnx" in calls
    assert not list((fake_adb / "data/local/tmp/hwnas").glob("*.onnx"))  # cleaned up on the phone
    assert m.runtime == "onnxruntime" and m.runtime_version == "onnxruntime_perf_test sha1:3f786850e387"
    assert m.latency_ms == pytest.approx(2.139, rel=0.01) and m.latency_p90_ms == pytest.approx(2.139 * 1.04, rel=0.01)
    assert m.latency_cv is None and m.first_inference_ms is not None and not m.unstable
    assert m.fingerprint["protocol"]["sample"] == "onnxruntime_perf_test round P50s"
    assert m.fingerprint["protocol"]["p99_ms"] == pytest.approx(2.139 * 1.15, rel=0.01)
    assert m.settings["delegate"] == "xnnpack" and m.op_profile is None


def test_drift_reference_over_adb_runs_abab(fake_adb, tmp_path):
    model, ref = tmp_path / "m.onnx", tmp_path / "r.onnx"
    model.write_bytes(b"onnx")
    ref.write_bytes(b"onnx-ref")
    prof = replace(load_profile("pixel-onnxruntime"), energy={"sensor": "none", "power_model": None})
    r = AdbRunner().run(model, prof, replace(ProtocolSettings.quick(), max_time_s=60.0), reference=ref)
    runs = [ln.split()[-1].strip("'") for ln in (fake_adb / "calls.log").read_text().splitlines() if " -I -s " in ln]
    assert runs[0] == "/data/local/tmp/hwnas/ref-r.onnx"  # the reference's probe sizes its rounds
    abab = runs[1:]  # then a reference round before every round of the candidate: probe, warm-up and timed
    assert abab[0::2] == ["/data/local/tmp/hwnas/ref-r.onnx"] * (len(abab) // 2)
    assert abab[1::2] == ["/data/local/tmp/hwnas/m.onnx"] * (len(abab) // 2)
    p = r.protocol
    assert len(abab) // 2 == 1 + p["warmup_rounds"] + p["rounds"]
    assert r.reference["rounds"] == p["rounds"] and r.reference["ratio"] == pytest.approx(1.0, abs=0.02)
    assert not list((fake_adb / "data/local/tmp/hwnas").glob("*.onnx"))


def test_taskset_must_be_a_cpu_mask_never_shell_text():
    from dataclasses import replace

    runner = AdbRunner()
    prof = load_profile("pixel")
    assert runner._taskset(replace(prof, connection={**prof.connection, "taskset": "f0"})) == "f0"
    with pytest.raises(HwnasError, match="hex CPU mask"):
        runner._taskset(replace(prof, connection={**prof.connection, "taskset": "f0; rm -rf /sdcard"}))
