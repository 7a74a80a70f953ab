
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
