"""fit-predictor and rows of several space settings, poor cross-validation, auto's pick (issue #22 item 6)."""

import json

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.spaces import create_space

TINY = ["--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]


def _table(path, indices, noise: float, seed: int = 0):
    """arch,latency_ms: more and bigger convolutions = slower (what a predictor can learn), times noise."""
    sp, rng = create_space("nb201"), np.random.default_rng(seed)
    lines = ["arch,latency_ms"]
    for i in indices:
        g = np.array(sp.from_index(i).genes)
        work = 1 + 2.0 * (g == 3).sum() + (g == 2).sum() + 0.3 * (g == 4).sum()
        lines.append(f"{sp.to_string(sp.from_index(i))},{work * np.exp(rng.normal(0, noise)):.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def two_settings(tmp_path):
    store = tmp_path / "m.db"
    default = _table(tmp_path / "default.csv", range(0, 3000, 100), noise=0.01)
    tiny = _table(tmp_path / "tiny.csv", range(7, 2000, 100), noise=0.01, seed=1)
    assert main(["import", "latency", str(default), "--device", "dev", "--store", str(store)]) == 0
    assert main(["import", "latency", str(tiny), "--device", "dev", *TINY, "--store", str(store)]) == 0
    return store


def test_rows_of_several_settings_stop_with_a_listing(two_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["fit-predictor", "--device", "dev", "--store", str(two_settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "has nb201 rows of 2 space settings" in err
    assert "the defaults (30 rows)" in err and "C=8 N=1 input_size=8 (20 rows)" in err
    assert "--space-opt" in err
    assert not (tmp_path / "latency_models").exists()


def test_space_opt_picks_those_rows(two_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit-predictor", "--device", "dev", "--kind", "lut", *TINY, "--store", str(two_settings)]) == 0
    out = capsys.readouterr().out
    assert "trained lut on 20 archs of dev" in out
    card = json.loads((tmp_path / "latency_models" / "dev" / "nb201-lut" / "card.json").read_text())
    assert card["space_config"] == {"C": 8, "N": 1, "input_size": 8, "num_classes": 10}
    assert card["training"]["count"] == 20
    assert main(["fit-predictor", "--device", "dev", "--kind", "lut", "--space-opt", "C=4",
                 "--store", str(two_settings)]) == 2
    err = capsys.readouterr().err
    assert "no nb201 rows with the space settings C=4" in err and "C=8 N=1 input_size=8 (20 rows)" in err


def _fit_imported(tmp_path, capsys, name, archs, noise):
    """`hwnas import latency` of a planted table, then `hwnas fit-predictor` into tmp_path/p (exit 0 both)."""
    store = tmp_path / "m.db"
    table = _table(tmp_path / name, archs, noise=noise)
    assert main(["import", "latency", str(table), "--device", "dev", "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["fit-predictor", "--device", "dev", "--store", str(store), "--out", str(tmp_path / "p")]) == 0
    return capsys.readouterr()


def test_poor_cross_validation_warns_and_is_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _fit_imported(tmp_path, capsys, "noisy.csv", range(3, 6000, 150), 0.8).err
    assert "cross-validates poorly" in err and "recorded in its card.json" in err
    card = json.loads((tmp_path / "p" / "card.json").read_text())
    assert any("cross-validates poorly" in w for w in card["warnings"])


def test_a_good_predictor_does_not_warn(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    captured = _fit_imported(tmp_path, capsys, "clean.csv", range(3, 6000, 150), 0.01)
    assert "warning" not in captured.err
    assert json.loads((tmp_path / "p" / "card.json").read_text())["warnings"] == []


def test_auto_picks_the_best_score_it_measured(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _fit_imported(tmp_path, capsys, "t.csv", range(3, 9000, 150), 0.2).out
    card = json.loads((tmp_path / "p" / "card.json").read_text())
    cv = card["auto_cv"]
    fitted = {k: m for k, m in cv.items() if "within_10pct" in m}  # the candidates CV measured
    assert len(fitted) >= 2
    best_cov = max(m["space_coverage"] for m in fitted.values())
    best = max((k for k, m in fitted.items() if m["space_coverage"] == best_cov), key=lambda k: fitted[k]["score"])
    assert card["kind"] == best.split("+")[0] or card["name"].endswith(best)
    picked = [line for line in out.splitlines() if "<- picked" in line]
    assert len(picked) == 1 and picked[0].split()[1] == best
    assert f"auto picked {best}: the best cross-validated score" in out


def test_auto_never_picks_an_untested_model_over_a_tested_one():
    """Six archs covering every op (what `hwnas profile --next 6` measures): no fold can test the lut (each held-out
    arch has an op the rest lack), the kernel model scores; auto picked the untested lut (space coverage 1.0)."""
    from hwnas.predictors import create_predictor
    from hwnas.predictors.active import propose_next

    sp = create_space("nb201", C=8, N=1, input_size=8)
    archs = [p.arch for p in propose_next(sp, [], 6, np.random.default_rng(0))]
    g = np.array([a.genes for a in archs])
    y = 0.05 + 0.02 * (g == 3).sum(1) + 0.01 * (g == 2).sum(1) + np.random.default_rng(0).normal(0, 0.002, 6)
    p = create_predictor("auto", space=sp).fit(archs, y)
    assert "within_10pct" not in p.cv_["lut"] and p.cv_["lut"]["space_coverage"] == 1.0  # untested
    assert "within_10pct" in p.cv_["kernel"] and p.cv_["kernel"]["score"] > 0.5
    assert p.chosen_ == "kernel"
    assert "cross-validation measured" in p.best_.card["auto_rule"]
