"""Evaluation: the objective values of a batch of architectures, cached by arch id.

An objective is written ``NAME`` or ``NAME@DEVICE``:

==================== ========================================================= ======================
name                 what                                                      where it comes from
==================== ========================================================= ======================
``error``            100 - accuracy %                                          the accuracy source
``latency_ms@DEV``   latency on device DEV                                     DEV's cost source
``energy_mj@DEV``    energy per inference on DEV                               DEV's cost source
``peak_power_w@DEV`` largest power while it runs on DEV (sensor samples)         DEV's energy source
``params``           parameters                                                counted from the graph
``macs``             multiply-accumulates                                      counted from the graph
``peak_memory_bytes`` largest single-op activation footprint (float32)         counted from the graph
==================== ========================================================= ======================

A constraint is an objective with a bound, ``latency_ms@pixel2<=15``; it need not be an objective too.

Accuracy sources: ``table:FILE`` (CSV ``arch,test_accuracy``), ``proxy[:NAME]`` (a zero-cost proxy on a real
batch; the objective becomes ``neg_<proxy>``, because a proxy score is not an accuracy) and ``train[:DATASET]``
(real PyTorch training, see :mod:`hwnas.accuracy.training`). Device cost sources: ``table:FILE`` (CSV ``arch,latency_ms``
and/or ``energy_mj`` / ``peak_power_w``), ``predictor`` (a trained latency predictor, ``hwnas.predictors.load_predictor``) and
``measure`` (profile on the device in the loop, stored in the measurement store).

Every value carries its provenance (``Evaluation.sources``): ``imported:table:FILE``, ``proxy:naswot(digits,64)``,
``trained:digits(3 epochs, seed 0)``, ``predicted:<predictor>@DEV``, ``measured:<runtime> <version>@DEV``,
``counted:graph``.

The budget of a search counts **unique** architectures: ``evaluate`` serves duplicates (within a batch and
across calls) from the cache. Results known from a checkpoint (``preload``) are served without recomputation
and count once the search asks for them, so a resumed search replays to exactly the same state.

Modules: ``objectives`` (grammar, violation), ``sources/`` (one module per source, ``SOURCES`` +
``create_source``), ``executors`` (in-process, Ray), ``evaluator`` (``ArchEvaluator``), ``checkpoint`` (the
evaluations log), ``factory`` (``EvaluatorSpec``, ``build_evaluator``).
"""

from __future__ import annotations

from .checkpoint import append_log, read_log
from .evaluator import ArchEvaluator
from .executors import InProcessExecutor, RayExecutor, create_executor
from .factory import EvaluatorSpec, build_evaluator, split_device_specs
from .objectives import OBJECTIVE_NAMES, parse_constraint, parse_objective, violation_of
from .sources import (
    PROXIES, SOURCES, CountSource, MeasureSource, MissingArchError, PredictorSource, ProxySource, TableSource,
    TrainSource, create_source,
)

__all__ = [
    "OBJECTIVE_NAMES", "PROXIES", "parse_objective", "parse_constraint", "violation_of", "SOURCES", "create_source",
    "TableSource", "ProxySource", "TrainSource", "PredictorSource", "MeasureSource", "CountSource",
    "ArchEvaluator", "EvaluatorSpec", "build_evaluator", "split_device_specs", "InProcessExecutor",
    "RayExecutor", "create_executor", "read_log", "append_log", "MissingArchError",
]
