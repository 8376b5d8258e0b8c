"""Run tasks in parallel: Ray actors (one per worker) or in-process for tests and debugging.

Both executors take objects with `.run(cache) -> dict` and `.label`, and yield results as they
finish. A worker keeps a small cache between tasks so a stage's model is loaded once per worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from cleaning.errors import CleaningError, os_error_text
from cleaning.memory import peak_rss_mb, reset_peak


class Task(Protocol):
    label: str

    def run(self, cache: dict[str, Any]) -> dict[str, Any]: ...


class TaskFailed(Exception):
    """A task raised; carries the task so the runner can name the shard."""

    def __init__(self, task: Task, error: BaseException) -> None:
        what = f"{type(error).__name__}: {error}"
        if isinstance(error, OSError) and error.strerror:  # the machine's error: no class name, no errno
            what = os_error_text(error)
        super().__init__(f"{task.label}: {what}")
        self.task = task
        self.error = error


class LocalExecutor:
    """Runs every task in this process, one after another (`--no-ray`)."""

    workers = 1

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self.map_peak_mb = 0.0  # largest resident memory of a worker inside a `map` call so far

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict[str, Any] | TaskFailed]]:
        for task in tasks:
            try:
                yield task, task.run(self._cache)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                yield task, TaskFailed(task, exc)

    def map(
        self,
        fn: Callable[[Any], Any],
        items: list[Any],
        label: str = "",
        on_done: Callable[[], None] | None = None,
        here: bool = False,
    ) -> list[Any]:
        results = []
        for item in items:
            result, peak = _measured(fn, item)
            results.append(result)
            self.map_peak_mb = max(self.map_peak_mb, peak)
            if on_done:
                on_done()
        return results

    def close(self) -> None:
        self._cache.clear()


class _Worker:
    """Body of the Ray actor: one per worker process, holding that worker's stage cache."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}

    def run(self, task: Task) -> dict[str, Any]:
        return task.run(self.cache)

    def call(self, fn: Callable[[Any], Any], item: Any) -> tuple[Any, float]:
        return _measured(fn, item)

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


def _measured(fn: Callable[[Any], Any], item: Any) -> tuple[Any, float]:
    """`fn(item)` and the peak resident memory (MB) of this process while it ran."""
    reset_peak()
    result = fn(item)
    return result, peak_rss_mb()


class RayExecutor:
    """A pool of Ray actors, one per worker, fed tasks as they free up.

    Actors restart and retry a task if their process dies (OOM kill, lost node), so a killed
    worker costs only the shard it was on. Embedded Ray by default; `address` joins a cluster.
    """

    def __init__(self, workers: int | None, address: str | None = None) -> None:
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not address:
            # An embedded Ray serves only this machine: keep every Ray process on 127.0.0.1.
            # (Ray otherwise swaps 127.0.0.1 for the machine's public address; read at import.)
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            # Token authentication, as Ray 2.60 enables by default, but chosen here: Ray then
            # skips its warning about the default, which printed in every run and report.
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
                else:
                    ray.init(
                        num_cpus=workers or os.cpu_count(),
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        logging_level=logging.WARNING,
                        configure_logging=True,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise CleaningError(f"cannot start or join Ray (address={address or 'embedded'}): {exc}") from exc
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers or cpus, cpus))
        self.map_peak_mb = 0.0  # largest resident memory of a worker inside a `map` call so far
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=3)(_Worker)
        self._actors = [actor.remote() for _ in range(self.workers)]
        self._local: list[Any] | None = None

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict[str, Any] | TaskFailed]]:
        ray = self._ray
        pending = list(reversed(tasks))
        running: dict[Any, tuple[Task, Any]] = {}
        idle = list(self._actors)
        while pending or running:
            while pending and idle:
                task, actor = pending.pop(), idle.pop()
                running[actor.run.remote(task)] = (task, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            task, actor = running.pop(done[0])
            idle.append(actor)
            try:
                yield task, ray.get(done[0])
            except ray.exceptions.RayError as exc:
                cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
                yield task, TaskFailed(task, cause)

    def map(
        self,
        fn: Callable[[Any], Any],
        items: list[Any],
        label: str = "",
        on_done: Callable[[], None] | None = None,
        here: bool = False,
    ) -> list[Any]:
        """Results in item order; each item goes to the next idle actor, so uneven items balance.
        `here`: only actors on the driver's node, for steps whose files are on its disk alone."""
        ray = self._ray
        results: list[Any] = [None] * len(items)
        pending = list(reversed(range(len(items))))
        running: dict[Any, tuple[int, Any]] = {}
        idle = self._local_actors() if here else list(self._actors)
        while pending or running:
            while pending and idle:
                index, actor = pending.pop(), idle.pop()
                running[actor.call.remote(fn, items[index])] = (index, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(done[0])
            idle.append(actor)
            results[index], peak = ray.get(done[0])
            self.map_peak_mb = max(self.map_peak_mb, peak)
            if on_done:
                on_done()
        return results

    def _local_actors(self) -> list[Any]:
        """The actors on the driver's node (the files of corpus-wide steps are on its disk)."""
        if self._local is None:
            home = self._ray.get_runtime_context().get_node_id()
            nodes = self._ray.get([a.node.remote() for a in self._actors])
            self._local = [a for a, node in zip(self._actors, nodes, strict=True) if node == home]
            if not self._local:
                raise CleaningError(
                    "no worker runs on the driver's node, where corpus-wide steps keep their files "
                    "(output in object storage, no shared filesystem): give that node CPUs"
                )
        return list(self._local)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._started:
            self._ray.shutdown()


def make_executor(use_ray: bool, workers: int | None, address: str | None) -> LocalExecutor | RayExecutor:
    if not use_ray:
        return LocalExecutor()
    return RayExecutor(workers, address)
