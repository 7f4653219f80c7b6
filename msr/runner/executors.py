"""Where a sweep's runs train, behind one interface, and the one loop that schedules them.

:func:`schedule` keeps up to ``workers`` runs training at once, launches the
next as one ends, and on a stop request asks every running one to stop (each
makes its final evaluation) and launches no more. An :class:`Executor` only
starts runs and says which have ended:

- :class:`LocalExecutor`: a detached worker process per run on this machine
  (msr.runner.launch), watched through its run folder;
- :class:`RayExecutor`: a Ray task per run, on a Ray started for the sweep or
  on a cluster; each task trains its run folder with msr.runner.execute.

Every run trains with the same thread count under both, so a seed gives the
same numbers either way.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..core.runtime import sharing_env
from ..store.layout import INTERRUPTED, LIVE
from ..store.liveness import request_stop
from ..store.reader import load_run
from .admission import uses_cuda
from .execute import execute
from .launch import launch
from .process import PACKAGE_ROOT

POLL_SECONDS = 0.5
OUTCOMES = {INTERRUPTED: "failed (its worker ended without finishing)"}  # how an ended run is reported


class Executor:
    """Starts runs and says which have ended."""
    name = ""  # how the progress lines name it

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def start(self, run_dir: Path, resume: bool, config) -> Any:
        """Start training the run in ``run_dir``; a handle for :meth:`ended`."""
        raise NotImplementedError

    def ended(self, running: dict[Any, Path], wait: float) -> list[tuple[Any, str]]:
        """Of the running handles, those that have ended, each with its outcome
        in a word or two, after waiting up to ``wait`` seconds."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """Detached worker processes on this machine."""

    def __init__(self, threads: int):
        self.threads = threads

    def start(self, run_dir: Path, resume: bool, config) -> Any:
        launch(run_dir, resume=resume, threads=self.threads, together=True)  # a sweep's runs train side by side
        return str(run_dir)

    def ended(self, running: dict[Any, Path], wait: float) -> list[tuple[Any, str]]:
        time.sleep(wait)
        out = []
        for handle, run_dir in running.items():
            rec = load_run(run_dir, with_metrics=False)
            if rec.damaged or rec.state not in LIVE:
                out.append((handle, "damaged" if rec.damaged else OUTCOMES.get(rec.state, rec.state)))
        return out


def _ray_task(run_dir: str, resume: bool, threads: int) -> str:
    """A Ray task: train one run folder in the Ray worker's process."""
    import torch

    torch.set_num_threads(threads)
    return execute(run_dir, resume=resume).status


class RayExecutor(Executor):
    """A Ray task per run: on a Ray started for the sweep (``address`` None)
    or on a cluster. Each task asks for ``threads`` CPUs and, on CUDA,
    ``gpus_per_run`` of a GPU."""
    name = " (Ray)"

    def __init__(self, threads: int, workers: int, address: str | None, gpus_per_run: float):
        self.threads, self.workers, self.address, self.gpus_per_run = threads, workers, address, gpus_per_run
        self.started_here = False

    def __enter__(self) -> "RayExecutor":
        import ray

        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            env = {"env_vars": {"PYTHONPATH": str(PACKAGE_ROOT), "OMP_NUM_THREADS": str(self.threads),
                                **sharing_env()}}
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=max(self.workers * self.threads, 1), runtime_env=env, log_to_driver=False,
                         include_dashboard=False)
        self.task = ray.remote(_ray_task)
        return self

    def __exit__(self, *exc) -> None:
        if self.started_here:
            self.ray.shutdown()

    def start(self, run_dir: Path, resume: bool, config) -> Any:
        gpus = self.gpus_per_run if uses_cuda(config) else 0
        return self.task.options(num_cpus=self.threads, num_gpus=gpus).remote(str(run_dir), resume, self.threads)

    def ended(self, running: dict[Any, Path], wait: float) -> list[tuple[Any, str]]:
        done, _ = self.ray.wait(list(running), num_returns=1, timeout=wait)
        out = []
        for ref in done:
            try:
                status = self.ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a task that died: its folder tells the rest
                status = f"failed ({type(exc).__name__})"
            out.append((ref, status))
        return out


def schedule(executor: Executor, todo: Iterable[tuple[Any, bool]], workers: int,
             run_dir_of: Callable[[Any], Path], config_of: Callable[[Any], Any],
             stop_now: Callable[[], bool], say: Callable[[str], None]) -> None:
    """Train every (point, resume) of ``todo``, ``workers`` at once: the one
    scheduling loop of every executor. ``run_dir_of(point)`` is its run
    folder (made when it has none), ``config_of(point)`` its config."""
    pending = list(todo)
    running: dict[Any, Path] = {}
    while pending or running:
        if stop_now():
            for run_dir in running.values():
                request_stop(run_dir)
            pending = []
        while pending and len(running) < workers and not stop_now():
            point, resume = pending.pop(0)
            run_dir = run_dir_of(point)
            running[executor.start(run_dir, resume, config_of(point))] = run_dir
            say(f"started {run_dir.name}{executor.name}")
        for handle, outcome in executor.ended(running, POLL_SECONDS):
            say(f"{outcome}: {running.pop(handle).name}")
