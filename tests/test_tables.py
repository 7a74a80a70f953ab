"""``table:`` sources validate their values like ``hwnas import latency`` (a bad row is one clear error naming
it) and treat missing rows as unknown values (issues 11 and 18 item 4)."""

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.evaluation import EvaluatorSpec, TableSource, build_evaluator
from hwnas.spaces import create_space

SPACE = create_space("nb201")
A, B, C = (SPACE.to_string(SPACE.from_index(i)) for i in (5, 6, 7))


def table(tmp_path, header, rows, name="t.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header] + [f"{a},{v}" for a, v in rows]) + "\n")
    return path


@pytest.mark.parametrize("column, value, message", [
    ("latency_ms", "nan", "latency_ms is 'nan'"),
    ("latency_ms", "inf", "latency_ms is 'inf'"),
    ("latency_ms", "-3", "latency_ms must be > 0, got -3.0"),
    ("latency_ms", "0", "latency_ms must be > 0, got 0.0"),
    ("latency_ms", "fast", "latency_ms is not a number: 'fast'"),
    ("latency_ms", "", "latency_ms is not a number: ''"),
    ("energy_mj", "-1", "energy_mj must be >= 0"),
    ("test_accuracy", "101", "test_accuracy must be a percentage in 0-100, got 101.0"),
    ("test_accuracy", "-0.5", "test_accuracy must be a percentage in 0-100"),
    ("test_accuracy", "NaN", "test_accuracy is 'NaN'"),
])
def test_bad_value_is_one_error_naming_the_row(tmp_path, column, value, message):
    path = table(tmp_path, f"arch,{column}", [(A, "50"), (B, value), (C, "60")])
    quantity = "error" if column == "test_accuracy" else column
    with pytest.raises(HwnasError) as info:
        TableSource(path).check(SPACE, quantity)
    text = str(info.value)
    assert message in text and f"line 3 (arch {B})" in text and str(path) in text and "\n" not in text


def test_fractions_are_refused_as_accuracy(tmp_path):
    path = table(tmp_path, "arch,test_accuracy", [(A, "0.91"), (B, "0.88")])
    with pytest.raises(HwnasError, match="every test_accuracy is in 0-1 .*multiply the column by 100"):
        TableSource(path).values(SPACE, [SPACE.from_string(A)], "error")


def test_valid_table_gives_values_missing_rows_nan(tmp_path):
    path = table(tmp_path, "\ufeffarch,latency_ms", [(A, "2.5"), (B, "3")])  # a BOM is fine
    vals, prov = TableSource(path).values(SPACE, [SPACE.from_string(s) for s in (A, C, B)], "latency_ms")
    assert vals[0] == 2.5 and np.isnan(vals[1]) and vals[2] == 3.0
    assert prov == ["imported:table:t.csv", "missing:table t.csv", "imported:table:t.csv"]


def test_build_evaluator_fails_before_the_search_on_a_bad_value(tmp_path):
    acc = table(tmp_path, "arch,test_accuracy", [(A, "90"), (B, "80")], "acc.csv")
    lat = table(tmp_path, "arch,latency_ms", [(A, "2"), (B, "-1")], "lat.csv")
    spec = EvaluatorSpec(objectives=["error", "latency_ms@dev"], accuracy=f"table:{acc}", latency=[f"dev=table:{lat}"])
    with pytest.raises(HwnasError, match=r"lat.csv, line 3 .*must be > 0"):
        build_evaluator(SPACE, spec)


@pytest.mark.parametrize("objectives, constraints, latency, label", [
    (["error", "latency_ms"], [], ["table:{lat}"], "latency_ms@lat"),
    (["error", "latency_ms"], [], ["pixel2=table:{lat}"], "latency_ms@pixel2"),
    (["error", "latency_ms"], ["latency_ms<=5"], ["table:{lat}"], "latency_ms@lat"),
    (["error", "latency_ms"], ["latency_ms@pixel2<=5"], ["table:{lat}"], "latency_ms@pixel2"),
])
def test_single_device_shorthand(tmp_path, objectives, constraints, latency, label):
    acc = table(tmp_path, "arch,test_accuracy", [(A, "90"), (B, "80")], "acc.csv")
    lat = table(tmp_path, "arch,latency_ms", [(A, "2"), (B, "7")], "lat.csv")
    spec = EvaluatorSpec(objectives=objectives, constraints=constraints, accuracy=f"table:{acc}",
                         latency=[x.format(lat=lat) for x in latency])
    ev = build_evaluator(SPACE, spec)
    assert ev.objectives[1].label == label
    assert ev.evaluate([SPACE.from_string(A)])[0].tolist() == [10.0, 2.0]
    if constraints:
        assert ev.objectives[1].bound == 5


def test_shorthand_with_several_devices_asks_which(tmp_path):
    lat = table(tmp_path, "arch,latency_ms", [(A, "2")], "lat.csv")
    spec = EvaluatorSpec(objectives=["latency_ms", "latency_ms@b"], latency=[f"a=table:{lat}", f"b=table:{lat}"])
    with pytest.raises(HwnasError, match=r"several devices \(a, b\): name the one meant"):
        build_evaluator(SPACE, spec)
