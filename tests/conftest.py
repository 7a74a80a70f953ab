import os
import signal

import numpy as np
import pytest
from pg_server import pg_server, pg_url  # noqa: F401  (a real PostgreSQL server for the store's tests)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """``-n logical`` (pyproject.toml): one worker more than the CPUs this process may use (``--maxprocesses=4``
    caps it). About an eighth of the tests' wall time is not this process's CPU nor its finished children's
    (Ray start-ups and daemons, fake phones' sleeps, background agents; ``-p usage_plugin``, tests/usage_plugin.py);
    one more worker fills those waits: a quiet full run on 2 CPUs took 655 s with 2 workers, 572 s with 3
    (2026-12-04). ``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` still sets N."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return len(os.sched_getaffinity(0)) + 1


def pytest_configure(config):
    """The Ctrl-C journeys send SIGINT as a terminal does, to a command a terminal starts with SIGINT at its
    default. A test run started in the background of a script (``cmd &``: POSIX shells ignore SIGINT there) passes
    "ignored" on to every command it starts, which would then run to the end; handling SIGINT here makes each
    command start with the default again (an ignored signal stays ignored across exec, a handled one does not)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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



# The longest tests, longest first (seconds of wall time in a full run, 3 workers on this quiet 2-core machine,
# measured per test with `-p usage_plugin`: tests/usage_plugin.py, 2026-12-04). With pytest-xdist's load scheduling the
# first tests go out one per worker in turn, so these start at once, spread over the workers, and the short tests fill
# in behind them.
LONGEST_FIRST = (
    "tests/test_journeys.py::test_no_argument_demo_in_a_terminal",  # 86
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/profiling.md]",  # 86
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/predictors.md#3]",  # 59
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/supernet.md]",  # 56
    "tests/test_doc_examples.py::test_examples_run_as_typed[README.md#7]",  # 55
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/ci-check.md]",  # 50
    "tests/test_moasha.py::test_journey_moasha_resume_reproduces_an_unbroken_run",  # 41
    "tests/test_lab.py::test_devices_on_real_ray_each_on_its_own_resource",  # 41
    "tests/test_journey_graph_kernel.py::test_profile_fit_graph_kernel_then_search_mobilenet_with_the_predictor",  # 40
    "tests/test_journeys_cli.py::test_profile_fit_predict_then_search_on_the_predictor",  # 31
    "tests/test_report_browser.py::test_measured_latency_beside_predicted",  # 29
    "tests/test_lab_journey.py::test_kill_9_loses_nothing_stored_and_a_rerun_resumes",  # 28
    "tests/test_predictors_tflite.py::test_graph_kernel_fits_from_stored_benchmark_model_op_profiles",  # 26
    "tests/test_ray_executor.py::test_pareto_search_on_ray_with_workers_equals_in_process",  # 25
    "tests/test_journeys.py::test_demo_search_runs_to_the_end_with_the_progress_bar_in_a_pipe",  # 23
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/predictors.md#2]",  # 23
    "tests/test_journeys.py::test_search_then_report_then_retrain",  # 21
    "tests/test_doc_examples.py::test_examples_run_as_typed[docs/search.md]",  # 20
    "tests/test_lab_journey.py::test_executor_ray_places_each_device_on_its_own_resource",  # 19
    "tests/test_journeys_supernet.py::test_supernet_train_ctrl_c_then_resume_ends_with_the_unbroken_weights",  # 19
    "tests/test_report_browser.py::test_hover_and_click_a_pareto_point",  # 18
    "tests/test_graphs.py::test_ci_check_input_shape_resolves_a_dynamic_h_w",  # 17
    "tests/test_lab_journey.py::test_many_devices_one_command_a_lost_one_reported_then_resumed",  # 17
    "tests/test_export.py::test_mobilenet_export_runs_and_matches_torch[tflite]",  # 17
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
