"""Issue 24, gap 3: few-shot transfer must notice when the other devices do not explain the new device.

Planted devices: the sources' latency is dominated by convolutions; the "unlike" target is launch-bound (every
kernel costs about the same, skips and pools more than convs), a hardware family none of the sources belongs
to. Main's transfer trusted the sources and ranked the target at Spearman 0.60; the prior check falls back to
the target-only graph-cost model (0.89), says so in the card and labels its rows. A sibling target keeps the
transfer model."""

import csv
import json

import numpy as np
import pytest

from hwnas.predictors import LatencyPredictor, create_predictor
from hwnas.predictors.active import propose_next
from hwnas.predictors.features import cell_kernels, featurizer_for
from hwnas.predictors.metrics import spearman_rho
from hwnas.predictors.transfer import attach_measurements
from hwnas.spaces import create_space
from journeys import run_hwnas

CONV = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}
CONV2 = {**CONV, "conv1x1_bn": 0.6, "avgpool3x3": 0.2, "conv3x3_bn": 1.5}
SIBLING = {**CONV, "conv3x3_bn": 1.3}
LAUNCH = {"relu": 0.1, "conv1x1_bn": 0.3, "conv3x3_bn": 0.35, "avgpool3x3": 0.6, "identity": 0.6, "add": 0.4,
          "fill_zeros": 0.3, "zero": 0.3}


def lat(archs, cost, scale=1.0, rng=None):
    y = np.array([2.0 + sum(cost[t] * m for t, m in cell_kernels(a.genes, "pruned")) for a in archs]) * scale
    return y * (1 + rng.normal(0, 0.02, len(y))) if rng is not None else y


def path_cells(space, n, seed):
    return [a for a in space.sample_distinct(2 * n, np.random.default_rng(seed)) if space.has_path(a)][:n]


@pytest.fixture(scope="module")
def space():
    return create_space("nb201", C=4, N=1)


@pytest.fixture(scope="module")
def sources(space):
    rng = np.random.default_rng(7)
    archs = path_cells(space, 200, 7)
    out = {}
    for name, cost, scale in (("a", CONV, 3.0), ("b", CONV2, 1.0)):
        y = lat(archs, cost, scale, rng)
        out[name] = attach_measurements(create_predictor("kernel", space=space, n_boot=0).fit(archs, y)
                                        .set_card(device=name), archs, y)
    return out


def ten_cells(space, cost):
    """Ten measured cells of the target (random, with an input-output path), 2% noise."""
    cells = path_cells(space, 10, 9)
    return cells, lat(cells, cost, 1.0, np.random.default_rng(1))


def test_a_device_unlike_every_source_falls_back_and_says_so(space, sources, tmp_path):
    cells, y = ten_cells(space, LAUNCH)
    test = path_cells(space, 300, 3)
    truth = lat(test, LAUNCH)
    p = create_predictor("auto", space=space, sources=sources).fit(cells, y)  # what fit-predictor does at 10 rows
    assert p.chosen_ == "transfer"
    rho = spearman_rho(truth, p.predict(test)[0])
    assert rho >= 0.85, rho  # main trusted the conv-bound sources: 0.60
    from hwnas.predictors.few_sample import COST_NAMES  # (imported here: on main the line above fails first)

    trusting = create_predictor("transfer", space=space, sources=sources, check_prior=False).fit(cells, y)
    assert spearman_rho(truth, trusting.predict(test)[0]) < 0.7  # the failure the check exists for
    card = p.best_.card
    chk = card["prior_check"]
    assert chk["use"] == "target-only" and chk["cells"] == 10 and "no mix of the other devices" in chk["reason"]
    assert chk["target_only"]["loo_log_rmse"] < chk["transfer"]["loo_log_rmse"]
    assert card["method"].startswith("target-only") and set(card["target_only_model"]["costs"]) == set(COST_NAMES)
    assert p.provenance(test[:2]) == ["target-only(other devices do not explain its cells)"] * 2
    mean, std = p.predict(test[:5])  # the std is the target-only model's leave-one-out log error
    assert np.allclose(std / mean, max(chk["target_only"]["loo_log_rmse"], p.best_.cost_.noise_))
    # the artifact keeps the decision and predicts the same after loading
    p.best_.save(tmp_path / "m")
    loaded = LatencyPredictor.load(tmp_path / "m")
    assert loaded.card["prior_check"] == json.loads(json.dumps(chk))
    assert np.allclose(loaded.predict(test[:5])[0], mean)


def test_a_sibling_device_keeps_the_transfer_model(space, sources):
    cells, y = ten_cells(space, SIBLING)
    p = create_predictor("transfer", space=space, sources=sources).fit(cells, y)
    assert p.prior_check_["use"] == "transfer" and not p.target_only_
    assert p.provenance(cells[:1]) == [None]
    test = path_cells(space, 300, 3)
    assert spearman_rho(lat(test, SIBLING), p.predict(test)[0]) >= 0.95


def test_proposals_with_a_prior_span_the_graph_costs(space, sources):
    """The ten proposed cells also pin down the target-only model: they spread over its main costs (work and
    kernel launches) more than picks made on the source features alone."""
    from hwnas.predictors.active import PICK_COSTS
    from hwnas.predictors.few_sample import COST_NAMES, graph_cost_features

    rng = lambda: np.random.default_rng(0)  # noqa: E731
    f = featurizer_for(space)
    pool = path_cells(space, 500, 11)
    both = [p.arch for p in propose_next(space, [], 10, rng(), prior=sources, candidates=pool)]
    only = [p.arch for p in propose_next(space, [], 10, rng(), prior=sources, candidates=pool, cost_features=False)]
    cols = [COST_NAMES.index(c) for c in PICK_COSTS]
    C = graph_cost_features(f, pool)[:, cols]
    z = lambda archs: (graph_cost_features(f, archs)[:, cols] - C.mean(0)) / C.std(0)  # noqa: E731
    logdet = lambda Z: np.linalg.slogdet(np.cov(Z.T))[1]  # noqa: E731
    assert logdet(z(both)) > logdet(z(only)) + 0.1


def _write_table(path, space, archs, y):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "latency_ms"])
        w.writerows([space.to_string(a), f"{v:.5f}"] for a, v in zip(archs, y))
    return path


@pytest.mark.journey
def test_journey_few_shot_on_an_unlike_device_says_it_fell_back(tmp_path):
    """As docs/predictors.md types it: import two source devices and ten cells of a new one, fit-predictor
    (auto: transfer at ten rows), predict; the card, the output and every row say the sources were not used."""
    big = create_space("nb201")
    rng = np.random.default_rng(5)
    src = path_cells(big, 80, 5)
    for name, cost, scale in (("phone", CONV, 3.0), ("server", CONV2, 1.0)):
        table = _write_table(tmp_path / f"{name}.csv", big, src, lat(src, cost, scale, rng))
        run_hwnas(["import", "latency", table, "--device", name, "--space", "nb201"], cwd=tmp_path).ok()
    ten = path_cells(big, 10, 9)
    table = _write_table(tmp_path / "npu.csv", big, ten, lat(ten, LAUNCH, 1.0, rng))
    run_hwnas(["import", "latency", table, "--device", "npu", "--space", "nb201"], cwd=tmp_path).ok()
    fit = run_hwnas(["fit-predictor", "--device", "npu", "--space", "nb201"], cwd=tmp_path).ok()
    assert "prior: 2 other devices" in fit.out and "auto picked transfer" in fit.out, fit.text
    assert "prior check: target-only: no mix of the other devices explains the 10 target cells" in fit.out, fit.out
    assert "warning: nb201-transfer does not use the other devices" in fit.err, fit.err
    card = json.loads((tmp_path / "latency_models" / "npu" / "nb201-transfer" / "card.json").read_text())
    assert card["prior_check"]["use"] == "target-only" and card["method"].startswith("target-only")
    listing = tmp_path / "archs.txt"
    listing.write_text("\n".join(big.to_string(a) for a in path_cells(big, 3, 21)) + "\n")
    pred = run_hwnas(["predict", "--device", "npu", "--archs", listing, "--out", "p.csv"], cwd=tmp_path).ok()
    assert "does not use the other devices" in pred.err, pred.err
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 3 and all(r["provenance"].startswith(
        "predicted:target-only(other devices do not explain its cells):nb201-transfer ") for r in rows), rows
    assert all(float(r["latency_ms"]) > 0 and float(r["latency_std_ms"]) > 0 for r in rows)
