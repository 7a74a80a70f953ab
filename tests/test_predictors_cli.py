"""`hwnas fit-predictor`, `hwnas predict`, `hwnas propose` on a store filled with planted latencies."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.predictors import LatencyPredictor
from hwnas.predictors.features import cell_kernels
from hwnas.spaces import create_space
from hwnas.store import Measurement, MeasurementStore

COST = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}
SPACE = create_space("nb201", C=4, N=1)


def _rows(device, archs, scale, rng, source="imported"):
    out = []
    for a in archs:
        lat = (2.0 + sum(COST[t] * m for t, m in cell_kernels(a.genes, "pruned"))) * scale * (1 + rng.normal(0, 0.02))
        out.append(Measurement(space="nb201", arch_id=a.arch_id, arch=SPACE.to_string(a), device=device,
                               runtime="onnxruntime", runtime_version="1.0", settings={"space": SPACE.config()},
                               source=source, latency_ms=float(lat)))
    return out


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    archs = SPACE.sample_distinct(150, rng)
    st = MeasurementStore(tmp_path / "m.db")
    st.add_many(_rows("dev", archs[:60], 1.0, rng, source="measured"))
    st.add_many(_rows("other", archs, 3.0, rng))
    return tmp_path / "m.db", archs


def _err(capsys):
    return capsys.readouterr().err.strip()


def test_fit_predict_round_trip(store, tmp_path, monkeypatch, capsys):
    path, archs = store
    monkeypatch.chdir(tmp_path)
    assert main(["fit-predictor", "--device", "dev", "--store", str(path), "--kind", "kernel"]) == 0
    out = capsys.readouterr().out
    assert "trained kernel on 60 archs of dev" in out and "cross-validated (5-fold)" in out
    art = tmp_path / "latency_models" / "dev" / "nb201-kernel"
    card = json.loads((art / "card.json").read_text())
    assert card["device"] == "dev" and card["runtime"] == "onnxruntime" and card["training"]["count"] == 60
    assert card["training_sources"]["measured"] == 60 and card["cv_metrics"]["within_10pct"] > 0.8
    assert card["space_config"] == SPACE.config()  # taken from the rows' settings

    listing = tmp_path / "archs.txt"
    listing.write_text("# to predict\n" + "\n".join(SPACE.to_string(a) for a in archs[100:110]) + "\n")
    assert main(["predict", "--device", "dev", "--archs", str(listing), "--out", "pred.csv"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "pred.csv")))
    assert len(rows) == 10 and set(rows[0]) == {"arch", "latency_ms", "latency_std_ms", "provenance"}
    assert rows[0]["provenance"].startswith("predicted:kernel:nb201-kernel device=dev")
    p = LatencyPredictor.load(art)
    assert float(rows[3]["latency_ms"]) == pytest.approx(p.predict([archs[103]])[0][0], rel=1e-5)


def test_auto_with_prior_from_other_devices(store, tmp_path, capsys):
    path, _ = store
    out_dir = tmp_path / "model"
    assert main(["fit-predictor", "--device", "dev", "--store", str(path), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "prior: 1 other devices (other)" in out and "auto picked" in out
    card = json.loads((out_dir / "card.json").read_text())
    assert card["selected_by"] == "auto" and {k.split("+")[0] for k in card["auto_cv"]} == {"lut", "kernel", "arch", "transfer"}


def test_propose_writes_unmeasured_archs(store, tmp_path, capsys):
    path, archs = store
    out = tmp_path / "next.csv"
    assert main(["propose", "--device", "dev", "--space-opt", "C=4", "--space-opt", "N=1", "--k", "5",
                 "--store", str(path), "--out", str(out), "--pool", "300"]) == 0
    rows = list(csv.DictReader(open(out)))
    measured = {SPACE.to_string(a) for a in archs[:60]}
    assert len(rows) == 5 and not ({r["arch"] for r in rows} & measured)
    assert "fitted now on 60 measurements" in capsys.readouterr().out


def test_bad_input_is_clear(store, tmp_path, monkeypatch, capsys):
    path, archs = store
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty.db"
    MeasurementStore(empty)
    assert main(["fit-predictor", "--device", "dev", "--store", str(empty)]) == 2
    e = _err(capsys)
    assert "no measurements for device 'dev'" in e and "the store is empty" in e
    assert main(["fit-predictor", "--device", "nope", "--store", str(path), "--kind", "lut"]) == 2
    assert "devices there: dev (60), other (150)" in _err(capsys)
    assert main(["fit-predictor", "--device", "dev", "--store", str(path), "--kind", "gnn"]) == 2
    assert "unknown predictor kind 'gnn'" in _err(capsys)
    assert main(["predict", "--device", "dev", "--archs", "missing.txt", "--out", "p.csv"]) == 2
    assert "does not exist" in _err(capsys)
    (tmp_path / "a.txt").write_text(SPACE.to_string(archs[0]) + "\n")
    assert main(["predict", "--device", "dev", "--archs", "a.txt", "--out", "p.csv"]) == 2
    assert "no latency predictor for device 'dev'" in _err(capsys)
    # a malformed arch list, then a mismatched artifact: clear errors, nothing written
    assert main(["fit-predictor", "--device", "dev", "--store", str(path), "--kind", "lut", "--out", "m"]) == 0
    capsys.readouterr()
    # one predictor directory: --predictor DIR; the old spelling --model DIR still works, with one warning line
    assert main(["predict", "--device", "dev", "--predictor", "m", "--archs", "a.txt", "--out", "new.csv"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["predict", "--device", "dev", "--model", "m", "--archs", "a.txt", "--out", "old.csv"]) == 0
    assert capsys.readouterr().err == "warning: --model DIR (a predictor directory) is deprecated: use --predictor DIR\n"
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
    assert main(["predict", "--device", "dev", "--predictor", "m", "--model", "m", "--archs", "a.txt",
                 "--out", "p.csv"]) == 2
    assert "give --predictor once" in _err(capsys)
    (tmp_path / "bad.csv").write_text("arch,latency_ms\n|nor_conv_3x3~0|+|oops|,1\n")
    assert main(["predict", "--device", "dev", "--predictor", "m", "--archs", "bad.csv", "--out", "p.csv"]) == 2
    assert "bad.csv, arch 1" in _err(capsys)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["space_config"]["C"] = 16
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    assert main(["predict", "--device", "dev", "--predictor", "m", "--archs", "a.txt", "--out", "p.csv"]) == 2
    assert "feature schema mismatch" in _err(capsys)
    assert not (tmp_path / "p.csv").exists()


def test_cli_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hwnas", "fit-predictor", "--device", "x", "--store",
                           str(tmp_path / "none.db")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "store" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
