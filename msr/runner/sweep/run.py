"""Running a sweep: its driver trains every point still to do, the rate search first, and says how it ended.

One driver at a time holds the sweep's lock. SIGTERM/SIGINT or a stop
request stop every running point (after its final evaluation) and launch no
more; ``--resume`` later finishes what is missing.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from ...store.files import atomic_write_text, dumps
from ...store.layout import LIVE, run_files
from ...store.liveness import request_stop
from ...store.locks import release
from ...kinds import MNIST
from ...store.reader import list_runs, load_run
from ..execute import create_run
from ..executors import POLL_SECONDS, Executor, LocalExecutor, RayExecutor, schedule
from ..process import StopSignals
from .folder import RATES, Sweep, hold_lock
from .spec import Point, _text, admit_points, default_workers


def _todo(sweep: Sweep, points: list["Point"]) -> list[tuple["Point", bool]]:
    """(point, resume) for every one of ``points`` not completed: new ones,
    and stopped, interrupted or failed ones (resumed from their last saved
    state)."""
    out = []
    records = sweep.records(points)
    for p in points:
        rec = records[p.key]
        if rec is None or rec.damaged:
            out.append((p, False))
        elif rec.state != "completed":
            # resumed from its saved state; one that ended before anything was saved starts again, in its own folder
            out.append((p, os.path.lexists(run_files(rec.path).resume)))
    return out


def adopt_unrecorded(sweep: Sweep) -> list[str]:
    """Record the run folders a driver made but was killed before recording
    (runs.json): a folder made since the sweep, of a point's exact config,
    that never trained past step 0 and no other point has. Resuming then
    trains them instead of making a second folder per point."""
    missing = {json.dumps(sweep.config(p).to_dict(), sort_keys=True): p for p in sweep.spec.all_points()
               if p.key not in sweep.runs}
    if not missing:
        return []
    try:
        since = (sweep.path / "sweep.json").stat().st_mtime - 1
    except OSError:
        return []
    known = {Path(v).name for v in sweep.runs.values()}
    adopted = []
    for rec in list_runs(sweep.runs_dir, include_damaged=True):
        if rec.damaged or rec.kind is not MNIST or rec.run_id in known or rec.created < since:
            continue
        if rec.step > 0 or rec.state in LIVE or rec.state == "completed":
            continue
        point = missing.pop(json.dumps(rec.config.to_dict(), sort_keys=True), None)
        if point is not None:
            sweep.runs[point.key] = str(rec.path)
            adopted.append(rec.run_id)
    if adopted:
        sweep.save_runs()
    return adopted


def _run_dir(sweep: Sweep, point: Point) -> Path:
    """The point's run folder, created (and recorded) when it has none (or a damaged one)."""
    known = sweep.runs.get(point.key)
    if known and not load_run(known, with_metrics=False).damaged:
        return Path(known)
    run_dir = create_run(sweep.config(point))
    sweep.runs[point.key] = str(run_dir)
    sweep.save_runs()
    return run_dir


def run_sweep(sweep: Sweep, on_progress: Callable[[str], None] | None = None) -> str:
    """Run every point still to do; return completed, stopped or failed.

    SIGTERM/SIGINT or a stop request stop every running point (after their
    final evaluation) and launch no more. One driver at a time: it holds the
    sweep's lock while it runs."""
    say = on_progress or (lambda line: None)
    configs = admit_points(sweep.spec)
    lock = hold_lock(sweep)
    workers = sweep.spec.workers or default_workers(configs, sweep.spec.threads)
    stopping = threading.Event()
    try:
        with StopSignals(stopping, second_ends=False), _executor(sweep, workers) as executor:
            stop_now = lambda: stopping.is_set() or sweep.stop_requested()  # noqa: E731

            def run(points: list[Point]) -> None:
                schedule(executor, _todo(sweep, points), workers, lambda p: _run_dir(sweep, p), sweep.config,
                         stop_now, say)

            _wait_for_running(sweep, stop_now)  # points a previous driver left training finish first
            adopt_unrecorded(sweep)
            if sweep.spec.rate_search and sweep.rates is None:
                run(sweep.spec.search_points())
                if not stop_now():
                    choose_rates(sweep)
                    for group, rate in sweep.chosen_rates.items():
                        say(f"inner rate chosen on validation tasks for {_setting_text(json.loads(group))}: {rate:g}")
            if not stop_now() and (not sweep.spec.rate_search or sweep.rates is not None):
                run([p for p in sweep.spec.points() if not sweep.spec.rate_search or p.group in sweep.chosen_rates])
    finally:
        release(lock)
    states = [r.state if r is not None else "missing" for r in sweep.records(sweep.spec.points()).values()]
    if all(s == "completed" for s in states):
        return "completed"
    # Not all completed: stopped only when someone asked; otherwise a point failed, or its worker ended
    # without finishing (killed, crashed), or a setting got no inner rate.
    return "stopped" if stopping.is_set() or sweep.stop_requested() else "failed"


def _setting_text(setting: Mapping) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in setting.items()) or "all"


def choose_rates(sweep: Sweep) -> dict:
    """Pick each grid setting's inner rate from its completed search runs (the
    best final validation accuracy; a run that diverged or failed counts as
    no candidate), write rates.json once and return it. A setting whose every
    candidate failed gets no rate, and its seeds are not run."""
    records = sweep.records(sweep.spec.search_points())
    candidates: dict[str, dict[str, float | None]] = {}
    chosen: dict[str, float] = {}
    for p in sweep.spec.search_points():
        rec = records[p.key]
        acc = None
        if rec is not None and not rec.damaged and rec.state == "completed":
            value = rec.last.get("test_acc")
            acc = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        candidates.setdefault(p.group, {})[_text(p.rate)] = acc
    for group, accs in candidates.items():
        scored = {float(r): a for r, a in accs.items() if a is not None}
        if scored:
            chosen[group] = max(scored, key=lambda r: (scored[r], -r))  # ties: the smaller rate
    sweep.rates = {"chosen": chosen, "candidates": candidates,
                   "steps": sweep.spec.rate_search["steps"], "seed": sweep.spec.rate_search.get("seed", 0)}
    atomic_write_text(sweep.path / RATES, dumps(sweep.rates, indent=2))
    return sweep.rates


def _wait_for_running(sweep: Sweep, stop_now: Callable[[], bool]) -> None:
    while True:
        running = [r for r in sweep.records().values() if r is not None and not r.damaged and r.state in LIVE]
        if not running:
            return
        if stop_now():
            for rec in running:
                request_stop(rec.path)
        time.sleep(POLL_SECONDS)


def _executor(sweep: Sweep, workers: int) -> Executor:
    spec = sweep.spec
    if spec.executor == "ray":
        return RayExecutor(spec.threads, workers, spec.address, spec.gpus_per_run)
    return LocalExecutor(spec.threads)
