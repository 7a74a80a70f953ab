import csv
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from hwnas.cli.main import main
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

TINY = ["--space-opt", "C=4", "--space-opt", "N=1"]


def _cli(*argv, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "hwnas", *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def shared_cache(monkeypatch, shared_export_cache):
    """Profile commands export into the session's shared cache (one conversion per arch per session)."""
    import hwnas.export

    monkeypatch.setattr(hwnas.export, "export_cache_dir", lambda: shared_export_cache)
    return shared_export_cache


def _arch_file(tmp_path, indices):
    sp = create_space("nb201", C=4, N=1)
    p = tmp_path / "archs.txt"
    p.write_text("# archs\n" + "\n".join(sp.to_string(sp.from_index(i)) for i in indices) + "\n")
    return p


@pytest.mark.slow
def test_profile_on_both_runtimes_resumes_and_exports(tmp_path, shared_cache, capsys):
    store = tmp_path / "m.db"
    archs = _arch_file(tmp_path, [3, 7])
    base = ["profile", "--device", "host", "--archs", str(archs), "--store", str(store), "--quick", *TINY]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "measured now" in out and "estimated:host-cpu-generic" in out
    assert main(base) == 0  # resume: nothing new
    out = capsys.readouterr().out
    assert re.search(r"already in the store \(skipped\)\s*│\s*2\s*│", out)
    assert re.search(r"measured now\s*│\s*0\s*│", out)
    assert len(MeasurementStore(store).query(latest=False)) == 2
    # LiteRT on the same host (arch 3 shares its .tflite with the adb test through the shared cache)
    assert main(["profile", "--device", "host", "--runtime", "litert", "--archs", str(_arch_file(tmp_path, [3])),
                 "--store", str(store), "--quick", "--no-op-profile", *TINY]) == 0
    rows = MeasurementStore(store).query()
    assert sorted(m.runtime for m in rows) == ["litert", "onnxruntime", "onnxruntime"]
    lite = next(m for m in rows if m.runtime == "litert")
    assert lite.runtime_version.startswith("ai-edge-litert") and lite.settings["format"] == "tflite"

    out_csv = tmp_path / "host.csv"
    assert main(["export-measurements", "--device", "host", "--out", str(out_csv), "--store", str(store)]) == 0
    with out_csv.open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 3 and {r["source"] for r in table} == {"measured"}
    assert all(float(r["latency_ms"]) > 0 and r["energy_source"] == "estimated:host-cpu-generic" for r in table)


def test_import_then_export_round_trip(tmp_path, capsys):
    sp = create_space("nb201")
    src = tmp_path / "lat.csv"
    src.write_text("arch,latency_ms,energy_mj\n"
                   f"{sp.to_string(sp.from_index(0))},9.0,12.5\n"
                   f"{sp.to_string(sp.from_index(1))},17.0,\n")
    store = tmp_path / "m.db"
    assert main(["import", "latency", str(src), "--device", "pixel2", "--space", "nb201", "--store", str(store)]) == 0
    rows = MeasurementStore(store).query(device="pixel2")
    assert [(m.source, m.latency_ms, m.energy_mj, m.energy_source) for m in rows] == [
        ("imported", 9.0, 12.5, "imported"), ("imported", 17.0, None, None)]
    out = tmp_path / "back.csv"
    assert main(["export-measurements", "--device", "pixel2", "--out", str(out), "--store", str(store)]) == 0
    with out.open() as fh:
        back = list(csv.DictReader(fh))
    assert [(r["arch"], r["latency_ms"], r["source"]) for r in back] == [
        (sp.to_string(sp.from_index(0)), "9.0", "imported"), (sp.to_string(sp.from_index(1)), "17.0", "imported")]
    # the exported file imports again (arch + latency_ms + energy_mj columns come first)
    assert main(["import", "latency", str(out), "--device", "again", "--store", str(store)]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile", "--device", "nope"], "unknown device 'nope'"),
        (["profile", "--device", "host", "--runtime", "tvm"], "unknown runtime 'tvm'"),
        (["profile", "--device", "raspberry-pi-4", "--n", "1", *TINY], "device raspberry-pi-4 is not reachable: no answer from the agent at http://raspberrypi.local:8765"),
        (["profile", "--device", "BADYAML"], "bad.yaml: key 'threads': expected an integer in 1..256, got 'many'"),
        (["import", "latency", "LAT", "--device", "x"], "line 3: nb201: malformed arch string"),
        (["export-measurements", "--device", "ghost", "--out", "x.csv"], "no measurements for device 'ghost'"),
        (["profile", "--device", "host", "--store", "JUNK", "--n", "1"], "is not a hwnas measurement store"),
        (["profile", "--device", "host", "--device", "host", "--n", "1", *TINY], "device host is named twice"),
        (["profile", "--device", "host", "--device", "pixel", "--next", "2", *TINY],
         "--next chooses archs for one device: give one --device"),
        (["profile", "--device", "host", "--device", "pixel", "--executor", "dask"], "unknown executor 'dask'"),
        (["profile", "--device", "host", "--address", "10.0.0.1:6379"], "--address only makes sense with --executor ray"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("runtime: onnxruntime\nthreads: many\n")
    sp = create_space("nb201")
    (tmp_path / "lat.csv").write_text(f"arch,latency_ms\n{sp.to_string(sp.from_index(0))},1.0\n|bad|,2.0\n")
    (tmp_path / "junk.db").write_bytes(b"not sqlite" * 200)
    argv = [{"BADYAML": str(tmp_path / "bad.yaml"), "LAT": str(tmp_path / "lat.csv"),
             "JUNK": str(tmp_path / "junk.db")}.get(a, a) for a in argv]
    proc = _cli(*argv, env={"HWNAS_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    if argv[0] == "import":  # all or nothing
        assert len(MeasurementStore(tmp_path / "home" / "measurements.db")) == 0


def test_devices_lists_profiles_with_reachability(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in ("host", "pixel", "raspberry-pi-4", "raspberry-pi-5", "jetson-nano"):
        assert name in out
    assert "yes (this host)" in out and "estimated:rpi4-board" in out


@pytest.mark.slow
def test_ctrl_c_keeps_finished_measurements(tmp_path, shared_export_cache):
    store = tmp_path / "m.db"
    archs = _arch_file(tmp_path, [1, 2, 3, 5, 6, 8, 9, 10])
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", "profile", "--device", "host", "--archs", str(archs),
                             "--store", str(store), "--no-op-profile", "--max-time-s", "0.5", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if store.exists() and len(MeasurementStore(store)) >= 1:
            break
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = len(MeasurementStore(store))
    assert proc.returncode == 130 and "everything finished so far is kept" in err
    assert 1 <= kept < 8


@pytest.mark.slow
def test_profile_next_measures_new_archs_chosen_by_active_learning(tmp_path, shared_cache, capsys):
    store = tmp_path / "m.db"
    base = ["profile", "--device", "host", "--store", str(store), "--quick", "--no-op-profile", *TINY]
    assert main([*base, "--archs", str(_arch_file(tmp_path, [3]))]) == 0
    assert main([*base, "--next", "2", "--seed", "1"]) == 0
    assert "chose archs by" in capsys.readouterr().err
    rows = MeasurementStore(store).query()
    assert len(rows) == 3 and len({m.arch_id for m in rows}) == 3  # two new archs, never the measured one
    assert main([*base, "--next", "1", "--archs", str(_arch_file(tmp_path, [3]))]) == 2  # exclusive options
