"""Issue 13, part 2: kernels from TFLite graphs (real .tflite files from litert-torch via hwnas.export), stored
op profiles mapped to kernels (ONNX Runtime node names, benchmark_model builtin rows, XNNPACK rows), and
`hwnas predict --model FILE.tflite`."""

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.predictors import UnknownOpError
from hwnas.predictors.fusion import GraphError, read_graph
from hwnas.predictors.graph import GraphKernelPredictor
from hwnas.predictors.op_profiles import kernel_times


def _tiny_module():
    import torch
    import torch.nn as nn

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.pool, self.a, self.b = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 4, 1), nn.Conv2d(4, c, 1)

        def forward(self, x):
            return x * nn.functional.hardsigmoid(self.b(torch.relu(self.a(self.pool(x)))))

    class Tiny(nn.Module):  # conv-bn-relu6 (stride 2), dw-bn-hardswish, SE, 1x1 conv-bn, residual add + relu ...
        def __init__(self):
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
            self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
            self.se = SE(8)
            self.pw = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8))
            self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.mp = nn.MaxPool2d(2)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            y = self.c1(x)
            y = torch.relu(y + self.pw(self.se(self.dw(y))))
            return self.fc(self.mp(self.c2(y)).mean((2, 3)))

    torch.manual_seed(0)
    return Tiny().eval()


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """One real conversion (litert-torch, a few seconds) shared by the tests of this module."""
    from hwnas.export import ExportSettings, export_model

    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    return export_model(_tiny_module(), (3, 32, 32), path, ExportSettings(format="tflite"), what="tiny")


EXPECTED = ["transpose", "conv", "dwconv", "act", "se", "conv", "add", "conv", "pool", "transpose", "gap", "fc"]


def test_tflite_graph_to_fused_kernels(tiny_tflite):
    ks = read_graph(tiny_tflite)
    assert [k.type for k in ks] == EXPECTED
    c1, dw, hs, se, pw, add, c2, pool, _, gap, fc = ks[1:]
    # BN folded by the converter, ReLU6 fused into CONV_2D, the PAD litert-torch emits folded into the conv
    assert c1.nodes == ["PAD:1", "CONV_2D:2"] and c1.act == "RELU6"
    assert (c1.hw, c1.cin, c1.cout, c1.k, c1.stride, c1.groups) == (32, 3, 8, 3, 2, 1)
    assert c1.mmacs == pytest.approx(8 * 16 * 16 * 3 * 9 / 1e6)
    assert c1.mbytes == pytest.approx((32 * 32 * 3 + 16 * 16 * 8 + 8 * 3 * 3 * 3 + 8) * 4 / 1e6)
    assert (dw.hw, dw.cin, dw.cout, dw.k, dw.stride, dw.groups) == (16, 8, 8, 3, 1, 8) and dw.act == ""
    assert dw.mmacs == pytest.approx(8 * 16 * 16 * 9 / 1e6)
    assert hs.act == "HARD_SWISH"
    # SE: MEAN -> conv (relu) -> conv (relu6: hard-sigmoid's +3 in the bias) -> MUL 1/6 -> MUL with the input
    assert [n.split(":")[0] for n in se.nodes] == ["MEAN", "CONV_2D", "CONV_2D", "MUL", "MUL"] and se.hw == 16
    assert (pw.k, pw.cin, pw.cout, pw.act) == (1, 8, 8, "")
    assert add.act == "RELU" and add.residual == 0  # XNNPACK does not fuse the add into the conv
    assert (c2.hw, c2.cout, c2.stride, c2.act) == (16, 16, 2, "RELU") and c2.mmacs == pytest.approx(16 * 7 * 7 * 8 * 9 / 1e6)
    assert (pool.k, pool.stride, pool.hw) == (2, 2, 7)
    assert (gap.cin, gap.hw) == (16, 3)  # a MEAN over H, W of the NCHW tensor litert-torch transposed back
    assert (fc.cin, fc.cout) == (16, 10) and fc.mmacs == pytest.approx(160 / 1e6)


def _repacked(path, tmp_path, op_index, builtin):
    """A copy of ``path`` with op ``op_index`` turned into ``builtin`` (flatbuffer rewritten by LiteRT's schema)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    m = S.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    op = m.subgraphs[0].operators[op_index]
    code = S.OperatorCodeT()
    code.builtinCode = getattr(S.BuiltinOperator, builtin)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    m.operatorCodes.append(code)
    op.opcodeIndex = len(m.operatorCodes) - 1
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    out = tmp_path / f"{builtin.lower()}.tflite"
    out.write_bytes(bytes(b.Output()))
    return out


def test_unknown_tflite_ops_raise(tiny_tflite, tmp_path):
    with pytest.raises(GraphError, match="op CUMSUM .*no fusion rule for litert"):
        read_graph(_repacked(tiny_tflite, tmp_path, 4, "CUMSUM"))
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(GraphError, match="not a readable TFLite model"):
        read_graph(tmp_path / "bad.tflite")
    with pytest.raises(GraphError, match="runs on litert, not onnxruntime"):
        read_graph(tiny_tflite, "onnxruntime")


def _samples(kernels, n=12, seed=0):
    """Planted kernel times on scaled copies of ``kernels``: 0.002 ms + 0.02 ms/MMAC + 0.004 ms/MB; the whole
    model is 1.1 x the kernel sum + 0.05 ms + 0.003 ms per kernel (what the fit must recover)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ks = []
        for k in kernels:
            f = rng.uniform(0.5, 3.0)
            ks.append(type(k)(**{**k.__dict__, "mmacs": k.mmacs * f, "mbytes": k.mbytes * f}))
        ms = np.array([0.002 + 0.02 * k.mmacs + 0.004 * k.mbytes for k in ks])
        lat = float(1.1 * ms.sum() + 0.05 + 0.003 * len(ks))
        out.append({"kernels": ks, "kernel_ms": ms, "latency_ms": lat, "cpu_ms": lat})
    return out


def test_predict_a_tflite_model_from_the_cli(tiny_tflite, tmp_path, monkeypatch, capsys):
    ks = read_graph(tiny_tflite)
    p = GraphKernelPredictor(gbdt_min=1000).fit(_samples(ks))
    # every sample has 12 kernels, so only a + 12 b is identified
    assert p.scale_ == pytest.approx(1.1, rel=0.02) and p.overhead_[0] + 12 * p.overhead_[1] == pytest.approx(0.086)
    p.set_card(device="phone", runtime="litert", graph_runtime="litert", name="graph-kernel-litert")
    p.save(tmp_path / "latency_models" / "phone" / "graph-kernel-litert")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--device", "phone", "--model", str(tiny_tflite), "--out", "k.csv"]) == 0
    out = capsys.readouterr().out
    assert f"{p.predict_graph(ks)[0]:.3f} ms" in out and "12 fused kernels" in out and "runtime=litert" in out
    assert (tmp_path / "k.csv").read_text().splitlines()[2].startswith("PAD:1,conv,32,3,8,3,2,1")
    assert p.predict_file(tiny_tflite) == pytest.approx(p.predict_graph(ks))
    # a kernel type the profiles never held raises (never 0 ms); an ONNX-only device says what it has
    q = GraphKernelPredictor(gbdt_min=1000).fit(_samples([k for k in ks if k.type != "se"]))
    with pytest.raises(UnknownOpError, match="kernel type 'se'"):
        q.predict_graph(ks)
    q.set_card(device="host", runtime="onnxruntime", name="graph-kernel").save(
        tmp_path / "latency_models" / "host" / "graph-kernel")
    assert main(["predict", "--device", "host", "--model", str(tiny_tflite)]) == 2
    assert "no graph-kernel predictor for device 'host' and litert graphs" in capsys.readouterr().err


def test_op_rows_map_to_kernels(tiny_tflite):
    ks = read_graph(tiny_tflite)
    # benchmark_model with XNNPACK: one row per XNNPACK operator in execution order; the PAD folded into the
    # first conv has none; the delegate's container row is not counted twice; an unknown row is unmatched
    xnn = ["Transpose (ND, X32)", "Convolution (NHWC, F32) IGEMM", "Convolution (NHWC, F32) DWConv",
           "HardSwish (NC, F32)", "Mean (ND, F32)", "Convolution (NHWC, F32) GEMM", "Convolution (NHWC, F32) GEMM",
           "Multiply (ND, F32)", "Multiply (ND, F32)", "Convolution (NHWC, F32) GEMM", "Add (ND, F32)",
           "Convolution (NHWC, F32) IGEMM", "Max Pooling (NHWC, F32)", "Transpose (ND, X32)", "Mean (ND, F32)",
           "Fully Connected (NC, F32) GEMM", "Something New (NC, F32)"]
    rows = [{"name": f"Delegate/{t}:{i}", "op_type": t, "ms": 0.01 * (i + 1)} for i, t in enumerate(xnn)]
    rows.append({"name": "TfLiteXNNPackDelegate:0", "op_type": "TfLiteXNNPackDelegate", "ms": 9.0})
    kms, unmatched = kernel_times(ks, rows)
    assert kms[4] == pytest.approx(0.05 + 0.06 + 0.07 + 0.08 + 0.09)  # the SE's five operators
    assert kms[1] == pytest.approx(0.02) and kms[11] == pytest.approx(0.16) and unmatched == pytest.approx(0.17)
    # without a delegate: builtin rows named <output tensor>:<op index>
    rows = [{"name": f"{k.outputs[-1]}:{n.split(':')[1]}", "op_type": n.split(":")[0], "ms": 0.5}
            for k in ks for n in k.nodes]
    kms, unmatched = kernel_times(ks, rows)
    assert kms[1] == pytest.approx(1.0) and kms[4] == pytest.approx(2.5) and unmatched == 0


# -- op profiles from the store, through the same path a phone takes: fake adb + benchmark_model output -------
XNN_NAMES = {"CONV_2D": "Convolution (NHWC, F32) IGEMM", "DEPTHWISE_CONV_2D": "Convolution (NHWC, F32) DWConv",
             "ADD": "Add (ND, F32)", "MUL": "Multiply (ND, F32)", "MEAN": "Mean (ND, F32)",
             "AVERAGE_POOL_2D": "Average Pooling (NHWC, F32)", "MAX_POOL_2D": "Max Pooling (NHWC, F32)",
             "TRANSPOSE": "Transpose (ND, X32)", "FULLY_CONNECTED": "Fully Connected (NC, F32) GEMM",
             "RELU": "Clamp (NC, F32)", "HARD_SWISH": "HardSwish (NC, F32)"}


def _phone_run_order(kernels):
    """The fake phone's benchmark_model 'Run Order' rows for a model (XNNPACK operators, the PAD folded into
    its conv has no row) with planted times 0.01 ms + 0.2 ms/MMAC + 0.02 ms/MB per kernel, and their sum."""
    rows = []
    for k in kernels:
        ms = 0.01 + 0.2 * k.mmacs + 0.02 * k.mbytes
        ops = [n.split(":")[0] for n in k.nodes if not n.startswith("PAD")]
        rows += [(XNN_NAMES[op], ms / len(ops)) for op in ops]
    lines, start = [], 0.0
    for j, (t, ms) in enumerate(rows):
        fields = [t, f"{start:.3f}", f"{ms:.3f}", f"{ms:.3f}", "1.000%", "1.000%", "0.000", "1", f"Delegate/{t}:{j}"]
        lines.append("INFO: \t" + "\t".join(fields) + "\n")
        start += ms
    return "".join(lines), float(sum(round(ms, 3) for _, ms in rows))


@pytest.mark.slow
def test_graph_kernel_fits_from_stored_benchmark_model_op_profiles(tmp_path, monkeypatch, shared_export_cache, capsys):
    """nb201 archs measured on a 'pixel' (LiteRT + XNNPACK) through a fake adb whose benchmark_model prints an op
    profile per model; `hwnas fit-predictor --kind graph-kernel` fits from the stored rows; `hwnas predict
    --model FILE.tflite` answers within 10% of the fake phone's whole-model latency."""
    import json
    import os
    import re
    import sys
    from dataclasses import replace
    from pathlib import Path

    from hwnas.export import ExportSettings, export_arch
    from hwnas.measure.campaign import measure_archs
    from hwnas.measure.device_profile import load_profile
    from hwnas.measure.protocol import ProtocolSettings
    from hwnas.spaces import create_space
    from hwnas.store import MeasurementStore

    bin_dir, phone_dir = tmp_path / "bin", tmp_path / "op_profiles"
    bin_dir.mkdir(), phone_dir.mkdir()
    fake = Path(__file__).parent / "fakes" / "fake_adb.py"
    (bin_dir / "adb").write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    (bin_dir / "adb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    monkeypatch.setenv("FAKE_ADB_OP_PROFILES", str(phone_dir))
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "exports").symlink_to(shared_export_cache)  # conversions shared with test_adb's
    monkeypatch.setenv("HWNAS_HOME", str(home))

    sp = create_space("nb201", C=4, N=1)
    archs = [sp.from_index(i) for i in (3, 100, 5000)]
    truth = {}
    for a in archs:
        path = export_arch(sp, a, ExportSettings(format="tflite"))
        ks = read_graph(path)
        table, total = _phone_run_order(ks)
        (phone_dir / f"{path.name}.txt").write_text(table)
        truth[path] = 1.1 * total + 0.05 + 0.003 * len(ks)  # the phone's whole-model median, ms
        (phone_dir / f"{path.name}.us").write_text(str(truth[path] * 1000))
    p = load_profile("pixel")
    pixel = replace(p, connection={**p.connection, "energy_duration_s": 0.2})
    store = MeasurementStore(tmp_path / "m.db")
    got = measure_archs(sp, archs, pixel, store, ProtocolSettings.quick(), reference=None)
    assert all(m.op_profile and m.op_profile[0]["name"] == "Delegate/Transpose (ND, X32):0" for m in got)

    monkeypatch.chdir(tmp_path)
    assert main(["fit-predictor", "--device", "pixel", "--kind", "graph-kernel", "--store", "m.db"]) == 0
    assert "trained graph-kernel on 3 profiled models of pixel" in capsys.readouterr().out
    card = json.loads((tmp_path / "latency_models" / "pixel" / "graph-kernel-litert" / "card.json").read_text())
    assert card["space_config"]["runtime"] == "litert" and card["profiles"] == "op_profile rows of the store"
    assert card["overhead"]["kernel_scale"] == pytest.approx(1.1, rel=0.1)
    for path, lat in truth.items():
        assert main(["predict", "--device", "pixel", "--model", str(path)]) == 0
        out = capsys.readouterr().out
        assert float(re.search(r": ([\d.]+) ms \+-", out).group(1)) == pytest.approx(lat, rel=0.10)
    # an ONNX model on this device: no predictor of onnxruntime graphs; no store rows: a clear error
    assert main(["fit-predictor", "--device", "nobody", "--kind", "graph-kernel", "--store", "m.db"]) == 2
    assert "no op-level profiles of device 'nobody'" in capsys.readouterr().err


def test_graph_kernel_fits_from_stored_onnxruntime_host_profiles(tmp_path, monkeypatch, capsys):
    """The host runner (`hwnas profile`'s path: real ONNX Runtime, its profiler) stores op rows named by ONNX node;
    fit-predictor maps them to the fused kernels of the re-exported ONNX graphs and predicts --model FILE.onnx."""
    import re

    from hwnas.export import ExportSettings, export_arch
    from hwnas.measure.campaign import measure_archs
    from hwnas.measure.device_profile import load_profile
    from hwnas.measure.protocol import ProtocolSettings
    from hwnas.predictors.op_profiles import samples_from_store
    from hwnas.spaces import create_space
    from hwnas.store import MeasurementStore

    sp = create_space("nb201", C=4, N=1)
    archs = [sp.from_index(i) for i in (3, 100, 5000)]
    store = MeasurementStore(tmp_path / "m.db")
    measure_archs(sp, archs, load_profile("host"), store, ProtocolSettings.quick(), reference=None)
    # the mapping, independent of timing: every stored row set maps, and most kernels get a profiled time
    samples, rt, notes = samples_from_store(store, "host", min_matched=0.0)
    assert rt == "onnxruntime" and len(samples) == 3 and not notes
    for s in samples:
        assert (s["kernel_ms"] > 0).sum() >= 0.5 * len(s["kernels"])
    # with the default filter a model whose profile mostly went to ORT's layout reorders (a loaded host) is left
    # out with a note, never silently
    kept, _, notes = samples_from_store(store, "host")
    assert len(kept) + len(notes) == 3
    monkeypatch.chdir(tmp_path)
    assert main(["fit-predictor", "--device", "host", "--kind", "graph-kernel", "--store", "m.db"]) == 0
    assert re.search(r"trained graph-kernel on \d profiled models of host", capsys.readouterr().out)
    path = export_arch(sp, archs[1], ExportSettings())
    assert main(["predict", "--device", "host", "--model", str(path)]) == 0
    assert float(re.search(r": ([\d.]+) ms \+-", capsys.readouterr().out).group(1)) > 0
