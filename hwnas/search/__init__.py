"""Running a search end to end: resolve a configuration (recipe + flags), run a strategy with checkpoints,
write the results directory. The CLI (``hwnas pareto-search``) is a thin layer over ``run_search``.

Results directory::

    config.yaml          the fully resolved configuration (``--resume`` reads it); written once every setting
                         is checked, and removed again if the run fails before its first evaluation
    .hwnas.lock          held (flock) by the run using the directory: a second run into it fails at once
    evaluations.jsonl    every unique evaluation, appended the moment it is computed (the checkpoint)
    checkpoint.json      status (running | interrupted | finished), step, n_evals: rewritten every generation
    evaluations.csv      every unique arch in evaluation order, objectives + how each value was obtained
    history.csv          one row per generation: step, n_evals, hypervolume, front_size
    pareto.csv           the feasible non-dominated archs, objectives + provenance
    pareto.png           the front per objective pair (all evaluated points faint)
    report.html          a self-contained interactive report (inline SVG + script, its data embedded: offline)

Modules: ``config`` (typed ``SearchConfig``, recipes), ``run`` (build, run, resume), ``results`` (the files,
``load_result``), ``report`` (pareto.png, report.html; its data and script: ``report_data``), ``compare``
(several runs on one page: ``hwnas report RUN_A RUN_B --out compare.html``).
"""

from __future__ import annotations

from .config import (DEFAULT_RECIPE, PROBLEM_KEYS, SearchConfig, check_option_types, config_from_flags,
                     default_config, default_latency_source, fill_cost_defaults, host_cost_source, load_recipe,
                     make_config)
from .report import write_report
from .results import LOG_NAME, load_result, write_results
from .run import build, prepare_out, resume_config, run_search

__all__ = ["DEFAULT_RECIPE", "PROBLEM_KEYS", "SearchConfig", "check_option_types", "config_from_flags",
           "default_config", "default_latency_source", "fill_cost_defaults", "host_cost_source", "load_recipe",
           "make_config",
           "write_report", "LOG_NAME", "load_result", "write_results", "build", "prepare_out", "resume_config",
           "run_search"]
