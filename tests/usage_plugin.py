"""Per-test wall and CPU seconds (the test's process and the commands it waited for), for ordering LONGEST_FIRST in
tests/conftest.py and finding tests that wait instead of work: ``.venv/bin/python -m pytest -p usage_plugin``
appends one JSON line per test to ``$HWNAS_TEST_USAGE`` (default /tmp/hwnas-test-usage-<worker>.jsonl)."""

from __future__ import annotations

import json
import os
import resource
import time

import pytest


def _cpu_s() -> float:
    own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0, c0 = time.monotonic(), _cpu_s()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = os.environ.get("HWNAS_TEST_USAGE") or f"/tmp/hwnas-test-usage-{worker}.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps({"id": item.nodeid, "wall_s": time.monotonic() - t0, "cpu_s": _cpu_s() - c0}) + "\n")
