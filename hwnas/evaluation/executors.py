"""Executors: how the per-arch (heavy) work of a batch runs: in this process, or as Ray tasks."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ..errors import ParameterError, unknown
from ..ray_cluster import init_ray


class InProcessExecutor:
    """Evaluate one after another in this process (the default)."""

    name = "in-process"

    def map(self, fn: Callable, items: Sequence) -> Iterable:
        for item in items:
            yield fn(item)


class RayExecutor:
    """Evaluate candidates in parallel as Ray tasks (local Ray unless ``address`` names a cluster)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, workers: int | None = None):
        # workers: tasks in flight at once (None: as many as the batch); a local Ray starts with that many CPUs
        self.address, self.num_cpus, self.workers = address, num_cpus, workers

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ParameterError("executor", "ray needs Ray, which is not installed: pip install 'hwnas[ray]' "
                                 "(or pip install 'ray[default]')") from None
        if not ray.is_initialized():
            cpus = {} if self.address or not self.workers else {"num_cpus": int(self.workers * self.num_cpus)}
            init_ray(ray, self.address, ignore_reinit_error=True, log_to_driver=False, **cpus)
        return ray

    def map(self, fn: Callable, items: Sequence) -> Iterable:
        """Results in the order of ``items`` (so results, and any checkpoint, do not depend on scheduling), with
        ``workers`` tasks in flight: a worker that finishes starts the next item even while an earlier, slower
        one is still running."""
        ray = self._ray()
        remote = ray.remote(num_cpus=self.num_cpus)(fn)
        items, window = list(items), int(self.workers or len(items) or 1)
        refs: list = []
        running: set = set()

        def submit():
            while len(refs) < len(items) and len(running) < window:
                refs.append(remote.remote(items[len(refs)]))
                running.add(refs[-1])

        submit()
        for i in range(len(items)):
            while refs[i] in running:
                done, _ = ray.wait(list(running), num_returns=1)
                running.difference_update(done)
                submit()
            yield ray.get(refs[i])


def check_executor(name: str | None, address: str | None = None, workers: int | None = None) -> str:
    """The executor a name means ("in-process" or "ray"); an unknown name, or an address (or more than one
    worker) without Ray, is an error."""
    if workers is not None and int(workers) < 1:
        raise ParameterError("workers", f"must be >= 1, got {workers}")
    if name in (None, "", "local", "in-process", "inprocess"):
        if address:
            raise ParameterError("address", "only makes sense with `executor` ray")
        if workers is not None and int(workers) > 1:
            raise ParameterError("workers", "more than 1 only makes sense with `executor` ray")
        return "in-process"
    if name == "ray":
        return "ray"
    raise unknown("executor", name, ("in-process", "ray"))


def create_executor(name: str | None, address: str | None = None, workers: int | None = None):
    if check_executor(name, address, workers) == "in-process":
        return InProcessExecutor()
    executor = RayExecutor(address, workers=workers)
    executor._ray()  # fail now, with the install hint, rather than mid-search
    return executor
