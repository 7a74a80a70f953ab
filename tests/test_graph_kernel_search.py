"""Issue 24 gap 2: the graph-kernel predictor as a search's latency source for a real space (mobilenet).

- kernels from the space's layer description (``space_kernels``) equal those read from the exported ONNX graph
  (50 random archs, real torch export);
- ``--latency DEV=predictor`` (``PredictorSource``) answers mobilenet archs from a graph-kernel artifact when the
  device has no mobilenet predictor, or one that cannot answer every arch; provenance names the model;
- an unseen kernel type stops with the arch named, never 0 ms.
"""

import numpy as np
import pytest

from hwnas.evaluation.sources import PredictorSource
from hwnas.predictors import UnknownOpError
from hwnas.predictors.graph import GraphKernelPredictor
from hwnas.spaces import create_space


def _space_kernels(space, arch):
    from hwnas.predictors.space_kernels import space_kernels

    return space_kernels(space, arch)


def _samples(space, archs, drop=()):
    """Profiles with a known per-kernel cost law: 0.02 ms + 0.05 ms/MMAC + 0.01 ms/MB (+ 0.3 ms per SE)."""
    out = []
    for a in archs:
        ks = [k for k in _space_kernels(space, a) if k.type not in drop]
        ms = np.array([0.02 + 0.05 * k.mmacs + 0.01 * k.mbytes + (0.3 if k.type == "se" else 0.0) for k in ks])
        out.append({"kernels": ks, "kernel_ms": ms, "latency_ms": float(ms.sum() + 0.5), "cpu_ms": float(ms.sum())})
    return out


@pytest.mark.slow
def test_layer_kernels_equal_exported_onnx_kernels_for_random_archs_covering_every_choice():
    from hwnas.export import ExportSettings, export_arch
    from hwnas.predictors.fusion import read_graph

    space = create_space("mobilenet", input_size=40, width_mult=0.5, num_classes=10)  # odd sizes: 5 -> 3 -> 2
    archs = space.sample_distinct(16, np.random.default_rng(4))
    genes = np.array([a.genes for a in archs])  # every value of every gene (depth, kernel, expansion) is in the set
    assert [len(set(column)) for column in genes.T] == list(space.cardinalities())
    for a in archs:
        onnx = [k.describe() for k in read_graph(export_arch(space, a, ExportSettings(format="onnx")))]
        assert [k.describe() for k in _space_kernels(space, a)] == onnx, space.to_string(a)


def test_layer_kernels_cover_every_choice_and_follow_the_settings():
    space = create_space("mobilenet", input_size=64)
    a = space.from_string("k7e6,k7e6/k5e3,k3e4/k3e6,k7e3/k5e4,k5e4/k3e3,k7e6")
    ks = _space_kernels(space, a)
    dw = [(k.k, k.cin) for k in ks if k.type == "dwconv"]
    assert [k for k, _ in dw] == [3, 7, 7, 5, 3, 3, 7, 5, 5, 3, 7]
    assert sum(k.type == "se" for k in ks) == 6 and sum(k.residual for k in ks) == 6
    assert ks[0].hw == 64 and ks[-1].type == "fc"
    big = _space_kernels(create_space("mobilenet", input_size=128), a)
    assert big[0].hw == 128 and big[0].mmacs == pytest.approx(4 * ks[0].mmacs)


def test_predictor_source_answers_mobilenet_from_a_graph_kernel_artifact(tmp_path):
    space = create_space("mobilenet", input_size=64)
    train = space.sample_distinct(12, np.random.default_rng(0))
    p = GraphKernelPredictor(seed=0, gbdt_min=10_000).fit(_samples(space, train))
    p.set_card(device="host", runtime="onnxruntime", graph_runtime="onnxruntime", name="graph-kernel")
    root = tmp_path / "latency_models"
    p.save(root / "host" / "graph-kernel")
    src = PredictorSource("host", root=str(root))
    src.check(space, "latency_ms")  # was: "no latency predictor for device 'host' for space 'mobilenet'"
    pool = space.sample_distinct(300, np.random.default_rng(1))
    values, prov = src.values(space, pool, "latency_ms")
    assert values.shape == (300,) and np.all(np.isfinite(values)) and np.all(values > 0)
    assert set(prov) == {f"predicted:graph-kernel {p.data_hash_}@host"}
    truth = np.array([s["latency_ms"] for s in _samples(space, pool)])
    assert np.median(np.abs(values - truth) / truth) < 0.05  # the cost law is linear: the fit recovers it
    for i in (0, 150):  # the batched path equals one graph at a time
        assert values[i] == pytest.approx(p.predict_graph(_space_kernels(space, pool[i]))[0], rel=1e-9)


def test_graph_kernel_beats_a_space_predictor_that_cannot_answer_every_arch(tmp_path):
    from hwnas.predictors import create_predictor
    from hwnas.predictors.for_space import GraphKernelForSpace, predictor_for_space

    space = create_space("mobilenet", input_size=64)
    train = space.sample_distinct(12, np.random.default_rng(0))
    root = tmp_path / "latency_models"
    samples = _samples(space, train)
    lut = create_predictor("lut", space=space).fit(train, np.array([s["latency_ms"] for s in samples]))
    lut.set_card(device="host", runtime="onnxruntime", name="mobilenet-lut").save(root / "host" / "mobilenet-lut")
    assert not isinstance(predictor_for_space("host", space, root), GraphKernelForSpace)  # no graph-kernel yet
    gk = GraphKernelPredictor(seed=0, gbdt_min=10_000).fit(samples).set_card(device="host", name="graph-kernel")
    gk.save(root / "host" / "graph-kernel")
    chosen = predictor_for_space("host", space, root)
    assert isinstance(chosen, GraphKernelForSpace) and "mobilenet-lut answers" in chosen.why
    other = create_space("mobilenet", input_size=96)  # the lut's settings differ: the graph-kernel answers
    assert isinstance(predictor_for_space("host", other, root), GraphKernelForSpace)


def test_unseen_kernel_type_names_the_arch_and_is_never_zero(tmp_path):
    space = create_space("mobilenet", input_size=64)
    train = space.sample_distinct(8, np.random.default_rng(0))
    p = GraphKernelPredictor(seed=0, gbdt_min=10_000).fit(_samples(space, train, drop=("se",)))
    a = space.sample(np.random.default_rng(3))
    with pytest.raises(UnknownOpError, match=r"kernel type 'se'.*of arch " + space.to_string(a).split(",")[0]):
        p.predict_archs(space, [a])
