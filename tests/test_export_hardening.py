"""Issue 18 items 7 and 8: cells that compute a constant are refused before any export or worker; the export
cache records a SHA-256 per entry, verifies it on use, rebuilds a bad entry and sweeps stale partials."""

import os
import time

import numpy as np
import pytest

import hwnas.export as export
from hwnas.evaluation import EvaluatorSpec, build_evaluator
from hwnas.export import ExportError, ExportSettings, export_arch
from hwnas.fileio import sha256_file
from hwnas.measure.campaign import measure_archs
from hwnas.measure.device_profile import load_profile
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
# node 3 reads only node 2, which reads only node 1, which gets nothing: no path input -> output
NO_PATH_CELL = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|"


@pytest.fixture
def space():
    return create_space("nb201", C=4, N=1)


def test_export_refuses_a_cell_that_computes_a_constant(space, tmp_path):
    for text in (NO_PATH_CELL, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"):
        with pytest.raises(ExportError, match="computes a constant: no path from input to output"):
            export_arch(space, space.from_string(text), ExportSettings(), cache_dir=tmp_path)
    assert not any(tmp_path.rglob("*.onnx"))


class SpyRunner:
    def __init__(self):
        self.calls = 0

    def reachable(self, profile):
        return True, "spy"

    def run(self, *a, **kw):
        self.calls += 1
        raise AssertionError("no worker may run for a constant cell")


def test_profile_marks_no_path_cells_failed_without_running_them(space, tmp_path):
    spy = SpyRunner()
    store = MeasurementStore(tmp_path / "m.db")
    errors = []
    out = measure_archs(space, [space.from_string(NO_PATH_CELL)], load_profile("host"), store, runner=spy,
                        cache_dir=tmp_path / "cache", on_error=lambda a, m: errors.append(m))
    assert out == [] and errors == ["no path from input to output"] and spy.calls == 0
    assert not (tmp_path / "cache").exists()  # nothing exported


def test_search_marks_no_path_cells_failed(space, monkeypatch):
    import hwnas.measure.runners.local as local

    monkeypatch.setattr(local, "ModelWorker", lambda *a, **kw: pytest.fail("a worker was started"))
    ev = build_evaluator(space, EvaluatorSpec(objectives=["latency_ms@host", "params"], latency=["measure"]))
    F = ev.evaluate([space.from_string(NO_PATH_CELL)])
    assert np.isnan(F[0, 0])
    assert ev.evaluations()[0].sources[0] == "failed:no path from input to output"


def _entry(space, cache):
    path = export_arch(space, space.from_string(CELL), ExportSettings(), cache_dir=cache)
    return path, path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "zero-byte", "swapped", "no digest"])
def test_a_damaged_cache_entry_is_rebuilt_not_used(space, tmp_path, damage):
    cache = tmp_path / "cache"
    path, good = _entry(space, cache)
    digest = path.with_name(path.name + ".sha256")
    assert digest.read_text().split()[0] == sha256_file(path)
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "zero-byte":
        path.write_bytes(b"")
    elif damage == "swapped":
        other = export_arch(space, space.from_index(5), ExportSettings(), cache_dir=cache)
        path.write_bytes(other.read_bytes())
    else:
        digest.unlink()
    out = tmp_path / "copy.onnx"
    export_arch(space, space.from_string(CELL), ExportSettings(), cache_dir=cache, out=out)
    assert sha256_file(path) == digest.read_text().split()[0]
    assert out.read_bytes() == path.read_bytes() and len(out.read_bytes()) > 1000
    from hwnas.runtimes import open_session

    assert open_session(out).run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)


def test_stale_partials_are_swept_fresh_ones_kept(space, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path, _ = _entry(space, cache)
    d = path.parent
    stale = [d / f".{path.name}.abc123.part", d / f".{path.name}.abc123.part.q.tflite"]
    fresh = d / f".{path.name}.zzz999.part"
    for p in (*stale, fresh):
        p.write_bytes(b"half")
    old = time.time() - export.STALE_PART_S - 60
    for p in stale:
        os.utime(p, (old, old))
    monkeypatch.setattr(export, "_swept", set())  # a new process
    export_arch(space, space.from_string(CELL), ExportSettings(), cache_dir=cache)
    assert not any(p.exists() for p in stale) and fresh.exists() and path.exists()


def test_an_entry_being_exported_elsewhere_is_waited_for_and_reused(space, tmp_path, monkeypatch):
    """Two exporters of one arch (two profiles, two search workers) at once: the second waits for the first's
    entry and reuses it; it neither converts again nor deletes the file being written (the old code did both:
    it found no valid entry, unlinked it and exported)."""
    import threading

    arch, settings, cache = space.from_string(CELL), ExportSettings(), tmp_path / "cache"
    cached = export.cached_export_path(space, arch, settings, cache)
    calls = []
    monkeypatch.setattr(export, "export_model", lambda model, shape, path, *a, **k: calls.append(path))
    with export.entry_lock(cached):  # the first exporter, converting
        waiting = threading.Thread(target=export_arch, args=(space, arch, settings), kwargs={"cache_dir": cache})
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and calls == []  # the second waits instead of converting
        cached.write_bytes(b"the first exporter's model")
        export._digest_path(cached).write_text(f"{sha256_file(cached)}  {cached.name}\n")
    waiting.join(timeout=30)
    assert not waiting.is_alive() and calls == []  # ... and reused the entry
    assert cached.read_bytes() == b"the first exporter's model"
