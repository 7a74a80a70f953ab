
import numpy as np
import pytest


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
    """A cache shared by slow tests in one session, so a TFLite conversion happens once."""
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


def pytest_collection_modifyitems(config, items):
    """The long tests first: the journeys (each runs the installed command end to end, tens of seconds), then the
    other slow ones, then the rest, each group in file order. With pytest-xdist (`-n`, set in pyproject.toml) the
    short tests then fill in behind them, so the run ends when its work does, not when a long test started last
    does. The order does not change any outcome: every test builds its own world (tmp_path, HWNAS_HOME)."""
    def rank(item):
        if item.get_closest_marker("journey"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items[:] = sorted(items, key=rank)  # sorted() is stable: file order within a group
