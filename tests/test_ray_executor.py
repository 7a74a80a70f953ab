"""The Ray executor against real Ray (a local cluster of 2 CPUs) when Ray is installed; skipped otherwise
(the stand-in test in test_evaluation.py covers the code path without it). Install: pip install -e '.[ray]'."""

import numpy as np
import pytest

from hwnas.evaluation import EvaluatorSpec, build_evaluator, create_executor
from hwnas.search import make_config, run_search
from hwnas.spaces import create_space

from search_fixtures import write_nb201_tables

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def test_search_through_real_ray_equals_in_process(local_ray, tmp_path):
    acc, lat = write_nb201_tables(tmp_path)
    small = create_space("nb201", C=4, N=1)
    spec = EvaluatorSpec(objectives=["error", "params"], accuracy=f"table:{acc}")
    archs = [small.from_index(i) for i in (1, 2, 3, 500)]
    on_ray = build_evaluator(small, spec, executor=create_executor("ray")).evaluate(archs)
    here = build_evaluator(small, spec).evaluate(archs)
    assert np.array_equal(on_ray, here) and list(on_ray[:, 1]) == [small.static_costs(a).params for a in archs]
    cfg = make_config({}, {"space": "nb201", "space_opt": ["C=4", "N=1"], "objective": ["error", "params"],
                           "accuracy": f"table:{acc}", "strategy": "random", "budget": 12, "seed": 0,
                           "executor": "ray"})
    result = run_search(cfg, tmp_path / "run")
    assert len(result.evaluations) == 12 and result.config["executor"] == "ray"


def test_a_free_worker_starts_the_next_item_while_an_earlier_one_runs(local_ray):
    """Two workers, a slow first item: the next items start on the free worker before it ends (the window does
    not wait for results in order), and the results still come back in the items' order."""
    from hwnas.evaluation.executors import RayExecutor

    def _timed(seconds):  # defined here, so Ray ships it by value (the tests folder is no module on a worker)
        import time

        start = time.time()
        time.sleep(seconds)
        return seconds, start, time.time()

    items = [3.0, 0.01, 0.02, 0.03]
    out = list(RayExecutor(workers=2).map(_timed, items))
    assert [o[0] for o in out] == items
    assert out[2][1] < out[0][2] and out[3][1] < out[0][2]


def test_mobo_batch_follows_workers():
    """Issue 26: with `workers` set and no `batch_size`, mobo's q is a multiple of workers (near its default 10)."""
    from hwnas.search.run import batch_for_workers

    def q(workers, opts=None, strategy="mobo"):
        cfg = make_config({}, {"workers": workers, "executor": "ray", "strategy_opt": opts or []})
        return batch_for_workers(cfg, strategy).get("batch_size")

    assert [q(w) for w in (None, 1, 2, 3, 4, 16)] == [None, 10, 10, 9, 8, 16]
    assert q(4, ["batch_size=3"]) == 3 and q(4, strategy="nsga2") is None


def test_pareto_search_on_ray_with_workers_equals_in_process(tmp_path):
    """Issue 26 journey: `hwnas pareto-search --executor ray --workers 2` (a local Ray of 2 CPUs, mobo proposing
    batches of 10 run 2 at a time) writes the same evaluations.csv as the in-process run."""
    from journeys import run_hwnas

    acc, _ = write_nb201_tables(tmp_path)
    base = ["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--objective", "error",
            "--objective", "params", "--accuracy", f"table:{acc}", "--strategy", "mobo", "--strategy-opt",
            "n_init=6", "--budget", "16", "--seed", "3", "--no-progress"]
    here = run_hwnas([*base, "--out", str(tmp_path / "here")], cwd=tmp_path, timeout=60)
    ray_run = run_hwnas([*base, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"],
                        cwd=tmp_path, timeout=120)
    assert here.rc == 0 and ray_run.rc == 0, ray_run.text
    same = (tmp_path / "here/evaluations.csv").read_text() == (tmp_path / "ray/evaluations.csv").read_text()
    assert same and len((tmp_path / "ray/evaluations.csv").read_text().splitlines()) == 17
