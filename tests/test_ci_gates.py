"""The exact gates of `hwnas ci-check` on TFLite files (LiteRT's interpreter reads the flatbuffer), next to ONNX.

Small real models: NAS-Bench-201 cells at C=4, N=1 exported through hwnas.export (litert-torch); the
conversion is the slow part, so the module is marked slow and shares the session's export cache.
"""

import json

import pytest

from hwnas.ci.gates import GATES, compare_gates, model_gates
from hwnas.errors import HwnasError
from hwnas.export import ExportSettings, export_arch
from hwnas.spaces import create_space

pytestmark = pytest.mark.slow

LIGHT = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
HEAVY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def exported(shared_export_cache):
    """{(arch name, format): path} for the light and heavy cells, ONNX and TFLite."""
    sp = create_space("nb201", C=4, N=1)
    return sp, {(name, fmt): export_arch(sp, sp.from_string(arch), ExportSettings(format=fmt),
                                         cache_dir=shared_export_cache)
                for name, arch in (("light", LIGHT), ("heavy", HEAVY)) for fmt in ("onnx", "tflite")}


def test_tflite_gates_count_the_flatbuffer(exported):
    sp, paths = exported
    for name, arch in (("light", LIGHT), ("heavy", HEAVY)):
        path = paths[(name, "tflite")]
        g = model_gates(path)
        assert set(GATES) <= set(g) and g["size_bytes"] == path.stat().st_size
        assert g["op_count"] == sum(g["op_types"].values()) > 0
        assert g["params"] > 0 and "CONV_2D" in g["op_types"]
        # MACs: the same count as the space's own (torch hooks) and the ONNX graph's
        assert g["macs"] == sp.static_costs(sp.from_string(arch)).macs == model_gates(paths[(name, "onnx")])["macs"]


def test_tflite_gates_fail_on_growth_and_pass_on_shrinkage(exported):
    _, paths = exported
    light, heavy = model_gates(paths[("light", "tflite")]), model_gates(paths[("heavy", "tflite")])
    grew = compare_gates(light, heavy)
    assert all(grew[g]["verdict"] == "fail" for g in ("macs", "params", "op_count")), grew
    assert "macs grew" in grew["macs"]["reason"]
    shrank = compare_gates(heavy, light)
    assert all(r["verdict"] == "pass" for r in shrank.values())
    assert compare_gates(light, model_gates(paths[("light", "tflite")]))["macs"]["reason"] == "unchanged"


def test_a_broken_tflite_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"TFL3 but not really a flatbuffer")
    with pytest.raises(HwnasError, match="not a readable TFLite model"):
        model_gates(bad)


def test_ci_check_on_tflite_files_fails_the_gates(exported, tmp_path):
    from hwnas.cli.main import main

    _, paths = exported
    out = tmp_path / "r.json"
    code = main(["ci-check", str(paths[("heavy", "tflite")]), "--against", str(paths[("light", "tflite")]),
                 "--budget-s", "2", "--min-rounds", "4", "--seed", "1", "--json", str(out)])
    assert code == 1  # the gates fail whatever the latency says
    (m,) = json.loads(out.read_text())["models"]
    assert m["runtime"] == "litert" and m["mode"] == "paired (same job)"
    assert {g: r["verdict"] for g, r in m["gates"].items()} == {
        "macs": "fail", "params": "fail", "size_bytes": "fail", "op_count": "fail"}
    assert m["candidate_facts"]["macs"] == m["gates"]["macs"]["candidate"] > m["gates"]["macs"]["baseline"]
