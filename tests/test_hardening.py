"""Issue 18 (part B): every bad input is one line and exit 2; runs never race or poison their directory."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.search import DEFAULT_RECIPE, config_from_flags, make_config, run_search
from hwnas.store import Measurement, MeasurementStore, StoreError

from search_fixtures import table_args, write_nb201_tables

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
LATIN1 = b"arch,latency_ms\n" + CELL.encode() + b",1.0\n\xe9t\xe9,2\n"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


def table_flags(tables, budget=12):
    return table_args(tables, budget=budget, population=6)


def table_config(tables, **extra):
    acc, lat = tables
    return make_config({"objective": ["error", "latency_ms@dev"], "accuracy": f"table:{acc}",
                        "latency": [f"dev=table:{lat}"], "budget": 12, "strategy_opt": {"population_size": 6},
                        **extra})


def one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


# -- item 5: one run per results directory; concurrent profiles store each measurement once ----------------
def test_second_run_into_a_locked_directory_fails_at_once(tables, tmp_path, capsys):
    from hwnas.search.run import run_lock

    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out):  # another run holds the directory
        rc = main([*table_flags(tables), "--out", str(out)])
    one_line_error(capsys, rc, "in use by another hwnas run")
    assert not (out / "config.yaml").exists() and not (out / "evaluations.jsonl").exists()
    assert main([*table_flags(tables), "--out", str(out)]) == 0  # free again: the run goes ahead


_ADDER = """
import sys, time
from hwnas.store import Measurement, MeasurementStore
st = MeasurementStore(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
for i in range(40):
    st.add(Measurement(space="nb201", arch_id=f"a{i}", arch=f"a{i}", device="d", runtime="onnxruntime",
                       runtime_version="1", settings={"t": 1}, source="measured", latency_ms=1.0 + i), if_absent=True)
"""


def test_two_processes_storing_the_same_measurements_store_each_once(tmp_path):
    db = tmp_path / "m.db"
    MeasurementStore(db).close()
    start = time.time() + 3.0  # both start their inserts at the same moment
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path])}
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER, str(db), str(start)], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(MeasurementStore(db)) == 40


def test_if_absent_keeps_explicit_re_profiles_appending(tmp_path):
    st = MeasurementStore(tmp_path / "m.db")
    m = dict(space="nb201", arch_id="a", arch="a", device="d", runtime="r", runtime_version="1", settings={},
             source="measured", latency_ms=1.0)
    first = st.add(Measurement(**m), if_absent=True)
    assert st.add(Measurement(**m), if_absent=True) == first and len(st) == 1
    st.add(Measurement(**m))  # a deliberate re-profile (skip_measured=False) still appends
    assert len(st) == 2


# -- item 6: a refused start leaves nothing behind -------------------------------------------------------
def test_a_start_that_fails_before_evaluating_leaves_no_config(tables, tmp_path, monkeypatch):
    from hwnas.strategies.random_search import RandomSearch

    out = tmp_path / "run"

    def refuse(self, *a, **k):
        raise HwnasError("refused")

    with monkeypatch.context() as m:
        m.setattr(RandomSearch, "run", refuse)
        with pytest.raises(HwnasError, match="refused"):
            run_search(table_config(tables, strategy="random", strategy_opt={}), out)
    assert not out.exists()  # nothing that poisons a later run or --resume
    run_search(table_config(tables, strategy="random", strategy_opt={}), out)
    assert (out / "config.yaml").is_file()


def test_bad_strategy_value_is_refused_before_the_directory_is_made(tables, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main([*table_flags(tables), "--strategy-opt", "population_size=abc", "--out", str(out)])
    one_line_error(capsys, rc, "--strategy-opt population_size='abc': must be a number")
    assert not out.exists()


# -- item 9: ci-check's --budget-s bounds a hanging model --------------------------------------------------
class _HangingWorker:
    """Behaves like ModelWorker on a model whose inference never returns: every wait ends at timeout_s."""

    def __init__(self, timeout_s, hang_on_load=False):
        from hwnas.measure.runners.worker import WorkerCrashed

        self.timeout_s, self.first_inference_ms, self.info = timeout_s, 1.0, {"runtime": "fake", "version": "0"}
        self._crash = WorkerCrashed
        if hang_on_load:
            self.time(1)

    def time(self, n):
        time.sleep(self.timeout_s)
        raise self._crash(f"worker did not answer within {self.timeout_s:.0f} s")

    def close(self, kill=False):
        pass


@pytest.mark.parametrize("hang_on_load", [False, True])
def test_budget_bounds_the_wall_time_of_a_hanging_model(monkeypatch, hang_on_load, tmp_path):
    import numpy as np

    from hwnas.ci import ab
    from hwnas.measure.device_profile import load_profile
    from hwnas.measure.runners.worker import WorkerCrashed

    monkeypatch.setattr(ab, "_open_worker", lambda path, device, seed, timeout_s=300.0, reference=None, input_shape=None:
                        _HangingWorker(timeout_s, hang_on_load))
    ms = ab.MeasureSettings(budget_s=1.0, startup_s=1.0)
    t0 = time.perf_counter()
    with pytest.raises(WorkerCrashed, match=r"no result within budget_s 1 s"):
        ab.measure(tmp_path / "a.onnx", tmp_path / "b.onnx", load_profile("host"), ms, np.random.default_rng(0))
    assert time.perf_counter() - t0 < 1.0 + 1.0 + 1.5


# -- item 10: the remaining tracebacks ---------------------------------------------------------------------
def test_non_utf8_import_file(tmp_path, capsys):
    (tmp_path / "l.csv").write_bytes(LATIN1)
    rc = main(["import", "latency", str(tmp_path / "l.csv"), "--device", "d"])
    one_line_error(capsys, rc, "is not UTF-8 text", "line 3")


def test_non_utf8_predict_archs(tmp_path, capsys):
    (tmp_path / "l.csv").write_bytes(LATIN1)
    rc = main(["predict", "--device", "host", "--archs", str(tmp_path / "l.csv"), "--out", str(tmp_path / "p.csv")])
    # the arch file is read before the predictor is looked up: a UTF-8 file would exit 2 too ("no latency predictor")
    one_line_error(capsys, rc, "arch file", "is not UTF-8 text (byte 0xe9 on line 3)")


def test_non_utf8_ci_check_arch_file(tmp_path, capsys):
    (tmp_path / "l.csv").write_bytes(LATIN1)
    rc = main(["ci-check", "--space", "nb201", "--archs", str(tmp_path / "l.csv"),
               "--update-baseline", str(tmp_path / "b.json")])
    one_line_error(capsys, rc, "is not UTF-8 text")


def test_unquoted_genes_in_import_csv(tmp_path, capsys):
    (tmp_path / "g.csv").write_text("arch,latency_ms\ngenes:0,1,2,3,4,0,1.5\n")
    rc = main(["import", "latency", str(tmp_path / "g.csv"), "--device", "d"])
    one_line_error(capsys, rc, "line 2", 'quote arch strings that contain commas')


@pytest.mark.parametrize("argv, needle", [
    (["--space-opt", "C=abc"], "--space-opt C='abc': must be a number"),
    (["--strategy-opt", "population_size=ten"], "--strategy-opt population_size='ten'"),
])
def test_non_numeric_search_options(tables, tmp_path, capsys, argv, needle):
    rc = main([*table_flags(tables), *argv, "--out", str(tmp_path / "r")])
    one_line_error(capsys, rc, needle)


def test_non_numeric_space_opt_of_export(tmp_path, capsys):
    rc = main(["export", "--arch", CELL, "--space-opt", "C=abc", "--out", str(tmp_path / "x.onnx")])
    one_line_error(capsys, rc, "--space-opt C='abc'")


def test_hwnas_home_that_is_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "home").write_text("not a directory")
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "home"))
    (tmp_path / "ok.csv").write_text(f"arch,latency_ms\n{CELL},1.0\n")
    rc = main(["import", "latency", str(tmp_path / "ok.csv"), "--device", "d"])
    one_line_error(capsys, rc, "cannot create the store directory")


def test_out_on_a_read_only_file_system(tables, tmp_path, monkeypatch, capsys):
    real_mkdir = os.mkdir

    def read_only(path, *a, **k):
        if "ro-fs" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", read_only)
    rc = main([*table_flags(tables), "--out", str(tmp_path / "ro-fs")])
    one_line_error(capsys, rc, "Read-only file system")


def test_oserror_anywhere_is_one_line(monkeypatch, capsys):
    import hwnas.cli.spaces_cmd as spaces_cmd  # noqa: F401 - any command: the net is in main

    def boom(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/x")

    monkeypatch.setattr("hwnas.spaces.create_space", boom)
    rc = main(["spaces"])
    one_line_error(capsys, rc, "Permission denied: /x")


def _page_corrupted_store(path: Path) -> None:
    st = MeasurementStore(path)
    for i in range(300):
        st.add(Measurement(space="nb201", arch_id=f"a{i}", arch="x" * 200, device="d", runtime="r",
                           runtime_version="1", settings={}, source="measured", latency_ms=1.0 + i))
    st._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    st.close()
    data = bytearray(path.read_bytes())
    data[4096 + 100: 4096 * 8] = os.urandom(4096 * 7 - 100)  # pages 2..8 garbled, the header page intact
    path.write_bytes(bytes(data))


def test_page_corrupted_store(tmp_path, capsys):
    db = tmp_path / "m.db"
    _page_corrupted_store(db)
    with pytest.raises(StoreError, match="is damaged|not a hwnas"):
        MeasurementStore(db).query(device="d")
    rc = main(["export-measurements", "--device", "d", "--out", str(tmp_path / "o.csv"), "--store", str(db)])
    one_line_error(capsys, rc, str(db))


@pytest.mark.parametrize("name, content", [
    ("config.yaml", b"space: [unclosed\n  - {"),
    ("config.yaml", b"\xff\xfe\x00garbage"),
    ("config.yaml", b"- just\n- a list\n"),
    ("evaluations.jsonl", b"\x89PNG\r\n\x1a\n\xff\xff"),
])
def test_garbled_run_directory_on_resume(tables, tmp_path, capsys, name, content):
    out = tmp_path / "run"
    assert main([*table_flags(tables, budget=6), "--out", str(out)]) == 0
    capsys.readouterr()
    (out / name).write_bytes(content)
    rc = main(["pareto-search", "--resume", str(out), "--no-progress"])
    one_line_error(capsys, rc, "is damaged")


def test_ci_check_baseline_given_a_model_file(tmp_path, capsys):
    (tmp_path / "base.onnx").write_bytes(b"\x08\x07\x12\x07pytorch\xff\xfe\x00" * 10)
    rc = main(["ci-check", CELL, "--space", "nb201", "--baseline", str(tmp_path / "base.onnx")])
    one_line_error(capsys, rc, "not valid JSON", "--update-baseline")


@pytest.mark.parametrize("recipe, expect", [("max_train: abc\n", "max_train must be an integer"),
                                            ("download: [1]\n", "download must be true or false")])
def test_recipe_values_of_the_wrong_type(tmp_path, capsys, recipe, expect):
    (tmp_path / "r.yaml").write_text(recipe)
    rc = main(["pareto-search", "--recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "r")])
    one_line_error(capsys, rc, expect)


def test_recipe_download_no_is_false():
    assert make_config({"download": "no"}).download is False
    assert make_config({"download": "yes"}).download is True


# -- item 11: flags given alone modify the embedded default ---------------------------------------------
def _flags(**given):
    names = ("space", "space_opt", "strategy", "strategy_opt", "objective", "constraint", "accuracy", "latency",
             "energy", "budget", "seed")
    return {k: given.get(k) for k in names}


def test_flags_alone_modify_the_default_run():
    full = config_from_flags(_flags())
    cfg = config_from_flags(_flags(budget=8, seed=0))
    assert cfg.budget == 8 and cfg.seed == 0
    assert {**cfg.to_dict(), "budget": full.budget} == full.to_dict()  # everything else is the default
    assert cfg.space_opt == DEFAULT_RECIPE["space_opt"] and cfg.accuracy == "train" and cfg.epochs == DEFAULT_RECIPE["epochs"]
    opt = config_from_flags(_flags(strategy_opt=["n_offsprings=4"]))
    assert opt.strategy_opt == {**DEFAULT_RECIPE["strategy_opt"], "n_offsprings": 4}  # merged, not replaced


def test_flags_that_change_the_problem_drop_the_defaults_tied_to_it(tables):
    cfg = config_from_flags(_flags(space="mobilenet"))
    assert cfg.space == "mobilenet" and cfg.space_opt == {}
    cfg = config_from_flags(_flags(objective=["error", "latency_ms@dev"], latency=["dev=table:x.csv"]))
    assert cfg.objective == ["error", "latency_ms@dev"] and len(cfg.latency) == 1


def test_default_with_budget_and_seed_gets_past_the_cost_source(tmp_path, monkeypatch, capsys):
    from hwnas.strategies.nsga2 import NSGA2Search

    seen = {}

    def stop(self, space, evaluator, budget, rng, callback=None):  # the run is valid: stop before training
        seen["budget"] = budget
        raise KeyboardInterrupt

    monkeypatch.setattr(NSGA2Search, "run", stop)
    rc = main(["pareto-search", "--budget", "8", "--seed", "0", "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 130 and seen == {"budget": 8}, capsys.readouterr().err


# -- item 12: the minor ones -------------------------------------------------------------------------------
def test_explicit_store_in_a_missing_directory_is_refused(tmp_path, capsys):
    (tmp_path / "ok.csv").write_text(f"arch,latency_ms\n{CELL},1.0\n")
    rc = main(["import", "latency", str(tmp_path / "ok.csv"), "--device", "d",
               "--store", str(tmp_path / "no" / "such" / "m.db")])
    one_line_error(capsys, rc, "does not exist")
    assert not (tmp_path / "no").exists()


def test_propose_pool_zero(tmp_path, capsys):
    rc = main(["propose", "--device", "host", "--k", "2", "--pool", "0", "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err  # click's usage message
    assert rc == 2 and "Traceback" not in err and "Invalid value for '--pool'" in err


def test_export_measurements_source_is_validated(tmp_path, capsys):
    rc = main(["export-measurements", "--device", "d", "--out", str(tmp_path / "o.csv"), "--source", "bogus"])
    one_line_error(capsys, rc, "--source 'bogus'")


def test_utf8_bom_header_is_accepted(tmp_path, capsys):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfarch,latency_ms\r\n" + CELL.encode() + b",1.0\r\n")
    assert main(["import", "latency", str(tmp_path / "bom.csv"), "--device", "d"]) == 0
    assert "imported 1 measurements" in capsys.readouterr().out


def test_re_importing_the_same_file_adds_nothing(tmp_path, capsys):
    (tmp_path / "ok.csv").write_text(f"arch,latency_ms\n{CELL},1.0\n")
    argv = ["import", "latency", str(tmp_path / "ok.csv"), "--device", "d"]
    assert main(argv) == 0 and main(argv) == 0
    assert "already imported" in capsys.readouterr().out
    assert len(MeasurementStore()) == 1
    (tmp_path / "ok.csv").write_text(f"arch,latency_ms\n{CELL},2.0\n")  # a changed file is new data
    assert main(argv) == 0 and len(MeasurementStore()) == 2
