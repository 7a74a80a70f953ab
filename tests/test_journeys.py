"""Journeys: the installed ``hwnas`` command run as a user types it (progress bar on), through a pipe as in a
CI log and under a pseudo-terminal, checked for what the user relies on: exit code, files, columns, provenance."""

from __future__ import annotations

import pytest
import yaml

from journeys import assert_search_results, run_hwnas

pytestmark = pytest.mark.journey


@pytest.mark.parametrize("mode", ["pipe", "tty"])
def test_demo_search_runs_to_the_end_with_the_progress_bar(tmp_path, mode):
    out = tmp_path / "run"
    ran = run_hwnas(["pareto-search", "--budget", "4", "--out", out], cwd=tmp_path, mode=mode).ok()
    assert "4 unique archs evaluated" in ran.text
    front, evals = assert_search_results(out, n_evals=4)
    assert all(r["error_source"].startswith("trained:digits(val") for r in evals)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["budget"] == 4
