
import numpy as np
import pytest
from pg_server import pg_server, pg_url  # noqa: F401  (a real PostgreSQL server for the store's tests)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own HWNAS_HOME so no test reads or writes the user's ~/.hwnas."""
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "hwnas_home"))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def shared_export_cache(tmp_path_factory):
    """A cache shared by slow tests in one run, so a TFLite conversion happens once: one directory for every
    xdist worker of the run (beside the workers' own base directories; hwnas.export.entry_lock makes a worker
    wait for an entry another one is converting instead of converting it again)."""
    base = tmp_path_factory.getbasetemp()
    if base.name.startswith("popen-gw"):  # an xdist worker: the run's directory holds every worker's
        shared = base.parent / "export_cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("export_cache")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny networks train and run fastest on one intra-op thread on a shared 2-core machine (several times
    faster than torch's default there); results do not depend on it (CPU training is deterministic per seed)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)



# The longest tests, longest first (seconds, serial run on a quiet 2-core machine, `pytest -n 0 --durations=80`,
# 2026-12-03). With pytest-xdist's load scheduling the first tests go out one per worker in turn, so these
# start at once, spread over the workers, and the short tests fill in behind them.
LONGEST_FIRST = (  # seconds: a quiet serial run / a doc page's chain measured on a loaded machine (2026-12-03)
    "tests/test_journeys.py::test_no_argument_demo_in_a_terminal",  # 83 (quick protocol)
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/profiling.md]",  # 66
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/supernet.md]",  # 62
    "tests/test_doc_examples.py::test_examples_run_as_typed[README.md#7]",  # 56 loaded (three reproduction recipes)
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/predictors.md#3]",  # 56 loaded
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/predictors.md#2]",  # 52 loaded
    "tests/test_graph_kernel_search.py::test_layer_kernels_equal_exported_onnx_kernels_for_50_random_archs",
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/ci-check.md]",  # 45
    "tests/test_journeys_cli.py::test_profile_fit_predict_then_search_on_the_predictor",  # 36
    "tests/test_journey_graph_kernel.py::test_profile_fit_graph_kernel_then_search_mobilenet_with_the_predictor",
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/search.md]",  # 35
    "tests/test_journeys.py::test_search_then_report_then_retrain",  # 30
    "tests/test_doc_examples.py::test_examples_run_as_typed[README.md#1]",  # 29 loaded
)


def pytest_collection_modifyitems(config, items):
    """The long tests first (``LONGEST_FIRST``, then the other journeys, then the other slow tests, then the
    rest, each group in file order). Under pytest-xdist's work stealing (``-n``, ``--dist worksteal`` in
    pyproject.toml) each of the k workers starts with an equal contiguous share of this list and an idle worker
    steals from the end of a busy one's: so the list is dealt into k shares, the long tests in turn (the
    longest to the share with the least of them so far), and each share starts with its long tests. The order
    changes no outcome: every test builds its own world (tmp_path, HWNAS_HOME)."""
    longest = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def rank(item):
        if item.nodeid in longest:
            return (0, longest[item.nodeid])
        if item.get_closest_marker("journey"):
            return (1, 0)
        return (2, 0) if item.get_closest_marker("slow") else (3, 0)

    ordered = sorted(items, key=rank)  # sorted() is stable: file order within a group
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers <= 1 or len(ordered) < workers:
        items[:] = ordered
        return
    shares = [ordered[k::workers] for k in range(workers)]  # dealt in turn: equal counts, long tests spread
    items[:] = [item for share in shares for item in share]
