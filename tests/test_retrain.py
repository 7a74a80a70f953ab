"""`hwnas retrain`: a real (tiny) train search, then its front retrained from scratch, resumably."""

from __future__ import annotations

import csv
import json

import pytest

from hwnas.accuracy.retrain import RetrainSettings, retrain_front
from hwnas.cli.main import main
from hwnas.errors import HwnasError


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    args = ["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt",
            "input_size=8", "--objective", "error", "--objective", "params", "--accuracy", "train", "--epochs", "1",
            "--max-train", "128", "--budget", "6", "--strategy-opt", "population_size=6", "--no-progress",
            "--out", str(out)]
    assert main(args) == 0
    return out


def test_retrain_writes_per_seed_val_and_test_with_tau(run_dir, tmp_path, capsys):
    import shutil

    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    front = read_csv(d / "pareto.csv")
    assert main(["retrain", str(d), "--top", "3", "--epochs", "1", "--seeds", "2", "--train-device", "cpu"]) == 0
    out = capsys.readouterr().out
    k = min(3, len(front))
    assert f"{k} archs x 2 seed(s), {2 * k} trained now, 0 kept" in out and "Kendall tau" in out
    rows = read_csv(d / "retrained.csv")
    assert len(rows) == k and [r["arch"] for r in rows] == [r["arch"] for r in
                                                           sorted(front, key=lambda r: float(r["error"]))][:k]
    for r in rows:
        vals = [float(r["val_seed0"]), float(r["val_seed1"])]
        assert float(r["val_mean"]) == pytest.approx(sum(vals) / 2, abs=1e-3) and r["val_std"] != ""
        assert 0 <= float(r["test_mean"]) <= 100 and r["seeds_done"] == "2"
        assert r["source"] == "trained:digits(val+test, 1 epochs, short recipe, seeds 0-1)"
        assert float(r["search_accuracy"]) == pytest.approx(100 - float(next(f["error"] for f in front if f["arch"] == r["arch"])), abs=1e-3)
        assert r["search_source"].startswith("trained:digits(")
    summary = json.loads((d / "retrain.json").read_text())
    assert summary["n_complete"] == k and summary["settings"]["recipe"]["epochs"] == 1
    assert (summary["kendall_tau_val"] is None) == (k < 2)


def test_a_killed_retrain_continues_to_the_same_numbers(run_dir, tmp_path):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(run_dir, a)
    shutil.copytree(run_dir, b)
    kw = dict(top=2, epochs=1, seeds=2, device="cpu")
    full = retrain_front(a, **kw)
    calls = []

    def die(info):
        calls.append(info)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrain_front(b, progress=die, **kw)
    assert len([r for r in read_csv(b / "retrained.csv") if r["val_seed0"]]) >= 1  # written as it went
    resumed = retrain_front(b, RetrainSettings(**kw))  # the settings object and the keywords are one thing
    assert resumed.reused == 2 and resumed.trained == full.trained - 2
    assert read_csv(b / "retrained.csv") == read_csv(a / "retrained.csv")
    with pytest.raises(HwnasError, match="was made with other settings"):
        retrain_front(b, top=2, epochs=2, seeds=2, device="cpu")
    with pytest.raises(TypeError):
        retrain_front(b, RetrainSettings(**kw), top=2)


def test_retrain_bad_input_is_one_line(tmp_path, capsys):
    assert main(["retrain", str(tmp_path)]) == 2
    assert "is not a finished search (needs config.yaml and pareto.csv)" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("space: nb201\n")
    (tmp_path / "pareto.csv").write_text("order,arch,arch_id,latency_ms@dev\n1,x,y,3\n")
    assert main(["retrain", str(tmp_path), "--epochs", "1"]) == 2
    assert "no error or proxy" in capsys.readouterr().err
    assert main(["retrain", str(tmp_path), "--seeds", "0"]) == 2
