import sys

import numpy as np
import pytest

from hwnas.contracts import Objective
from hwnas.errors import HwnasError
from hwnas.evaluation import (
    EvaluatorSpec, TableSource, build_evaluator, create_executor,
    parse_constraint, parse_objective, read_log,
)
from hwnas.spaces import create_space
from hwnas.contracts import SearchResult

from search_fixtures import write_nb201_tables

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


@pytest.fixture
def space():
    return create_space("nb201")


def table_evaluator(space, tables, constraints=(), objectives=("error", "latency_ms@dev"), log=None):
    acc, lat = tables
    spec = EvaluatorSpec(objectives=list(objectives), constraints=list(constraints), accuracy=f"table:{acc}",
                         latency=[f"dev=table:{lat}"], energy=[f"dev=table:{lat}"])
    return build_evaluator(space, spec, log=log)


def test_parse_objectives_and_constraints():
    assert parse_objective("latency_ms@pixel2") == Objective("latency_ms", device="pixel2")
    assert parse_objective("macs") == Objective("macs")
    c = parse_constraint("latency_ms@pixel2 <= 15")
    assert (c.name, c.device, c.bound) == ("latency_ms", "pixel2", 15.0)
    with pytest.raises(HwnasError, match="unknown objective 'speed'; known: .*latency_ms"):
        parse_objective("speed")
    with pytest.raises(HwnasError, match="needs a device"):
        parse_objective("latency_ms")
    with pytest.raises(HwnasError, match="does not depend on a device"):
        parse_objective("params@pixel2")
    with pytest.raises(HwnasError, match="expected OBJECTIVE<=NUMBER"):
        parse_constraint("latency_ms@pixel2 < fast")


def test_table_values_with_provenance_and_cache_by_arch_id(space, tables):
    ev = table_evaluator(space, tables)
    a, b = space.from_string(CELL), space.from_index(7)
    F = ev.evaluate([a, b, a])
    assert F.shape == (3, 2) and np.array_equal(F[0], F[2])
    assert ev.n_unique == 2 and ev.n_computed == 2  # duplicates within a batch are not counted
    ev.evaluate([b, a])
    assert ev.n_unique == 2 and ev.n_computed == 2  # nor across calls
    e = ev.evaluations()[0]
    assert e.sources == ("imported:table:accuracy.csv", "imported:table:latency.csv")
    acc = float([ln for ln in tables[0].read_text().splitlines() if ln.startswith(CELL)][0].split(",")[1])
    assert e.values[0] == pytest.approx(100 - acc)
    assert e.extras["arch"] == CELL


def test_energy_and_static_objectives(space, tables):
    small = create_space("nb201", C=4, N=1)
    ev = table_evaluator(small, tables, objectives=("energy_mj@dev", "params", "macs", "peak_memory_bytes"))
    a = small.from_string(CELL)
    F = ev.evaluate([a])[0]
    costs = small.static_costs(a)
    assert list(F[1:]) == [costs.params, costs.macs, costs.peak_activation_bytes]
    assert ev.evaluations()[0].sources[1:] == ("counted:graph",) * 3


def test_table_missing_an_arch_is_unknown_and_infeasible(space, tmp_path):
    tables = write_nb201_tables(tmp_path, drop=7)
    ev = table_evaluator(space, tables)
    F = ev.evaluate([space.from_index(3), space.from_index(7)])
    assert np.isfinite(F[0]).all() and np.isnan(F[1]).all()  # the fixture drops it from both tables
    e = ev.evaluations()[1]
    assert e.sources == ("missing:table accuracy.csv", "missing:table latency.csv") and e.violation > 0 and ev.n_unique == 2
    result = SearchResult("t", "nb201", ev.objectives, ev.evaluations())
    assert [x.arch for x in result.pareto()] == [space.from_index(3)]


def test_unreadable_tables_are_clear_errors(space, tmp_path):
    for bad, message in [(tmp_path / "nope.csv", "does not exist"), (tmp_path, "does not exist")]:
        with pytest.raises(HwnasError, match=message):
            TableSource(bad).values(space, [space.from_index(0)], "test_accuracy")
    (tmp_path / "noarch.csv").write_text("name,test_accuracy\nx,1\n")
    with pytest.raises(HwnasError, match="no 'arch' column"):
        TableSource(tmp_path / "noarch.csv").values(space, [space.from_index(0)], "test_accuracy")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    with pytest.raises(HwnasError, match="unreadable|no 'arch' column"):
        TableSource(tmp_path / "bin.csv").values(space, [space.from_index(0)], "test_accuracy")


def test_constraints_bound_objectives_and_extra_quantities(space, tables):
    ev = table_evaluator(space, tables, constraints=["latency_ms@dev<=5", "energy_mj@dev<=20"])
    assert ev.objectives[1].bound == 5 and [c.label for c in ev.constraints] == ["energy_mj@dev"]
    archs = [space.from_index(i) for i in range(0, 15625, 97)]
    ev.evaluate(archs)
    for e in ev.evaluations():
        lat, energy = e.values[1], e.extras["constraints"]["energy_mj@dev"]
        assert (e.violation == 0) == (lat <= 5 and energy <= 20)
    res = SearchResult("x", "nb201", ev.objectives, ev.evaluations())
    assert res.any_feasible and all(e.values[1] <= 5 for e in res.pareto())


def test_impossible_constraints_give_the_least_violating_set(space, tables):
    ev = table_evaluator(space, tables, constraints=["latency_ms@dev<=-1"])
    ev.evaluate([space.from_index(i) for i in range(50)])
    res = SearchResult("x", "nb201", ev.objectives, ev.evaluations())
    assert not res.any_feasible
    front = res.pareto()
    least = min(e.violation for e in ev.evaluations())
    assert front and all(e.violation == pytest.approx(least) for e in front)


def test_missing_sources_and_unknown_names_are_clear(space, tables):
    with pytest.raises(HwnasError, match="needs `accuracy`"):
        build_evaluator(space, EvaluatorSpec(objectives=["error"]))
    with pytest.raises(HwnasError, match="unknown accuracy source 'oracle'"):
        build_evaluator(space, EvaluatorSpec(objectives=["error"], accuracy="oracle"))
    with pytest.raises(HwnasError, match="unknown device cost source 'guess'"):
        build_evaluator(space, EvaluatorSpec(objectives=["latency_ms@x"], latency=["guess"]))
    with pytest.raises(HwnasError, match="no objective or constraint uses it"):
        build_evaluator(space, EvaluatorSpec(objectives=["macs"], latency=["pixel9=table:x.csv"]))
    with pytest.raises(HwnasError, match="unknown proxy 'magic'"):
        build_evaluator(space, EvaluatorSpec(objectives=["error"], accuracy="proxy:magic"))
    with pytest.raises(HwnasError, match="no cost source for latency_ms@b: add `latency` b=table:FILE"):
        build_evaluator(space, EvaluatorSpec(objectives=["latency_ms@a", "latency_ms@b"], latency=["a=measure"]))


def test_every_source_is_a_value_source_with_provenance(space, tables):
    from hwnas.evaluation import SOURCES, create_source

    acc, lat = tables
    archs = [space.from_index(i) for i in (3, 7)]
    assert set(SOURCES) == {"table", "proxy", "train", "predictor", "measure", "count", "supernet"}
    for spec, role, quantity, provenance in [(f"table:{acc}", "accuracy", "error", "imported:table:accuracy.csv"),
                                             (f"table:{lat}", "cost", "energy_mj", "imported:table:latency.csv")]:
        values, sources = create_source(spec, role, "dev").values(space, archs, quantity)
        assert values.shape == (2,) and sources == [provenance] * 2
    values, sources = SOURCES["count"]().values(space, archs, "params")
    assert list(values) == [space.static_costs(a).params for a in archs] and sources == ["counted:graph"] * 2
    cheap = {kind for kind, cls in SOURCES.items() if cls.cheap}  # costs no budget: strategies may look it up
    assert cheap == {"table", "predictor", "count"}
    with pytest.raises(HwnasError, match="unknown accuracy source 'measure'"):
        create_source("measure", "accuracy")


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(HwnasError, match=r"pip install 'hwnas\[ray\]'"):
        create_executor("ray")
    with pytest.raises(HwnasError, match="unknown executor 'dask'"):
        create_executor("dask")


def test_log_round_trip_and_preload_replays_without_recomputing(space, tables, tmp_path):
    log = tmp_path / "log.jsonl"
    ev = table_evaluator(space, tables, log=log)
    archs = [space.from_index(i) for i in (5, 9, 11, 5)]
    F = ev.evaluate(archs)
    with log.open("a") as fh:
        fh.write('{"space": "nb201", "genes": [1, 2')  # a torn last line (killed mid-write)
    logged = read_log(log)
    assert [e.arch for e in logged] == [space.from_index(i) for i in (5, 9, 11)]
    ev2 = table_evaluator(space, tables)
    ev2.preload(logged)
    assert ev2.n_unique == 0  # known results count once asked for
    assert np.array_equal(ev2.evaluate(archs), F) and ev2.n_computed == 0 and not ev2.replay_diverged
    ev2.evaluate([space.from_index(12)])
    assert ev2.n_computed == 1


def test_proxy_scores_real_data_and_renames_the_objective():
    small = create_space("nb201", C=4, N=1, input_size=8)
    ev = build_evaluator(small, EvaluatorSpec(objectives=["error", "params"], accuracy="proxy", batch_size=32))
    assert ev.objectives[0].name == "neg_naswot"  # a proxy score is not an accuracy
    good, empty = small.from_string(CELL), small.make([0] * 6)
    F = ev.evaluate([good, empty])
    assert np.isfinite(F[0, 0]) and F[0, 0] < F[1, 0]  # the all-'none' cell scores worst
    assert ev.evaluations()[0].sources[0] == "proxy:naswot(digits,32)"
    again = build_evaluator(small, EvaluatorSpec(objectives=["error"], accuracy="proxy", batch_size=32))
    assert again.evaluate([good])[0, 0] == F[0, 0]
    syn = build_evaluator(small, EvaluatorSpec(objectives=["error"], accuracy="proxy:synflow"))
    assert np.isfinite(syn.evaluate([good])[0, 0])


def test_train_source_really_trains_on_digits():
    small = create_space("nb201", C=4, N=1, input_size=8)
    ev = build_evaluator(small, EvaluatorSpec(objectives=["error"], accuracy="train", epochs=2))
    good, empty = small.from_string(CELL), small.make([0] * 6)
    F = ev.evaluate([good, empty])
    assert F[0, 0] < 30  # a cell with convolutions learns digits (chance error is ~90%)
    assert F[1, 0] > F[0, 0]  # the empty cell (classifier on the stem only) learns less
    assert ev.evaluations()[0].sources[0] == "trained:digits(val, 2 epochs, short recipe, seed 0)"


def test_train_source_checks_classes_and_datasets(tmp_path):
    mb = create_space("mobilenet", input_size=32)
    ev = build_evaluator(mb, EvaluatorSpec(objectives=["error"], accuracy="train", epochs=1))
    with pytest.raises(HwnasError, match="has 1000 classes but dataset digits has 10: add `space_opt` num_classes=10"):
        ev.evaluate([mb.sample(np.random.default_rng(0))])
    small = create_space("nb201", C=4, N=1, input_size=8)
    ev = build_evaluator(small, EvaluatorSpec(objectives=["error"], accuracy="train:cifar10"))
    with pytest.raises(HwnasError, match="needs `data_dir` DIR"):
        ev.evaluate([small.from_string(CELL)])
    ev = build_evaluator(small, EvaluatorSpec(objectives=["error"], accuracy="train:cifar10", data_dir=str(tmp_path)))
    with pytest.raises(HwnasError, match="no CIFAR-10 python-pickle files"):
        ev.evaluate([small.from_string(CELL)])


def test_cifar10_pickle_directory(tmp_path):
    import pickle

    from hwnas.accuracy.datasets import load_dataset

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [("data_batch_1", 40), ("test_batch", 20)]:
        with (folder / name).open("wb") as fh:
            pickle.dump({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, n))}, fh)
    data = load_dataset("cifar10", (3, 16, 16), root=str(tmp_path))
    assert data.x_train.shape == (40, 3, 16, 16) and data.x_test.shape == (20, 3, 16, 16)
    assert data.num_classes == 10 and abs(float(data.x_train.mean())) < 1e-3


def test_ray_executor_code_path_with_a_stand_in_ray(monkeypatch, space, tables):
    """Ray itself is not installed here: a stand-in module with Ray's API (init, remote, wait, get) checks that the
    executor submits every candidate and collects results in submission order."""
    import types

    calls = {"init": None, "submitted": 0}
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: calls["init"] is not None
    fake.init = lambda address=None, **kw: calls.__setitem__("init", address)

    class Ref:
        def __init__(self, value):
            self.value = value

    def remote(**opts):
        def wrap(fn):
            def submit(*args):
                calls["submitted"] += 1
                return Ref(fn(*args))
            return types.SimpleNamespace(remote=submit)
        return wrap

    fake.remote = remote
    fake.get = lambda ref: ref.value
    fake.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])
    monkeypatch.setitem(sys.modules, "ray", fake)
    import hwnas.ray_cluster

    checked = []  # the address is checked before Ray is asked to join it (no server at this stand-in's address)
    monkeypatch.setattr(hwnas.ray_cluster, "check_reachable", checked.append)
    small = create_space("nb201", C=4, N=1)
    acc, lat = tables
    spec = EvaluatorSpec(objectives=["error", "params"], accuracy=f"table:{acc}")
    ev = build_evaluator(small, spec, executor=create_executor("ray", "ray://head:10001"))
    archs = [small.from_index(i) for i in (1, 2, 3)]
    F = ev.evaluate(archs)
    assert calls == {"init": "ray://head:10001", "submitted": 3} and checked == ["ray://head:10001"]
    assert list(F[:, 1]) == [small.static_costs(a).params for a in archs]


def test_a_failed_measurement_is_unknown_and_infeasible_never_zero(monkeypatch, space):
    import types

    import hwnas.measure.campaign

    def fake_measure_archs(space_, archs, profile, store, on_error=None, **kw):
        out = []
        for i, a in enumerate(archs):
            if i == 1:
                on_error(a, "worker crashed")
                continue
            out.append(types.SimpleNamespace(arch_id=a.arch_id, latency_ms=2.0 + i, runtime="onnxruntime",
                                             runtime_version="1.0", source="measured", device="host",
                                             energy_mj=None, energy_source=None))
        return out

    monkeypatch.setattr(hwnas.measure.campaign, "measure_archs", fake_measure_archs)
    ev = build_evaluator(space, EvaluatorSpec(objectives=["latency_ms@host", "params"], latency=["measure"]))
    archs = [space.from_index(i) for i in (1, 2, 3)]
    F = ev.evaluate(archs)
    assert F[0, 0] == 2.0 and np.isnan(F[1, 0]) and F[2, 0] == 4.0
    e = ev.evaluations()
    assert e[0].sources[0] == "measured:onnxruntime 1.0@host" and e[1].sources[0] == "failed:worker crashed"
    assert e[1].violation > 0 and e[0].violation == 0
    res = SearchResult("x", "nb201", ev.objectives, e)
    assert archs[1] not in [x.arch for x in res.pareto()]
