"""A device lab: the same archs measured on several devices at once, one worker per device.

``profile_lab`` runs one thread per device (``measure_devices_here``) or one Ray actor per device
(``measure_devices_on_ray``). Each device gets the same archs in the same order, so a partial run gives
comparable columns, and measures them one after another: a device is never shared by two measurements. Each
device resumes from the store on its own (``measure_archs`` skips what the store holds). A device that drops
off (``DeviceUnreachable``: adb lost it, its agent is down) is retried after a pause that doubles each time
(``RetryPolicy``), resuming where it stopped; after the last try it is reported failed and the others go on.

Events go to ``on_event(device, kind, info)``: ``start`` (info: the arch count), ``measured`` / ``skipped`` /
``failed`` (one arch; info: the measurement or the reason), ``retry`` (info: (try, tries, wait_s, reason)) and
``end`` (info: the ``DeviceRun``). Each arch counts once, however often its device was retried.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import HwnasError, ParametersError
from ..ray_cluster import init_ray
from .campaign import measure_archs
from .protocol import DeviceUnreachable


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per device (the first included) and the pause before each retry: ``first_wait_s``, doubling, at
    most ``max_wait_s``."""

    tries: int = 3
    first_wait_s: float = 2.0
    max_wait_s: float = 60.0

    def wait_s(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1, 2, ...)."""
        return min(self.first_wait_s * 2 ** (retry - 1), self.max_wait_s)


@dataclass
class DeviceRun:
    """One device's outcome: per-arch outcomes (arch id -> measured / skipped / failed), tries, the error that
    stopped it (None when it finished its list)."""

    device: str
    total: int
    outcomes: dict = field(default_factory=dict)
    tries: int = 0
    error: str | None = None
    results: list = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(v == kind for v in self.outcomes.values())

    @property
    def ok(self) -> bool:
        """It finished its list and something is in the store for it (measured now or before)."""
        return self.error is None and self.count("measured") + self.count("skipped") > 0

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        return "done" if self.ok else "nothing measured"


class Stopped(Exception):
    """The run was asked to stop (Ctrl-C): the device's loop leaves after its current arch."""


class _Recorder:
    """measure_archs' callbacks for one device: each arch counted once, events passed on, a stop honoured."""

    def __init__(self, run: DeviceRun, space, on_event: Callable, stop: threading.Event):
        self.run, self.space, self.on_event, self.stop = run, space, on_event, stop

    def _note(self, arch, kind: str, info) -> None:
        first = arch.arch_id not in self.run.outcomes
        if first or kind != "skipped":  # measured before a retry, skipped after it: still measured now
            self.run.outcomes[arch.arch_id] = kind
        if kind == "measured" or (kind == "skipped" and first and info is not None):
            self.run.results.append(info)
        if first or kind != "skipped":
            self.on_event(self.run.device, kind, info if kind != "failed" else f"{self.space.to_string(arch)}: {info}")
        if self.stop.is_set():
            raise Stopped()

    def result(self, arch, m) -> None:
        self._note(arch, "measured", m)

    def skip(self, arch, m) -> None:
        self._note(arch, "skipped", m)

    def error(self, arch, msg) -> None:
        self._note(arch, "failed", msg)


def measure_device(space, archs: Sequence, profile, store, protocol, *, retry: RetryPolicy = RetryPolicy(),
                   on_event: Callable = lambda *a: None, stop: threading.Event | None = None, **measure_kw) -> DeviceRun:
    """Measure ``archs`` on one device, retrying it with back-off when it drops off; never raises for the
    device's sake (the error is in the returned ``DeviceRun``)."""
    stop = stop or threading.Event()
    run = DeviceRun(profile.name, len(archs))
    rec = _Recorder(run, space, on_event, stop)
    on_event(run.device, "start", len(archs))
    while True:
        run.tries += 1
        try:
            from .runners import get_runner

            measure_archs(space, archs, profile, store, protocol, runner=get_runner(profile), on_result=rec.result,
                          on_skip=rec.skip, on_error=rec.error, **measure_kw)
            break
        except Stopped:
            run.error = "stopped"
            break
        except DeviceUnreachable as exc:
            if run.tries >= retry.tries or stop.is_set():
                run.error = f"{exc} (gave up after {run.tries} tries)"
                break
            wait = retry.wait_s(run.tries)
            on_event(run.device, "retry", (run.tries, retry.tries, wait, str(exc)))
            if stop.wait(wait):  # the pause, cut short by a stop
                run.error = "stopped"
                break
        except HwnasError as exc:  # not the device's absence: say so, no retry
            run.error = str(exc)
            break
    on_event(run.device, "end", run)
    return run


def measure_devices_here(space, archs: Sequence, profiles: Sequence, store, protocol, *,
                         retry: RetryPolicy = RetryPolicy(), on_event: Callable = lambda *a: None,
                         **measure_kw) -> list[DeviceRun]:
    """One thread per device in this process; Ctrl-C (KeyboardInterrupt) asks every device to stop after its
    current arch and is raised again once they have (everything stored stays stored)."""
    stop = threading.Event()
    runs: dict[str, DeviceRun] = {}

    def work(profile) -> None:
        runs[profile.name] = measure_device(space, archs, profile, store, protocol, retry=retry,
                                            on_event=on_event, stop=stop, **measure_kw)

    threads = [threading.Thread(target=work, args=(p,), name=f"device:{p.name}", daemon=True) for p in profiles]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        _wait_for(threads)
        raise
    return [runs[p.name] for p in profiles]


def _wait_for(threads: Sequence, patience_s: float = 60.0) -> None:
    """After a Ctrl-C, join the device threads: each stops after its current arch (stored). A thread left inside
    native code (an exporter, a runtime) when the interpreter exits aborts the process ("terminate called without
    an active exception", exit -6 instead of 130). A second Ctrl-C, or ``patience_s``, stops the wait."""
    deadline = time.monotonic() + patience_s
    try:
        for t in threads:
            while t.is_alive() and time.monotonic() < deadline:
                t.join(0.2)
    except KeyboardInterrupt:
        pass


class DeviceActor:
    """A device's worker on Ray: placed on the node that declares the Ray resource ``device:<name>`` (one unit,
    so Ray never runs two on one device); it measures there and writes each result to the store itself, the
    moment it is made. ``poll`` hands the events gathered since the last poll to the driver (progress)."""

    def __init__(self):
        self.events: list = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def _event(self, *event) -> None:
        with self.lock:
            self.events.append(event)

    def run(self, space, archs, profile, store_target, protocol, retry, measure_kw) -> DeviceRun:
        from ..store import MeasurementStore

        return measure_device(space, archs, profile, MeasurementStore(store_target), protocol, retry=retry,
                              on_event=self._event, stop=self.stop_event, **measure_kw)

    def poll(self) -> list:
        with self.lock:
            events, self.events = self.events, []
        return events

    def stop(self) -> None:
        self.stop_event.set()


def device_resource(name: str) -> str:
    """The Ray custom resource that stands for a device: one unit, on the node where the device is."""
    return f"device:{name}"


def ray_for_lab(profiles: Sequence, address: str | None = None):
    """Ray, started here with one unit of ``device:<name>`` per device (no ``address``), or joined at ``address``
    (its nodes declare their devices: ``ray start --resources '{"device:pixel": 1}'``); every device must be
    declared somewhere in the cluster, else a one-line error."""
    try:
        import ray
    except ImportError:
        raise ParametersError("`executor` ray needs Ray, which is not installed: pip install 'hwnas[ray]'") from None
    if not ray.is_initialized():
        if address:
            init_ray(ray, address, log_to_driver=False)
        else:
            ray.init(resources={device_resource(p.name): 1 for p in profiles}, include_dashboard=False,
                     log_to_driver=False)
    have = ray.cluster_resources()
    missing = [p.name for p in profiles if have.get(device_resource(p.name), 0) < 1]
    if missing:
        raise HwnasError(f"no node of the Ray cluster declares device {missing[0]}: start Ray on the machine it is "
                         f"attached to with ray start --resources '{{\"{device_resource(missing[0])}\": 1}}'")
    return ray


def measure_devices_on_ray(space, archs: Sequence, profiles: Sequence, store_target, protocol, *,
                           retry: RetryPolicy = RetryPolicy(), on_event: Callable = lambda *a: None,
                           address: str | None = None, **measure_kw) -> list[DeviceRun]:
    """One Ray actor per device, each holding its ``device:<name>`` resource; events polled into ``on_event``.
    ``store_target``: what every node opens (a ``postgresql://`` URL, or a SQLite file all of them can reach)."""
    ray = ray_for_lab(profiles, address)
    remote = ray.remote(DeviceActor)
    actors = [remote.options(resources={device_resource(p.name): 1}, num_cpus=0, max_concurrency=3).remote()
              for p in profiles]
    refs = [a.run.remote(space, list(archs), p, store_target, protocol, retry, measure_kw)
            for a, p in zip(actors, profiles)]
    try:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.3)
            for event in (e for batch in ray.get([a.poll.remote() for a in actors]) for e in batch):
                on_event(*event)
        for event in (e for batch in ray.get([a.poll.remote() for a in actors]) for e in batch):
            on_event(*event)
        runs = ray.get(refs)
    except KeyboardInterrupt:
        for a in actors:
            a.stop.remote()
        raise
    for a in actors:  # their devices are free for the next run at once
        ray.kill(a)
    return runs


def check_lab(profiles: Sequence) -> None:
    """Bad input before anything runs: two devices with one name."""
    names = [p.name for p in profiles]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParametersError(f"device {twice[0]} is named twice: each `device` is one device, measured by one worker")


__all__ = ["DeviceActor", "device_resource", "ray_for_lab", "measure_devices_on_ray", "RetryPolicy", "DeviceRun", "Stopped", "measure_device", "measure_devices_here", "check_lab"]
