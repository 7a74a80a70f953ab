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
