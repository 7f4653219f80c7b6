"""Sweeps: a grid of Rotated MNIST runs over seeds, each an ordinary run, grouped into means with intervals.

A sweep lives in ``<runs_dir>/.sweeps/<sweep-id>/`` (list_runs skips dot
folders):

- ``sweep.json``: its definition (the fixed config, the grid, the seeds, how
  to execute it, and an optional inner-rate search), written once;
- ``runs.json``: point key -> run folder, rewritten as runs are created;
- ``rates.json``: with a rate search, the inner rate chosen for each grid
  setting and every candidate's validation accuracy, written once the search
  is over;
- ``stop``: a request to stop the sweep;
- ``driver.lock``: held (flock) by the process running the sweep, ``driver.json``
  the pid and host of one launched from the app, ``driver.log`` its output.

Every point is a normal run folder under the runs folder (listed on the Runs
page, resumable), so a sweep survives its driver: ``resume`` finishes what is
missing.

**Each setting at its own inner rate.** With a rate search, every grid
setting first trains a short run per candidate inner rate, evaluated on
meta-validation tasks drawn from the training images (``eval_on=
validation``), never on the test images. The candidate with the best final
validation accuracy is that setting's rate for its seeds. A rate suited to
one model can blow up another (a plain head adapts 100,000 weights, a dense-U
head 8), so a comparison at one shared rate measures the rate as much as the
model.

Executors: ``local`` launches detached workers (msr.worker.launch),
at most N at once; ``ray`` runs each point as a Ray task. Every run trains
with the same thread count under both, so their metrics are identical.
"""
from __future__ import annotations

import fcntl
import importlib.util
import itertools
import json
import math
import os
import secrets
import signal
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .config import RunConfig
from .layout import run_files
from .runs import (ACTIVE, HOST, METRICS_CACHE, Damaged, RunFolderError, RunRecord, atomic_write_text, dumps,
                   load_run, lock_held, pid_running, prepare_root, request_stop)
from .settings import ConfigError, specs
from .stats import t_halfwidth

EXECUTORS = ("local", "ray")
SWEEPS = ".sweeps"
POLL_SECONDS = 0.5
DRIVER, DRIVER_LOCK = "driver.json", "driver.lock"  # who was launched to run the sweep; held while one does
RATES = "rates.json"  # the inner rate each grid setting's search chose
# Grid fields that cannot vary: where runs go, and what names a run.
NOT_GRIDDED = ("runs_dir", "seed", "angles", "name")


# --------------------------------------------------------------- definition
@dataclass
class SweepSpec:
    """What a sweep runs: the fixed config, the grid, the seeds, and how."""
    base: dict  # RunConfig fields, as to_dict gives them
    grid: dict[str, list]  # field -> values (in order)
    seeds: list[int]
    executor: str = "local"
    workers: int | None = None  # None: what fits in cores and memory
    threads: int = 1  # torch threads of every run (the same under every executor)
    address: str | None = None  # a Ray cluster; None: a local Ray
    gpus_per_run: float = 0.25  # on CUDA, the share of a GPU each Ray task asks for
    name: str = ""
    rate_search: dict | None = None  # {"values": [inner rates], "steps": n, "seed": s}: see the module docstring

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SweepSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def settings(self) -> list[dict]:
        """Every combination of grid values, in grid order."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))]

    def points(self) -> list["Point"]:
        """Every (grid values, seed), grid order first, then seeds."""
        return [Point(setting, seed) for setting in self.settings() for seed in self.seeds]

    def search_points(self) -> list["Point"]:
        """The rate search's runs: every grid setting at every candidate rate
        (none without a search)."""
        if not self.rate_search:
            return []
        seed = int(self.rate_search.get("seed", 0))
        return [Point(setting, seed, rate) for setting in self.settings() for rate in self.rate_search["values"]]

    def all_points(self) -> list["Point"]:
        return self.search_points() + self.points()

    def config(self, point: "Point", rates: Mapping[str, float] | None = None) -> RunConfig:
        """The point's run config. A search point trains for the search's steps
        and is evaluated on validation tasks; a main point of a sweep with a
        search takes its setting's chosen rate from ``rates`` (group -> rate;
        the fixed inner rate until one is chosen)."""
        cfg = RunConfig.from_dict({**self.base, **point.setting, "seed": point.seed})
        label = ", ".join(f"{k}={_text(v)}" for k, v in point.setting.items())
        if point.rate is not None:
            cfg = cfg.replace(inner_lr=point.rate, eval_on="validation", steps=int(self.rate_search["steps"]),
                              eval_interval=min(cfg.eval_interval, int(self.rate_search["steps"])))
            return cfg.replace(name=f"{self.name or 'sweep'}: rate search, {label + ', ' if label else ''}"
                                    f"inner rate {_text(point.rate)}")
        if self.rate_search and rates and point.group in rates:
            cfg = cfg.replace(inner_lr=float(rates[point.group]))
        return cfg.replace(name=f"{self.name or 'sweep'}: {label + ', ' if label else ''}seed {point.seed}")


@dataclass(frozen=True)
class Point:
    setting: dict
    seed: int
    rate: float | None = None  # a rate search's candidate inner rate (None: a run of the sweep proper)

    @property
    def key(self) -> str:
        extra = {} if self.rate is None else {"rate search": self.rate}
        return json.dumps({**self.setting, "seed": self.seed, **extra}, sort_keys=True)

    @property
    def group(self) -> str:
        return json.dumps(self.setting, sort_keys=True)


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(name: str, text: str):
    """One grid value as the field's type (bool: true/false)."""
    s = specs(RunConfig)[name]
    default = getattr(RunConfig, name)
    kind = s.kind or type(default)
    text = text.strip()
    try:
        if kind is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        return kind(text)
    except ValueError:
        raise ConfigError(f"grid value {text!r} is not a {kind.__name__} for {name}", field="grid") from None


def parse_grid(items: list[str]) -> dict[str, list]:
    """``FIELD=V1,V2`` items (a field may not repeat) -> {field: values}."""
    grid: dict[str, list] = {}
    allowed = [n for n in specs(RunConfig) if n not in NOT_GRIDDED]
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--grid takes FIELD=V1,V2,..., got {item!r}", field="grid")
        if name not in allowed:
            raise ConfigError(f"cannot vary {name!r} in a sweep; allowed: {', '.join(allowed)}", field="grid")
        if name in grid:
            raise ConfigError(f"{name} is given twice in the grid", field="grid")
        parsed = [parse_value(name, v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"{name} repeats a value in the grid", field="grid")
        grid[name] = parsed
    return grid


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas, e.g. 0,1,2; got {text!r}",
                          field="seeds") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs at least one seed and no repeats, got {text!r}", field="seeds")
    return seeds


def check(spec: SweepSpec) -> list[RunConfig]:
    """Every point's config, validated before anything is written (the first
    bad one's ConfigError names its point)."""
    if spec.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {spec.executor!r}; allowed: {', '.join(EXECUTORS)}")
    if spec.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("the ray executor needs the ray package: pip install 'ray>=2.40'")
    if spec.workers is not None and (not isinstance(spec.workers, int) or spec.workers < 1):
        raise ConfigError(f"workers must be a whole number ≥ 1, got {spec.workers!r}")
    if not isinstance(spec.threads, int) or spec.threads < 1:
        raise ConfigError(f"threads must be a whole number ≥ 1, got {spec.threads!r}")
    if spec.rate_search is not None:
        _check_rate_search(spec)
    configs = []
    for point in spec.all_points():
        cfg = spec.config(point)
        try:
            cfg.validate()
        except ConfigError as exc:
            where = ", ".join(f"{k}={_text(v)}" for k, v in point.setting.items()) or "the fixed settings"
            if point.rate is not None:
                where = f"rate search ({where}, inner rate {_text(point.rate)})"
            raise ConfigError(f"{where}: {exc}", errors=exc.errors) from None
        configs.append(cfg)
    return configs


MAX_RATES = 12


def _check_rate_search(spec: SweepSpec) -> None:
    search = spec.rate_search
    if not isinstance(search, dict) or not isinstance(search.get("values"), list):
        raise ConfigError("a rate search needs a list of candidate inner rates", field="rate_search")
    values = search["values"]
    if not 1 <= len(values) <= MAX_RATES or len(set(values)) != len(values) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"the rate search takes 1 to {MAX_RATES} distinct inner rates > 0, e.g. 0.01,0.1,1; got "
                          f"{values!r}", field="rate_search")
    if "inner_lr" in spec.grid:
        raise ConfigError("a rate search chooses the inner rate itself: do not also vary inner_lr in the grid",
                          field="rate_search")
    steps = search.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100_000:
        raise ConfigError(f"the rate search's steps must be a whole number from 1 to 100,000, got {steps!r}",
                          field="rate_search")


def parse_rates(text: str) -> list[float]:
    """'0.01, 0.1, 1' -> [0.01, 0.1, 1.0] (ConfigError naming the bad entry)."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--rate-search takes inner rates separated by commas, e.g. 0.01,0.1,1; got {text!r}",
                          field="rate_search") from None
    return values


def default_workers(configs: list[RunConfig], threads: int = 1) -> int:
    """What fits: the cores (each run takes ``threads``) and the free memory
    (each run's estimated peak), at least one."""
    from .resources import available_memory_bytes, estimate_peak_bytes

    cores = max(1, (os.cpu_count() or 1) // threads)
    peak = max(estimate_peak_bytes(c) for c in configs)
    fit = max(1, int(available_memory_bytes() // max(peak, 1)))
    return max(1, min(cores, fit, len(configs)))


# ------------------------------------------------------------------- folder
@dataclass
class Sweep:
    """A sweep folder."""
    path: Path
    spec: SweepSpec
    runs: dict[str, str] = field(default_factory=dict)  # point key -> run folder
    rates: dict | None = None  # rates.json: {"chosen": {group: rate}, "candidates": {group: {rate: accuracy}}}

    @property
    def chosen_rates(self) -> dict[str, float]:
        return dict((self.rates or {}).get("chosen") or {})

    def config(self, point: "Point") -> RunConfig:
        return self.spec.config(point, self.chosen_rates)

    @property
    def sweep_id(self) -> str:
        return self.path.name

    @property
    def runs_dir(self) -> Path:
        return self.path.parent.parent

    def save_runs(self) -> None:
        atomic_write_text(self.path / "runs.json", dumps(self.runs, indent=2))

    def request_stop(self) -> None:
        atomic_write_text(self.path / "stop", str(time.time()))

    def stop_requested(self) -> bool:
        return (self.path / "stop").exists()

    def clear_stop_before(self, moment: float) -> None:
        """Forget a stop asked for before ``moment`` (a resume answers it); one
        asked since, while this driver was starting, still counts."""
        try:
            if (self.path / "stop").stat().st_mtime < moment:
                (self.path / "stop").unlink()
        except OSError:
            pass

    def records(self, points: Iterable["Point"] | None = None) -> dict[str, Any]:
        """Point key -> its run's record (None: no run yet), for every point
        (the rate search's included) or the given ones."""
        points = self.spec.all_points() if points is None else points
        return {p.key: (load_run(self.runs[p.key], with_metrics=False) if p.key in self.runs else None)
                for p in points}


def create_sweep(spec: SweepSpec) -> Sweep:
    check(spec)
    root = prepare_root(spec.base.get("runs_dir", "runs"))
    path = root / SWEEPS / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    path.mkdir(parents=True)
    atomic_write_text(path / "sweep.json", dumps(spec.to_dict(), indent=2))
    sweep = Sweep(path, spec)
    sweep.save_runs()
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    try:
        spec = SweepSpec.from_dict(json.loads((path / "sweep.json").read_text()))
        runs = json.loads((path / "runs.json").read_text()) if (path / "runs.json").exists() else {}
        rates = json.loads((path / RATES).read_text()) if (path / RATES).exists() else None
    except (OSError, ValueError, TypeError) as exc:
        raise RunFolderError(f"'{path}' is not a readable sweep folder ({exc})") from None
    return Sweep(path, spec, {str(k): str(v) for k, v in runs.items()}, rates if isinstance(rates, dict) else None)


def find_sweep(ref: str, runs_dir: str) -> Sweep:
    for candidate in (Path(ref), Path(runs_dir) / SWEEPS / ref):
        if (candidate / "sweep.json").is_file():
            return load_sweep(candidate)
    raise ConfigError(f"no sweep '{ref}' (give a sweep folder, or a sweep id under '{runs_dir}/{SWEEPS}')")


def list_sweeps(runs_dir: str | Path) -> list[Sweep]:
    folder = Path(runs_dir) / SWEEPS
    out = []
    for child in sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []:
        try:
            out.append(load_sweep(child))
        except RunFolderError:
            continue
    return out


# ---------------------------------------------------------------- execution
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
            if run_files(rec.path).resume.exists():
                out.append((p, True))
            else:  # ended before anything was saved to resume from: start it again
                sweep.runs.pop(p.key, None)
                out.append((p, False))
    return out


def _run_dir(sweep: Sweep, point: Point) -> Path:
    """The point's run folder, created (and recorded) when it has none."""
    from .worker import create_run

    known = sweep.runs.get(point.key)
    if known and not load_run(known, with_metrics=False).damaged:
        return Path(known)
    run_dir = create_run(sweep.config(point), "mnist")
    sweep.runs[point.key] = str(run_dir)
    sweep.save_runs()
    return run_dir


def driver_running(sweep: Sweep) -> bool:
    """Whether a driver is running the sweep now: it holds the sweep's lock,
    or one launched on this host is still starting (its pid is alive)."""
    if lock_held(sweep.path / DRIVER_LOCK):
        return True
    try:
        launched = json.loads((sweep.path / DRIVER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(launched, dict) and launched.get("host") == HOST and isinstance(launched.get("pid"), int) \
        and pid_running(launched["pid"])


def _hold_lock(sweep: Sweep) -> int:
    """Take the sweep's lock for this driver (ConfigError when another holds it)."""
    fd = os.open(sweep.path / DRIVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"sweep {sweep.sweep_id} is already being run by another process") from None
    return fd


def run_sweep(sweep: Sweep, on_progress: Callable[[str], None] | None = None) -> str:
    """Run every point still to do; return completed, stopped or failed.

    SIGTERM/SIGINT or a stop request stop every running point (after their
    final evaluation) and launch no more. One driver at a time: it holds the
    sweep's lock while it runs."""
    say = on_progress or (lambda line: None)
    configs = check(sweep.spec)
    lock = _hold_lock(sweep)
    workers = sweep.spec.workers or default_workers(configs, sweep.spec.threads)
    stopping = {"flag": False}

    def stop(*_):
        stopping["flag"] = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} \
        if _main_thread() else {}
    try:
        stop_now = lambda: stopping["flag"] or sweep.stop_requested()  # noqa: E731
        _wait_for_running(sweep, stop_now)  # points a previous driver left training finish first
        run = _run_ray if sweep.spec.executor == "ray" else _run_local
        if sweep.spec.rate_search and sweep.rates is None:
            run(sweep, _todo(sweep, sweep.spec.search_points()), workers, stop_now, say)
            if not stop_now():
                choose_rates(sweep)
                for group, rate in sweep.chosen_rates.items():
                    say(f"inner rate chosen on validation tasks for {_setting_text(json.loads(group))}: {rate:g}")
        if not stop_now() and (not sweep.spec.rate_search or sweep.rates is not None):
            main = [p for p in sweep.spec.points() if not sweep.spec.rate_search or p.group in sweep.chosen_rates]
            run(sweep, _todo(sweep, main), workers, stop_now, say)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(lock)
    states = [r.state if r is not None else "missing" for r in sweep.records(sweep.spec.points()).values()]
    if all(s == "completed" for s in states):
        return "completed"
    stopped = stopping["flag"] or sweep.stop_requested()
    unrated = sweep.spec.rate_search and sweep.rates is not None and \
        len(sweep.chosen_rates) < len(sweep.spec.settings())
    return "failed" if ("failed" in states or unrated) and not stopped else "stopped"


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
        running = [r for r in sweep.records().values() if r is not None and not r.damaged and r.state in ACTIVE]
        if not running:
            return
        if stop_now():
            for rec in running:
                request_stop(rec.path)
        time.sleep(POLL_SECONDS)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _run_local(sweep: Sweep, todo, workers: int, stop_now: Callable[[], bool], say) -> None:
    from .worker import launch

    pending = list(todo)
    running: dict[str, Path] = {}
    while pending or running:
        if stop_now():
            for run_dir in running.values():
                request_stop(run_dir)
            pending = []
        while pending and len(running) < workers and not stop_now():
            point, resume = pending.pop(0)
            run_dir = _run_dir(sweep, point)
            launch(run_dir, resume=resume, threads=sweep.spec.threads)
            running[point.key] = run_dir
            say(f"started {run_dir.name}")
        time.sleep(POLL_SECONDS)
        for key, run_dir in list(running.items()):
            rec = load_run(run_dir, with_metrics=False)
            if rec.damaged or rec.state not in ACTIVE:
                del running[key]
                say(f"{rec.state if not rec.damaged else 'damaged'}: {run_dir.name}")


def _ray_task(run_dir: str, resume: bool, threads: int) -> str:
    """A Ray task: train one run folder in the Ray worker's process."""
    import torch

    from .worker import execute

    torch.set_num_threads(threads)
    return execute(run_dir, resume=resume).status


def _run_ray(sweep: Sweep, todo, workers: int, stop_now: Callable[[], bool], say) -> None:
    import ray

    spec = sweep.spec
    package_root = str(Path(__file__).resolve().parent.parent)
    started_here = not ray.is_initialized()
    if started_here:
        env = {"env_vars": {"PYTHONPATH": package_root, "OMP_NUM_THREADS": str(spec.threads)}}
        if spec.address:
            ray.init(address=spec.address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers * spec.threads, 1), runtime_env=env, log_to_driver=False,
                     include_dashboard=False)
    try:
        from .resources import _uses_cuda

        task = ray.remote(_ray_task)
        pending = list(todo)
        running: dict[Any, tuple[str, Path]] = {}
        while pending or running:
            if stop_now():
                for _, run_dir in running.values():
                    request_stop(run_dir)
                pending = []
            while pending and len(running) < workers and not stop_now():
                point, resume = pending.pop(0)
                run_dir = _run_dir(sweep, point)
                gpus = spec.gpus_per_run if _uses_cuda(sweep.config(point), None) else 0
                ref = task.options(num_cpus=spec.threads, num_gpus=gpus).remote(str(run_dir), resume, spec.threads)
                running[ref] = (point.key, run_dir)
                say(f"started {run_dir.name} (Ray)")
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            for ref in done:
                _, run_dir = running.pop(ref)
                try:
                    status = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task that died: its folder tells the rest
                    status = f"failed ({type(exc).__name__})"
                say(f"{status}: {run_dir.name}")
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------ results
@dataclass
class Group:
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


def groups(sweep: Sweep) -> list[Group]:
    """The completed runs of each grid point, in grid order (a point's runs
    count once they are completed; the rate search's runs never do)."""
    out: dict[str, Group] = {}
    for p in sweep.spec.points():
        g = out.setdefault(p.group, Group(p.setting, [], [], []))
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



def launch_driver(sweep: Sweep) -> int:
    """Start ``python -m msr sweep --resume`` for the sweep in a process of its
    own session, so it outlives the app that launched it; return its pid."""
    import subprocess
    import sys
    import threading

    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    (sweep.path / "stop").unlink(missing_ok=True)
    launched = time.time()  # a stop asked for from now on reaches the driver, however slowly it starts
    cmd = [sys.executable, "-m", "msr", "sweep", "--resume", str(sweep.path.resolve()), "--quiet",
           "--launched", repr(launched)]
    with open(sweep.path / "driver.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=os.getcwd())
    atomic_write_text(sweep.path / DRIVER, dumps({"pid": proc.pid, "host": HOST, "launched": launched}))
    threading.Thread(target=proc.wait, name=f"msr-sweep-{proc.pid}", daemon=True).start()
    return proc.pid


# ------------------------------------------------------------- for the page
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
        return self.state in ACTIVE


def point_runs(sweep, with_metrics: bool = False, search: bool = False) -> list[PointRun]:
    """Every point of a sweep (msr.sweep.Sweep) in grid order, the rate
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


def measured_speeds(records: Iterable[RunRecord]) -> dict[str, float]:
    """Model (its label, e.g. "shared" or "plain conv + dense head") -> median
    steps per second of its completed runs (their last evaluation's overall
    rate); models never run are absent."""
    seen: dict[str, list[float]] = {}
    for rec in records:
        if rec.damaged or rec.state != "completed" or rec.kind != "mnist" or rec.config is None:
            continue
        rate = rec.last.get("steps_per_sec_overall")
        if isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0:
            seen.setdefault(rec.config.model_label(), []).append(rate)
    return {model: statistics.median(rates) for model, rates in seen.items()}


def estimate_seconds(configs: Sequence[RunConfig], speeds: Mapping[str, float], workers: int) -> float | None:
    """Wall time of the configs' runs, ``workers`` at once, at the measured
    speeds; None when an architecture has no measured speed."""
    if not configs:
        return 0.0
    if any(c.model_label() not in speeds for c in configs):
        return None
    total = sum(c.steps / speeds[c.model_label()] for c in configs)
    return total / max(1, min(workers, len(configs)))
