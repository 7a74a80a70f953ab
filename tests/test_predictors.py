"""Latency predictors on a tiny nb201 (C=4, N=1) with synthetic but structured latencies: a planted
per-kernel cost model (the pruned executed graph) plus 2% multiplicative noise."""

import json

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.predictors import (PREDICTORS, ArtifactError, LatencyPredictor, PredictorError, UnknownOpError,
                              create_predictor, load_predictor)
from hwnas.predictors.active import propose_next
from hwnas.predictors.features import cell_kernels, featurizer_for
from hwnas.spaces.nb201 import NB201Space
from hwnas.predictors.metrics import kendall_tau, mape, rmse, score, spearman_rho, within
from hwnas.predictors.testing import check_predictor
from hwnas.spaces import create_space

COST = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}


def planted(archs, graph="pruned", scale=1.0, rng=None, noise=0.02):
    y = np.array([2.0 + sum(COST[t] * m for t, m in cell_kernels(a.genes, graph)) for a in archs]) * scale
    if rng is not None:
        y = y * (1 + rng.normal(0, noise, len(y)))
    return y


@pytest.fixture(scope="module")
def space():
    return create_space("nb201", C=4, N=1)


@pytest.fixture(scope="module")
def data(space):
    rng = np.random.default_rng(1)
    archs = space.sample_distinct(260, rng)
    y = planted(archs, rng=rng)
    return archs[:160], y[:160], archs[160:], y[160:]


# -- metrics ------------------------------------------------------------------------------------------------
def test_metrics_on_known_values():
    t = np.array([10.0, 20.0, 30.0, 40.0])
    p = np.array([10.4, 21.5, 36.0, 40.0])  # errors 4%, 7.5%, 20%, 0%
    assert within(t, p, 0.05) == 0.5
    assert within(t, p, 0.10) == 0.75
    assert mape(t, p) == pytest.approx((4 + 7.5 + 20 + 0) / 4)
    assert rmse(t, p) == pytest.approx(np.sqrt((0.16 + 2.25 + 36) / 4))
    assert kendall_tau(t, p) == pytest.approx(1.0) and spearman_rho(t, p) == pytest.approx(1.0)
    assert kendall_tau(t, p[::-1]) == pytest.approx(-1.0)
    assert set(score(t, p)) == {"within_5pct", "within_10pct", "mape_pct", "rmse_ms", "kendall_tau", "spearman_rho"}
    with pytest.raises(HwnasError):
        within([], [], 0.1)
    with pytest.raises(HwnasError):
        mape([1.0, 0.0], [1.0, 1.0])


# -- features -------------------------------------------------------------------------------------------------
def test_live_edges_and_kernel_detection():
    # node1 <- conv3x3, node2 <- none/none, node3 <- skip(0), none, avgpool(2)  => edge 5 reads a dead node 2
    g = (3, 0, 0, 1, 0, 4)
    assert NB201Space.live_edges(g) == (False, False, False, True, False, False)
    assert dict(cell_kernels(g, "pruned")) == {"identity": 1}
    full = dict(cell_kernels(g, "full"))
    assert full["conv3x3_bn"] == 1 and full["zero"] == 3 and full["avgpool3x3"] == 1 and full["relu"] == 1
    assert full["add"] == 1 + 2  # node 2: 2 inputs, node 3: 3 inputs
    # two convs reading node 0 share one ReLU
    assert dict(cell_kernels((2, 3, 0, 0, 0, 1), "pruned"))["relu"] == 1
    # a disconnected cell outputs zeros
    assert dict(cell_kernels((0, 0, 0, 0, 0, 0), "pruned")) == {"fill_zeros": 1}


def test_featurizer_schema_and_static_costs(space):
    f = featurizer_for(space)
    a = space.from_string("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    X = f.arch_features([a])
    names = f.arch_feature_names()
    assert X.shape == (1, len(names)) and f.schema()["n_arch_features"] == len(names)
    costs = space.static_costs(a)  # the table must reproduce the space's own count exactly
    assert X[0, names.index("static:mmacs")] == pytest.approx(costs.macs / 1e6)
    assert X[0, names.index("static:mparams")] == pytest.approx(costs.params / 1e6)
    assert f.schema() != featurizer_for(create_space("nb201", C=8, N=1)).schema()


# -- conformance of every kind ---------------------------------------------------------------------------
def _make(kind, space, sources=None):
    if kind == "arch":
        return lambda: create_predictor("arch", space=space, n_models=3, n_estimators=120)
    if kind == "mlp":
        return lambda: create_predictor("arch", space=space, model="mlp", base="none", n_models=2, hidden=(32,))
    if kind == "transfer":
        return lambda: create_predictor("transfer", space=space, sources=sources)
    if kind == "auto":
        return lambda: create_predictor("auto", space=space, candidates=("lut", "kernel"))
    return lambda: create_predictor(kind, space=space)


@pytest.fixture(scope="module")
def sources(space, data):
    """A 'source device' 3x slower with its own noise, fully measured (for transfer)."""
    train, _, test, _ = data
    rng = np.random.default_rng(7)
    archs = train + test
    y = planted(archs, scale=3.0, rng=rng)
    return {"other": create_predictor("kernel", space=space).fit(archs, y).set_card(device="other")}


@pytest.mark.parametrize("kind,min_w", [("lut", 0.4), ("kernel", 0.9), ("arch", 0.85), ("mlp", 0.4),
                                        ("transfer", 0.85), ("auto", 0.9)])
def test_check_predictor_every_kind(kind, min_w, space, data, sources):
    train, y, test, yt = data
    n = 20 if kind == "transfer" else len(train)  # transfer: few target samples
    p = check_predictor(_make(kind, space, sources), train[:n], y[:n], test, yt, min_within_10pct=min_w)
    if kind == "auto":
        assert p.chosen_ == "kernel" and set(p.cv_) == {"lut", "kernel"}
        assert p.card["selected_by"] == "auto" and p.card["kind"] == "kernel"


def test_registry_covers_every_kind():
    assert set(PREDICTORS) == {"lut", "kernel", "arch", "transfer", "auto", "fallback"}
    with pytest.raises(HwnasError, match="unknown predictor kind 'gnn'"):
        create_predictor("gnn")


def test_kernel_auto_picks_the_planted_graph(space, data):
    train, _, test, _ = data
    rng = np.random.default_rng(3)
    for graph in ("pruned", "full"):
        y = planted(train, graph=graph, rng=rng)
        p = create_predictor("kernel", space=space).fit(train, y)
        assert p.graph_ == graph
        assert within(planted(test, graph=graph), p.predict(test)[0], 0.05) > 0.9


def test_transfer_beats_plain_fit_with_few_samples(space, data, sources):
    train, y, test, yt = data
    few = slice(0, 12)
    t = create_predictor("transfer", space=space, sources=sources).fit(train[few], y[few])
    k = create_predictor("kernel", space=space).fit(train[few], y[few])
    ok = []  # the test archs the 12-sample kernel model can predict (others use kernels it never saw)
    for i, a in enumerate(test):
        try:
            k.predict([a])
            ok.append(i)
        except UnknownOpError:
            pass
    assert len(ok) > 20
    sub = [test[i] for i in ok]
    assert mape(yt[ok], t.predict(sub)[0]) < 0.7 * mape(yt[ok], k.predict(sub)[0])
    assert within(yt, t.predict(test)[0], 0.10) > 0.85
    assert t.card["sources"]["other"]["training_count"] == 260


# -- unseen ops never count as 0 ms ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lut", "kernel", "arch"])
def test_unseen_op_raises(kind, space, data):
    train, y, _, _ = data
    no_pool = [(a, v) for a, v in zip(train, y) if 4 not in a.genes]
    archs, ys = [a for a, _ in no_pool], np.array([v for _, v in no_pool])
    p = _make(kind, space)().fit(archs, ys)
    with_pool = space.from_string("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|")
    with pytest.raises(UnknownOpError, match="never occurred in the training data"):
        p.predict([with_pool])


# -- artifacts -----------------------------------------------------------------------------------------------
def test_artifact_mismatches_fail_clearly(space, data, tmp_path):
    train, y, test, _ = data
    p = create_predictor("kernel", space=space).fit(train, y).set_card(device="dev", runtime="onnxruntime")
    d = p.save(tmp_path / "latency_models" / "dev" / "nb201-kernel")
    card = json.loads((d / "card.json").read_text())
    assert card["device"] == "dev" and card["graph"] in ("pruned", "full") and card["files"]
    # loaded through the contract
    q = load_predictor("dev", space="nb201", root=tmp_path / "latency_models")
    assert np.allclose(q.predict(test)[0], p.predict(test)[0]) and q.card["name"] == "nb201-kernel"
    with pytest.raises(ArtifactError, match="predicts space 'nb201', not 'mobilenet'"):
        LatencyPredictor.load(d, space="mobilenet")
    with pytest.raises(ArtifactError, match="trained on nb201 with settings"):
        LatencyPredictor.load(d, space=create_space("nb201", C=8, N=1))
    with pytest.raises(ArtifactError, match="no latency predictor for device 'nope'"):
        load_predictor("nope", root=tmp_path / "latency_models")
    # a feature schema this hwnas does not compute
    bad = dict(card, feature_schema=dict(card["feature_schema"], arch_features_hash="0" * 16))
    (d / "card.json").write_text(json.dumps(bad))
    with pytest.raises(ArtifactError, match="feature schema mismatch"):
        LatencyPredictor.load(d)
    # a tampered model file
    (d / "card.json").write_text(json.dumps(card))
    (d / "model.npz").write_bytes((d / "model.npz").read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="does not match the SHA-256"):
        LatencyPredictor.load(d)
    with pytest.raises(ArtifactError, match="card.json is missing"):
        LatencyPredictor.load(tmp_path)


def test_bad_training_data(space, data):
    train, y, _, _ = data
    with pytest.raises(PredictorError, match="no measurements"):
        create_predictor("lut", space=space).fit([], [])
    with pytest.raises(PredictorError, match="positive"):
        create_predictor("lut", space=space).fit(train[:5], [1, 2, -3, 4, 5])
    with pytest.raises(PredictorError, match="archs but"):
        create_predictor("lut", space=space).fit(train[:5], y[:4])
    with pytest.raises(PredictorError, match="not fitted"):
        create_predictor("kernel", space=space).predict(train[:1])


# -- active learning ----------------------------------------------------------------------------------------
def test_propose_next_covers_ops_then_follows_uncertainty(space, data):
    train, y, _, _ = data
    # cold start: nothing measured -> the first picks cover every (edge, op) token
    props = propose_next(space, [], 8, np.random.default_rng(0), pool_size=500)
    assert len({p.arch.arch_id for p in props}) == 8
    tokens = featurizer_for(space).tokens([p.arch for p in props]).sum(0)
    assert (tokens > 0).all() and props[0].reason == "coverage"
    again = propose_next(space, [], 8, np.random.default_rng(0), pool_size=500)
    assert [p.arch for p in again] == [p.arch for p in props]
    # with a fitted predictor: never proposes a measured arch; picks are the uncertain ones
    pred = create_predictor("kernel", space=space).fit(train, y)
    props = propose_next(space, train, 5, np.random.default_rng(1), predictor=pred, pool_size=400)
    ids = {a.arch_id for a in train}
    assert all(p.arch.arch_id not in ids for p in props)
    assert props[0].reason == "uncertainty" and props[0].std_ms is not None
    pool_rel = [p.std_ms / p.predicted_ms for p in props]
    mean, std = pred.predict([space.sample(np.random.default_rng(9)) for _ in range(200)])
    assert np.median(pool_rel) > np.median(std / mean)
    with pytest.raises(HwnasError):
        propose_next(space, [], 0, np.random.default_rng(0))


def test_other_spaces_get_lut_and_arch_but_no_kernel_view():
    space = create_space("mobilenet")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(90)]
    card = space.cardinalities()
    w = rng.uniform(0.1, 1.0, sum(card))
    tok = featurizer_for(space).tokens(archs)
    y = 5.0 + tok @ w
    p = create_predictor("lut", space=space).fit(archs[:70], y[:70])
    assert within(y[70:], p.predict(archs[70:])[0], 0.05) > 0.9
    a = create_predictor("arch", space=space, n_models=2, n_estimators=50).fit(archs[:70], y[:70])
    assert a.predict(archs[70:])[0].shape == (20,)
    with pytest.raises(HwnasError, match="kernel view is not implemented for space 'mobilenet'"):
        create_predictor("kernel", space=space).fit(archs[:70], y[:70])


@pytest.mark.parametrize("kind", ["lut", "kernel", "arch"])
def test_std_is_a_usable_uncertainty(kind, space, data):
    train, y, test, yt = data
    mean, std = _make(kind, space)().fit(train, y).predict(test)
    z = np.abs(mean - yt) / std
    assert 0.7 <= np.mean(z <= 2.0) and np.median(z) < 2.0  # errors mostly inside 2 std ...
    assert np.median(std / mean) < 0.2  # ... without std being uselessly wide


def test_feature_rows_are_computed_once_and_equal_fresh_ones():
    """NB201 feature rows are memoised per process and space setting: the memo gives the same rows as computing
    them (in any order, with repeats), and a space of other settings gets its own rows."""
    import numpy as np

    from hwnas.predictors import features
    from hwnas.spaces import create_space

    space = create_space("nb201", C=8, N=1, input_size=8)
    f = features.NB201Featurizer(space)
    archs = space.sample_distinct(12, np.random.default_rng(3))
    fresh = f._arch_features(archs)
    features._ROW_MEMO.clear()
    assert np.array_equal(f.arch_features(archs[:5]), fresh[:5])
    order = [7, 0, 7, 11, 3]
    assert np.array_equal(f.arch_features([archs[i] for i in order]), fresh[order])
    assert np.array_equal(f.kernels(archs, "pruned"), f._kernels(archs, "pruned", f.kernel_names("pruned")))
    other = features.NB201Featurizer(create_space("nb201"))
    same_genes = [create_space("nb201").make(list(a.genes)) for a in archs[:3]]
    assert not np.array_equal(other.arch_features(same_genes), fresh[:3])  # static costs differ with C, N
    assert f.arch_features([]).shape[0] == 0
