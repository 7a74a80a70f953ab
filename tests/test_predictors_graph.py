"""Issue 13: fusion rules on small hand-built ONNX graphs, the graph-kernel predictor (fit on synthetic
profiles, real ONNX Runtime profiling of a tiny graph), and `hwnas predict --model FILE.onnx`."""

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwnas.cli.main import main
from hwnas.predictors import ArtifactError, UnknownOpError
from hwnas.predictors.fusion import GraphError, fuse, read_graph
from hwnas.predictors.graph import GraphKernelPredictor, profile_onnx


def _w(name, *shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.1, name)


def _bn(prefix, c):
    return [numpy_helper.from_array(np.ones(c, np.float32), f"{prefix}_s"),
            numpy_helper.from_array(np.zeros(c, np.float32), f"{prefix}_b"),
            numpy_helper.from_array(np.zeros(c, np.float32), f"{prefix}_m"),
            numpy_helper.from_array(np.ones(c, np.float32), f"{prefix}_v")]


def _model(nodes, inits, out="y", out_shape=None, c=8, hw=16):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def block_model():
    """conv3x3+BN+ReLU -> depthwise3x3 (stride 2)+BN+ReLU6 -> SE -> 1x1 conv + residual-free -> add(+relu)
    with a parallel 1x1 conv -> maxpool -> global pool -> flatten -> gemm."""
    n = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1_s", "bn1_b", "bn1_m", "bn1_v"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2], group=16),
        helper.make_node("BatchNormalization", ["c2", "bn2_s", "bn2_b", "bn2_m", "bn2_v"], ["b2"], name="bn2"),
        helper.make_node("Clip", ["b2", "lo", "hi"], ["r2"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["r2"], ["se_p"], name="se_pool"),
        helper.make_node("Conv", ["se_p", "wse1"], ["se_c1"], name="se_fc1", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["se_c1"], ["se_r"], name="se_relu"),
        helper.make_node("Conv", ["se_r", "wse2"], ["se_c2"], name="se_fc2", kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["se_c2"], ["se_g"], name="se_gate"),
        helper.make_node("Mul", ["r2", "se_g"], ["se_out"], name="se_mul"),
        helper.make_node("Conv", ["se_out", "w3"], ["c3"], name="pw_a", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Conv", ["se_out", "w4"], ["c4"], name="pw_b", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c4"], ["r4"], name="relu4"),
        helper.make_node("Add", ["r3", "r4"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["sr"], name="add_relu"),
        helper.make_node("MaxPool", ["sr"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["y"], name="fc", transB=1),
    ]
    inits = [_w("w1", 16, 8, 3, 3), _w("w2", 16, 1, 3, 3), _w("wse1", 4, 16, 1, 1), _w("wse2", 16, 4, 1, 1),
             _w("w3", 24, 16, 1, 1), _w("w4", 24, 16, 1, 1), _w("wfc", 10, 24), _w("bfc", 10),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi"),
             *_bn("bn1", 16), *_bn("bn2", 16)]
    return _model(n, inits, out_shape=[1, 10])


def residual_model():
    """1x1 conv + BN whose only consumer is an Add with the block input (ORT's Conv+Sum fusion)."""
    n = [helper.make_node("Conv", ["x", "w"], ["c"], name="proj", kernel_shape=[1, 1]),
         helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["b"], name="bn"),
         helper.make_node("Add", ["b", "x"], ["y"], name="res")]
    return _model(n, [_w("w", 8, 8, 1, 1), *_bn("bn", 8)], out_shape=[1, 8, 16, 16])


def test_fusion_rules_on_a_hand_built_graph():
    ks = fuse(block_model())
    assert [k.type for k in ks] == ["conv", "dwconv", "se", "conv", "conv", "add", "pool", "gap", "reshape", "fc"]
    conv, dw, se = ks[0], ks[1], ks[2]
    assert conv.nodes == ["conv1", "bn1", "relu1"] and conv.act == "Relu"
    assert (conv.hw, conv.cin, conv.cout, conv.k, conv.stride, conv.groups) == (16, 8, 16, 3, 1, 1)
    assert conv.mmacs == pytest.approx(16 * 16 * 16 * 8 * 9 / 1e6)
    assert conv.mbytes == pytest.approx((8 * 256 + 16 * 256 + 16 * 8 * 9) * 4 / 1e6)
    assert dw.nodes == ["dw", "bn2", "relu6"] and dw.act == "Clip"
    assert (dw.hw, dw.cin, dw.cout, dw.k, dw.stride, dw.groups) == (16, 16, 16, 3, 2, 16)
    assert dw.mmacs == pytest.approx(16 * 8 * 8 * 1 * 9 / 1e6)
    assert se.nodes == ["se_pool", "se_fc1", "se_relu", "se_fc2", "se_gate", "se_mul"] and se.hw == 8
    assert ks[5].nodes == ["add", "add_relu"] and ks[5].act == "Relu"
    assert ks[6].k == 2 and ks[6].stride == 2 and ks[6].hw == 8
    # Gemm with transB=1 (as torch exports Linear): wfc is (out 10, in 24)
    assert (ks[9].cin, ks[9].cout) == (24, 10) and ks[9].mmacs == pytest.approx(240 / 1e6)


def test_conv_absorbs_the_residual_add_and_unknown_ops_raise(tmp_path):
    ks = fuse(residual_model())
    assert len(ks) == 1 and ks[0].residual == 1 and ks[0].nodes == ["proj", "bn", "res"]
    bad = _model([helper.make_node("Einsum", ["x", "x"], ["y"], name="e", equation="bchw,bchw->bchw")], [],
                 out_shape=[1, 8, 16, 16])
    with pytest.raises(GraphError, match="Einsum"):
        fuse(bad)
    with pytest.raises(GraphError, match="TFLite"):
        (tmp_path / "m.tflite").write_bytes(b"x")
        read_graph(tmp_path / "m.tflite")
    with pytest.raises(GraphError, match="not a readable ONNX"):
        (tmp_path / "bad.onnx").write_bytes(b"not onnx")
        read_graph(tmp_path / "bad.onnx")


def _synthetic_samples(n=40, seed=0):
    """Kernels of the hand-built graph with planted times: conv 0.02 ms/MMAC, the rest 0.01 ms + 0.005/MB."""
    rng = np.random.default_rng(seed)
    base = fuse(block_model())
    out = []
    for _ in range(n):
        ks = []
        for k in base:
            k2 = type(k)(**{**k.__dict__, "nodes": list(k.nodes), "outputs": list(k.outputs)})
            f = rng.uniform(0.5, 2.0)
            k2.mmacs, k2.mbytes = k.mmacs * f, k.mbytes * f
            ks.append(k2)
        ms = np.array([0.02 * k.mmacs + 0.01 + 0.005 * k.mbytes for k in ks]) * (1 + rng.normal(0, 0.01, len(ks)))
        out.append({"kernels": ks, "kernel_ms": ms, "latency_ms": float(ms.sum() + 0.05 + 0.002 * len(ks)),
                    "cpu_ms": float(ms.sum())})
    return out


def test_graph_kernel_predictor_fit_predict_save_load(tmp_path):
    train, test = _synthetic_samples(40), _synthetic_samples(10, seed=1)
    p = GraphKernelPredictor(gbdt_min=60).fit(train)  # conv: 3 per model, fc: 1
    assert p.models_["conv"]["model"] == "gbdt" and p.models_["fc"]["model"] == "linear"
    truth = np.array([s["latency_ms"] for s in test])
    pred = np.array([p.predict_graph(s["kernels"])[0] for s in test])
    assert np.all(np.abs(pred / truth - 1) < 0.10)
    assert p.overhead_[1] >= 0 and p.card["overhead"]["per_kernel_ms"] == p.overhead_[1]
    p.set_card(device="dev", name="graph-kernel")
    d = p.save(tmp_path / "latency_models" / "dev" / "graph-kernel")
    assert not list(d.rglob("*.pkl"))
    q = GraphKernelPredictor.load(d)
    assert q.predict_graph(test[0]["kernels"]) == pytest.approx(p.predict_graph(test[0]["kernels"]))
    (d / "kernels.json").write_text((d / "kernels.json").read_text() + " ")
    with pytest.raises(ArtifactError, match="SHA-256"):
        GraphKernelPredictor.load(d)
    unknown = fuse(residual_model())
    unknown[0].type = "transpose"
    with pytest.raises(UnknownOpError, match="transpose"):
        p.predict_graph(unknown)


def test_profile_a_real_onnx_graph_and_predict_it_from_the_cli(tmp_path, monkeypatch, capsys):
    import onnx

    path = tmp_path / "block.onnx"
    onnx.save(block_model(), str(path))
    s = profile_onnx(path, runs=3, warmup=1)
    assert len(s["kernel_ms"]) == len(s["kernels"]) == 10
    assert s["kernel_ms"][0] > 0 and s["latency_ms"] > 0 and s["cpu_ms"] > 0  # the conv was matched
    p = GraphKernelPredictor(gbdt_min=1000).fit(_synthetic_samples(20))
    p.set_card(device="dev", runtime="onnxruntime", name="graph-kernel")
    p.save(tmp_path / "latency_models" / "dev" / "graph-kernel")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--device", "dev", "--model", str(path), "--out", "kernels.csv"]) == 0
    out = capsys.readouterr().out
    want = p.predict_graph(fuse(block_model()))[0]
    assert f"{want:.3f} ms" in out and "10 fused kernels" in out and "predicted:graph-kernel" in out
    assert (tmp_path / "kernels.csv").read_text().count("\n") == 11
    assert main(["predict", "--device", "nobody", "--model", str(path)]) == 2
    assert "no graph-kernel predictor for device 'nobody'" in capsys.readouterr().err


def test_fit_predictor_graph_kernel_from_onnx_files(tmp_path, monkeypatch, capsys):
    import onnx

    for i in range(3):
        onnx.save(block_model() if i else residual_model(), str(tmp_path / f"m{i}.onnx"))
    monkeypatch.chdir(tmp_path)
    assert main(["fit-predictor", "--device", "host", "--kind", "graph-kernel", "--onnx", str(tmp_path),
                 "--runs", "3"]) == 0
    assert "trained graph-kernel on 3 profiled models of host" in capsys.readouterr().out
    card = json.loads((tmp_path / "latency_models" / "host" / "graph-kernel" / "card.json").read_text())
    assert card["kind"] == "graph-kernel" and card["device"] == "host" and "conv" in card["kernel_types"]
    assert main(["predict", "--device", "host", "--model", str(tmp_path / "m1.onnx")]) == 0
    capsys.readouterr()
    assert main(["fit-predictor", "--device", "host", "--kind", "graph-kernel"]) == 2  # no --onnx: the store's
    assert "no op-level profiles of device 'host'" in capsys.readouterr().err
