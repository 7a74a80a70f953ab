"""Issue 24 gap 1: ``auto`` composes instead of excluding. On a well-measured device (200 cells that have an
input-output path; cells without one are not measured) the kernel / arch models never see ``fill_zeros``,
which only path-less cells execute, so they cover 0.97 of the space while the lut covers all of it. auto must
not discard the best cross-validated model for that: it answers the archs it covers, the lut the rest
(labelled, wider std), and the artifact says so."""

import csv
import json

import numpy as np
import pytest

from hwnas.predictors import ArtifactError, LatencyPredictor, UnknownOpError, create_predictor
from hwnas.predictors.features import cell_kernels
from hwnas.predictors.metrics import within
from hwnas.spaces import create_space
from tests.journeys import run_hwnas

COST = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}
DEGENERATE = (0, 0, 0, 0, 0, 0)  # every edge 'none': no path, the pruned graph is one fill_zeros kernel


def planted(archs, rng):
    """A per-kernel cost model of the pruned executed graph with 2% multiplicative noise."""
    y = np.array([2.0 + sum(COST[t] * m for t, m in cell_kernels(a.genes, "pruned")) for a in archs])
    return y * (1 + rng.normal(0, 0.02, len(y)))


def path_cells(space, n, seed):
    rng = np.random.default_rng(seed)
    archs = [a for a in space.sample_distinct(3 * n, rng) if space.has_path(a)][:n]
    return archs, planted(archs, rng)


@pytest.fixture(scope="module")
def space():
    return create_space("nb201", C=4, N=1)


@pytest.fixture(scope="module")
def device(space):
    archs, y = path_cells(space, 500, seed=3)
    return archs[:200], y[:200], archs[200:], y[200:]


@pytest.fixture(scope="module")
def auto(space, device):
    train, y, _, _ = device
    return create_predictor("auto", space=space).fit(train, y)


def test_auto_composes_the_best_model_with_a_covering_lut(space, device, auto):
    train, y, test, y_test = device
    cv = auto.cv_
    best = max((k for k in ("lut", "kernel", "arch") if "score" in cv[k]), key=lambda k: cv[k]["score"])
    assert best in ("kernel", "arch") and cv[best]["space_coverage"] < 1.0 and "fill_zeros" in cv[best]["space_unseen"]
    assert cv["lut"]["space_coverage"] == 1.0 and cv[best]["score"] > cv["lut"]["score"]
    assert auto.chosen_ == f"{best}+lut" and cv[auto.chosen_]["composed_of"] == [best, "lut"]
    assert cv[auto.chosen_]["space_coverage"] == 1.0

    # provenance: covered archs from the best model, the path-less arch from the lut (wider std)
    degenerate = space.make(DEGENERATE)
    how = auto.provenance(test[:5] + [degenerate])
    assert how[:5] == [None] * 5 and how[5] == "lut(unseen op fill_zeros)"
    mean, std = auto.predict(test[:5] + [degenerate])
    own_mean, _ = auto.best_.primary_.predict(test[:5])
    lut_mean, lut_std = auto.best_.fallback_.predict([degenerate])
    assert np.allclose(mean[:5], own_mean) and mean[5] == pytest.approx(lut_mean[0])
    assert std[5] >= max(2 * lut_std[0], 0.1 * mean[5]) - 1e-12

    # within+-10% on held-out cells: at least the best single kind's
    singles = {k: within(y_test, create_predictor(k, space=space).fit(train, y).predict(test)[0], 0.10)
               for k in ("lut", "kernel", "arch")}
    got = within(y_test, auto.predict(test)[0], 0.10)
    assert got >= max(singles.values()) - 1e-12, (got, singles)
    assert got > singles["lut"] + 0.2  # what the coverage-first rule picked


def test_the_composite_artifact_lists_both_models_and_loads(space, auto, tmp_path):
    auto.set_card(device="dev")
    art = auto.save(tmp_path / "model")
    card = json.loads((art / "card.json").read_text())
    best = auto.chosen_.split("+")[0]
    assert card["kind"] == "fallback" and card["primary"] == best and card["fallback"] == "lut"
    share = card["answered_share"]
    assert 0.9 < share[best] < 1.0 and share["lut"] == pytest.approx(1.0 - share[best]) and share["none"] == 0.0
    assert set(card["files"]) >= {"primary/card.json", "fallback/card.json"}
    q = LatencyPredictor.load(art)
    archs = [space.make(DEGENERATE), space.make((3, 2, 4, 1, 2, 3))]
    assert np.allclose(q.predict(archs)[0], auto.predict(archs)[0])
    assert q.provenance(archs) == ["lut(unseen op fill_zeros)", None]
    # the fallback lut's files are hashed like every other file: a changed one is refused
    victim = next(f for f in sorted((art / "fallback").iterdir()) if f.name != "card.json")
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.raises(ArtifactError):
        LatencyPredictor.load(art)


def test_best_model_that_covers_the_space_is_picked_alone(space):
    rng = np.random.default_rng(5)
    archs = space.sample_distinct(200, rng)  # path-less cells included: every model saw fill_zeros
    p = create_predictor("auto", space=space, candidates=("lut", "kernel")).fit(archs, planted(archs, rng))
    assert p.chosen_ == "kernel" and not any("composed_of" in m for m in p.cv_.values())


def test_an_arch_no_model_covers_still_raises(space):
    archs, y = path_cells(space, 200, seed=4)
    keep = [i for i, a in enumerate(archs) if a.genes[1] != 3]  # e1:nor_conv_3x3 never measured
    p = create_predictor("fallback", space=space, primary="kernel", fallback="lut").fit(
        [archs[i] for i in keep], y[keep])
    with pytest.raises(UnknownOpError):  # no path and an unseen token: neither model answers, never 0 ms
        p.predict([space.make((0, 3, 0, 0, 0, 0))])


@pytest.mark.journey
def test_journey_import_fit_predict_names_both_models(space, tmp_path):
    big = create_space("nb201")
    archs, y = path_cells(big, 200, seed=3)
    lat = tmp_path / "lat.csv"
    with open(lat, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "latency_ms"])
        w.writerows([big.to_string(a), f"{v:.5f}"] for a, v in zip(archs, y))
    run_hwnas(["import", "latency", lat, "--device", "dev", "--space", "nb201"], cwd=tmp_path).ok()
    fit = run_hwnas(["fit-predictor", "--device", "dev", "--space", "nb201"], cwd=tmp_path).ok()
    assert "auto picked kernel+lut" in fit.out or "auto picked arch+lut" in fit.out, fit.out
    listing = tmp_path / "archs.txt"
    covered = big.to_string(big.make((3, 2, 4, 1, 2, 3)))
    listing.write_text(f"{covered}\n{big.to_string(big.make(DEGENERATE))}\n")
    run_hwnas(["predict", "--device", "dev", "--archs", listing, "--out", "p.csv"], cwd=tmp_path).ok()
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    primary = "kernel" if "kernel+lut" in fit.out else "arch"
    assert rows[0]["provenance"].startswith(f"predicted:{primary}:nb201-{primary}+lut ")
    assert rows[1]["provenance"].startswith(f"predicted:lut(unseen op fill_zeros):nb201-{primary}+lut ")
    assert float(rows[0]["latency_ms"]) > 0 and float(rows[1]["latency_ms"]) > 0
