"""Issue 13 part 1: a new device from few measurements -- coverage-aware `auto`, the transfer fallback for
unseen ops (labelled in the provenance, wider std), and proposals that cover every op."""

import csv
import zlib

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.predictors import LatencyPredictor, UnknownOpError, create_predictor
from hwnas.predictors.active import _cover_units, propose_next
from hwnas.predictors.fallback import space_coverage
from hwnas.predictors.features import cell_kernels, featurizer_for
from hwnas.spaces import create_space
from hwnas.store import Measurement, MeasurementStore

COST = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}
SKIP = 1  # nb201 op index of skip_connect


def planted(archs, scale=1.0, rng=None):
    y = np.array([2.0 + sum(COST[t] * m for t, m in cell_kernels(a.genes, "pruned")) for a in archs]) * scale
    return y * (1 + rng.normal(0, 0.02, len(y))) if rng is not None else y


@pytest.fixture(scope="module")
def space():
    return create_space("nb201", C=4, N=1)


@pytest.fixture(scope="module")
def sources(space):
    rng = np.random.default_rng(7)
    archs = space.sample_distinct(260, rng)
    return {"other": create_predictor("kernel", space=space, n_boot=0).fit(archs, planted(archs, 3.0, rng))
            .set_card(device="other")}


def no_e3_skip(space, n, seed=0):
    """n archs none of which runs skip_connect on edge 3 (so e3:skip_connect is never seen)."""
    rng = np.random.default_rng(seed)
    return [a for a in space.sample_distinct(4 * n, rng) if a.genes[3] != SKIP][:n]


def test_auto_prefers_a_model_that_covers_the_space(space):
    archs = no_e3_skip(space, 40)
    y = planted(archs, rng=np.random.default_rng(1))
    p = create_predictor("auto", space=space, candidates=("lut", "kernel")).fit(archs, y)
    lut, kernel = p.cv_["lut"], p.cv_["kernel"]
    assert lut["space_coverage"] < 1.0 and "e3:skip_connect" in lut["space_unseen"]
    assert p.cv_[p.chosen_]["space_coverage"] == max(lut["space_coverage"], kernel["space_coverage"])
    if kernel["space_coverage"] == 1.0:
        assert p.chosen_ == "kernel"  # whatever the folds say: the lut cannot answer e3:skip_connect
    assert "auto_rule" in p.best_.card and p.best_.card["auto_cv"]["lut"]["space_coverage"] < 1.0


def test_unseen_ops_fall_back_to_transfer_labelled_with_wider_std(space, sources, tmp_path, capsys):
    archs = no_e3_skip(space, 30)
    y = planted(archs, rng=np.random.default_rng(2))
    lut = create_predictor("lut", space=space).fit(archs, y)
    skip = space.make((3, 2, 4, SKIP, 2, 3))
    with pytest.raises(UnknownOpError, match="e3:skip_connect"):  # never a silent 0 ms
        lut.predict([skip])
    assert lut.unseen_ops([skip, archs[0]]) == ["e3:skip_connect", None]

    p = create_predictor("auto", space=space, candidates=("lut",), sources=sources).fit(archs, y)
    assert p.chosen_ == "lut+transfer" and p.cv_["lut+transfer"]["space_coverage"] == 1.0
    assert p.cv_["lut+transfer"]["primary_unseen"][0] == "e3:skip_connect"
    seen = space.make((3, 2, 4, 2, 2, 3))
    mean, std = p.predict([skip, seen])
    assert np.all(mean > 0)
    assert p.provenance([skip, seen]) == ["transfer(unseen op e3:skip_connect)", None]
    t_mean, t_std = p.best_.fallback_.predict([skip])
    assert mean[0] == pytest.approx(t_mean[0]) and std[0] >= 2 * t_std[0] - 1e-12 and std[0] >= 0.1 * mean[0] - 1e-12
    assert space_coverage(p.best_)["coverage"] == 1.0

    art = tmp_path / "model"
    p.set_card(device="dev")
    p.save(art)
    q = LatencyPredictor.load(art)
    assert q.kind == "fallback" and np.allclose(q.predict([skip, seen])[0], mean)
    listing = tmp_path / "archs.txt"
    listing.write_text(f"{space.to_string(skip)}\n{space.to_string(seen)}\n")
    assert main(["predict", "--device", "dev", "--model", str(art), "--archs", str(listing),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert "1 from the transfer fallback for ops the lut model never saw" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert rows[0]["provenance"].startswith("predicted:transfer(unseen op e3:skip_connect):")
    assert rows[1]["provenance"].startswith("predicted:lut:")  # the row its primary model answered


def test_propose_with_priors_covers_every_op_and_kernel(space, sources):
    props = propose_next(space, [], 10, np.random.default_rng(0), prior=sources, pool_size=800)
    assert len({p.arch.arch_id for p in props}) == 10
    f = featurizer_for(space)
    units = _cover_units(f, [p.arch for p in props])
    # every token and kernel type the pool's measurable archs have (a constant is never proposed: issue 22)
    pool_units = _cover_units(f, [a for a in space.sample_distinct(800, np.random.default_rng(0)) if space.has_path(a)])
    assert units.any(0)[pool_units.any(0)].all()
    assert props[0].reason == "coverage" and props[-1].reason == "information"  # D-optimal after covering


def other_device_store(space, archs, rng, path):
    """A store holding device ``other``'s imported (planted) latencies of ``archs``."""
    st = MeasurementStore(path)
    st.add_many([Measurement(space="nb201", arch_id=a.arch_id, arch=space.to_string(a), device="other",
                             runtime="onnxruntime", runtime_version="1.0", settings={"space": space.config()},
                             source="imported", latency_ms=float(v)) for a, v in zip(archs, planted(archs, 3.0, rng))])
    return st


def test_cli_propose_for_a_new_device_uses_the_other_devices(space, tmp_path, capsys):
    rng = np.random.default_rng(0)
    archs = space.sample_distinct(60, rng)
    other_device_store(space, archs, rng, tmp_path / "m.db")
    out = tmp_path / "next.csv"
    assert main(["propose", "--device", "new", "--k", "10", "--out", str(out), "--store", str(tmp_path / "m.db"),
                 "--space-opt", "C=4", "--space-opt", "N=1", "--pool", "500"]) == 0
    msg = capsys.readouterr().out
    assert "new device: covering every op and kernel" in msg and "(other)" in msg
    assert len(list(csv.DictReader(open(out)))) == 10


def shared_quirk(archs):
    """A per-arch effect every device of one benchmark shares and no kernel model can express (a seeded hash
    of the arch id): what measured source columns carry and predicted ones lose."""
    return np.array([np.random.default_rng(zlib.crc32(str(a.arch_id).encode())).normal(0, 0.25) for a in archs])


def test_transfer_with_stored_source_latencies_beats_the_predictor_prior(space, tmp_path):
    from hwnas.predictors.metrics import spearman_rho
    from hwnas.predictors.transfer import attach_measurements

    rng = np.random.default_rng(3)
    archs = space.sample_distinct(400, rng)
    srcs_pred, srcs_both = {}, {}
    for name, scale in (("a", 1.0), ("b", 2.5)):
        y = planted(archs, scale, rng) * np.exp(shared_quirk(archs))
        p = create_predictor("kernel", space=space, n_boot=0).fit(archs, y).set_card(device=name)
        srcs_pred[name] = p
        q = create_predictor("kernel", space=space, n_boot=0).fit(archs, y).set_card(device=name)
        srcs_both[name] = attach_measurements(q, archs, y)
    target = planted(archs, 1.7, rng) * np.exp(shared_quirk(archs))
    tr, te = np.arange(10), np.arange(10, len(archs))
    a_tr, a_te = [archs[i] for i in tr], [archs[i] for i in te]
    rho = {}
    for how, srcs in (("predicted", srcs_pred), ("measured", srcs_both)):
        t = create_predictor("transfer", space=space, sources=srcs, n_boot=4).fit(a_tr, target[tr])
        rho[how] = spearman_rho(target[te], t.predict(a_te)[0])
    assert rho["measured"] > 0.95 > rho["predicted"] + 0.05, rho

    # the card says which features were used; the artifact keeps the measured tables
    t.set_card(device="new")
    assert t.card["sources"]["a"]["measured_cells"] == 400 and "measured log latency" in t.card["method"]
    t.save(tmp_path / "tr")
    back = LatencyPredictor.load(tmp_path / "tr", space=space)
    np.testing.assert_allclose(back.predict(a_te[:20])[0], t.predict(a_te[:20])[0])
    assert back.columns_ == t.columns_ and len(back.sources_["b"].measured_) == 400


def test_source_predictors_from_the_store_carry_their_measurements(space, tmp_path):
    from hwnas.predictors.from_store import source_predictors

    rng = np.random.default_rng(0)
    archs = space.sample_distinct(40, rng)
    st = other_device_store(space, archs, rng, tmp_path / "m.db")
    srcs = source_predictors(st, "new", space)
    assert set(srcs) == {"other"} and len(srcs["other"].measured_) == 40
    assert srcs["other"].measured_[archs[0].arch_id] > 0


def test_a_refitted_source_serves_its_new_predictions_to_transfer(space):
    """The transfer model remembers its sources' predictions per arch id; a source refitted on other data (new
    measurements, an op it never saw before) must be asked again, not answered from the old fit."""
    from hwnas.predictors.transfer import source_log_predictions

    rng = np.random.default_rng(3)
    seen = no_e3_skip(space, 40, seed=3)
    probe = seen[:5] + [a for a in space.sample_distinct(200, rng) if a.genes[3] == SKIP][:5]
    src = create_predictor("lut", space=space).fit(seen, planted(seen))
    first = source_log_predictions({"s": src}, probe)[:, 0]
    assert np.isfinite(first[:5]).all() and np.isnan(first[5:]).all()  # e3:skip_connect unseen: left out
    everything = seen + probe[5:] + space.sample_distinct(60, rng)
    src.fit(everything, planted(everything, 10.0))
    again = source_log_predictions({"s": src}, probe)[:, 0]
    np.testing.assert_allclose(again, np.log(src.predict(probe)[0]))
    assert np.all(again[:5] > first[:5] + 2.0)  # ten times slower now: log 10 = 2.3
