"""A sweep's results: its completed runs grouped by setting into means with 95% intervals, and the points as the page reads them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...core.stats import t_halfwidth
from ...store.files import Damaged
from ...store.layout import LIVE
from ...store.reader import METRICS_CACHE, RunRecord, load_run
from .folder import Sweep
from .spec import Point


@dataclass
class SettingGroup:
    """One grid point over its seeds."""
    setting: dict
    run_ids: list[str]
    test_loss: list[float]
    test_acc: list[float]

    @property
    def n(self) -> int:
        return len(self.test_acc)

    def summary(self) -> dict:
        import torch

        def stat(values: list[float]) -> dict:
            if not values:
                return {"mean": None, "ci95": None}
            half = t_halfwidth(torch.tensor(values, dtype=torch.float64))
            return {"mean": sum(values) / len(values), "ci95": None if math.isnan(half) else half}

        return {"setting": self.setting, "n": self.n, "test_loss": stat(self.test_loss),
                "test_acc": stat(self.test_acc), "runs": self.run_ids}


def groups(sweep: Sweep) -> list[SettingGroup]:
    """The completed runs of each grid point, in grid order (a point's runs
    count once they are completed; the rate search's runs never do)."""
    out: dict[str, SettingGroup] = {}
    for p in sweep.spec.points():
        g = out.setdefault(p.group, SettingGroup(p.setting, [], [], []))
        run = sweep.runs.get(p.key)
        if not run:
            continue
        rec = load_run(run, with_metrics=False)
        last = rec.last if not rec.damaged else {}
        if rec.damaged or rec.state != "completed" or last.get("test_acc") is None:
            continue
        g.run_ids.append(rec.run_id)
        g.test_loss.append(float(last["test_loss"]))
        g.test_acc.append(float(last["test_acc"]))
    return list(out.values())


def unfinished(sweep: Sweep) -> bool:
    """Something is left for a resume to do: a run of the sweep proper not
    completed, or a rate search not finished (its failed candidates are
    results, not work left, once the rates are chosen)."""
    if sweep.spec.rate_search and sweep.rates is None:
        return True
    main = sweep.spec.points()
    if sweep.spec.rate_search:
        main = [p for p in main if p.group in sweep.chosen_rates]
    return any(r is None or r.state != "completed" for r in sweep.records(main).values())


def progress(sweep: Sweep) -> dict[str, int]:
    """How many points are in each state (missing: no run yet)."""
    counts: dict[str, int] = {}
    for rec in sweep.records().values():
        state = "missing" if rec is None else ("damaged" if rec.damaged else rec.state)
        counts[state] = counts.get(state, 0) + 1
    return counts


@dataclass(frozen=True)
class PointRun:
    """One point of a sweep as the page reads it (state 'missing': no run yet)."""
    setting: dict
    seed: int
    state: str
    run_id: str | None = None
    step: int = 0
    total: int | None = None
    last: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)  # evaluation records, oldest first
    rate: float | None = None  # a rate search's candidate (None: a run of the sweep proper)

    @property
    def active(self) -> bool:
        return self.state in LIVE


def point_runs(sweep, with_metrics: bool = False, search: bool = False) -> list[PointRun]:
    """Every point of a sweep in grid order, the rate
    search's first when ``search``; metrics are read incrementally, so a live
    page re-reads only new lines."""
    out = []
    for p in (sweep.spec.all_points() if search else sweep.spec.points()):
        path = sweep.runs.get(p.key)
        if not path:
            out.append(PointRun(p.setting, p.seed, "missing", rate=p.rate))
            continue
        out.append(_from_record(p, load_run(path, with_metrics=False), with_metrics))
    return out


def _from_record(point: Point, rec: RunRecord, with_metrics: bool) -> PointRun:
    if rec.damaged:
        return PointRun(point.setting, point.seed, "damaged", rec.run_id, rate=point.rate)
    metrics = []
    if with_metrics:
        try:
            metrics = METRICS_CACHE.read(rec.path)
        except Damaged:
            metrics = []
    return PointRun(point.setting, point.seed, rec.state, rec.run_id, rec.step, rec.total, dict(rec.last), metrics,
                    point.rate)
