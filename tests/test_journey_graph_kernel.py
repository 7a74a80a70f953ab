"""Journey (issue 24 gap 2): profile a few mobilenet subnets on the host, fit the graph-kernel predictor (and
auto), search mobilenet with `--latency host=predictor`, as docs/predictors.md types it (progress bar on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeys import assert_search_results, run_hwnas

pytestmark = pytest.mark.journey

SPACE = ["--space", "mobilenet", "--space-opt", "input_size=32", "--space-opt", "width_mult=0.25",
         "--space-opt", "num_classes=10"]


def test_profile_fit_graph_kernel_then_search_mobilenet_with_the_predictor(tmp_path):
    run_hwnas(["profile", "--device", "host", *SPACE, "--n", "6", "--quick", "--max-time-s", "0.3",
               "--reference", "none"], cwd=tmp_path).ok()
    fit = run_hwnas(["fit-predictor", "--device", "host", "--kind", "graph-kernel"], cwd=tmp_path).ok()
    assert "wrote latency_models/host/graph-kernel/" in fit.text
    card = json.loads((tmp_path / "latency_models/host/graph-kernel/card.json").read_text())
    # auto on 6 subnets fits a space-specific model that has not seen every op of the 45-gene space
    run_hwnas(["fit-predictor", "--device", "host", "--space", "mobilenet"], cwd=tmp_path).ok()
    ran = run_hwnas(["pareto-search", *SPACE, "--latency", "host=predictor", "--accuracy", "proxy:synflow",
                     "--strategy", "random", "--budget", "4", "--seed", "0", "--out", "runs/gk"],
                    cwd=tmp_path, mode="tty").ok()
    assert "no latency predictor" not in ran.text and "never occurred" not in ran.text
    front, evals = assert_search_results(Path(tmp_path, "runs/gk"), n_evals=4)
    want = f"predicted:graph-kernel {card['training']['data_hash']}@host"
    assert {r["latency_ms@host_source"] for r in evals} == {want}
    assert all(float(r["latency_ms@host"]) > 0 for r in evals)
