"""A sweep's folder, ``<runs_dir>/.sweeps/<sweep-id>/``: made, read back, and the driver that runs it."""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ...core.errors import ConfigError
from ...mnist.config import RunConfig
from ...store.files import Damaged, RunFolderError, atomic_write_text, dumps, is_whole, read_json, real_folder
from ...store.folders import make_new_folder, prepare_root, stamp
from ...store.liveness import HOST
from ...store.locks import acquire, lock_held, pid_running
from ...store.reader import load_run
from ..process import launch_detached
from .spec import MAX_POINTS, Point, SweepSpec, admit_points

SWEEPS = ".sweeps"
DRIVER, DRIVER_LOCK, DRIVER_LOG = "driver.json", "driver.lock", "driver.log"  # who runs the sweep; held while one does
RATES = "rates.json"  # the inner rate each grid setting's search chose
STOP = "stop"


def new_sweep_id() -> str:
    return f"{stamp()}-{secrets.token_hex(2)}"


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
        atomic_write_text(self.path / STOP, str(time.time()))

    def stop_requested(self) -> bool:
        return (self.path / STOP).exists()

    def clear_stop_before(self, moment: float) -> None:
        """Forget a stop asked for before ``moment`` (a resume answers it); one
        asked since, while this driver was starting, still counts."""
        try:
            if (self.path / STOP).stat().st_mtime < moment:
                (self.path / STOP).unlink()
        except OSError:
            pass

    def records(self, points: Iterable["Point"] | None = None) -> dict[str, Any]:
        """Point key -> its run's record (None: no run yet), for every point
        (the rate search's included) or the given ones."""
        points = self.spec.all_points() if points is None else points
        return {p.key: (load_run(self.runs[p.key], with_metrics=False) if p.key in self.runs else None)
                for p in points}


def create_sweep(spec: SweepSpec) -> Sweep:
    """The sweep's folder, once every point is checked and this machine can
    take each one (nothing is written otherwise)."""
    admit_points(spec)
    root = prepare_root(spec.base.get("runs_dir", "runs"))
    path = make_new_folder(root / SWEEPS, new_sweep_id)
    atomic_write_text(path / "sweep.json", dumps(spec.to_dict(), indent=2))
    sweep = Sweep(path, spec)
    sweep.save_runs()
    return sweep


def _read(path: Path, name: str, default=None):
    """A sweep file's JSON (capped, never through a link); ``default`` when it is missing."""
    try:
        return read_json(path / name)
    except Damaged as exc:
        if str(exc) == f"no {name}" and default is not None:
            return default() if callable(default) else default
        raise


def _check_spec(data) -> SweepSpec:
    """sweep.json's content as a SweepSpec, every field of the right type and
    every point a valid config; Damaged (one line) otherwise."""
    if not isinstance(data, dict):
        raise Damaged(f"sweep.json is not an object (it holds {type(data).__name__})")
    if not isinstance(data.get("base"), dict):
        raise Damaged("sweep.json has no 'base' object")
    grid, seeds = data.get("grid", {}), data.get("seeds")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise Damaged("sweep.json: 'grid' must be an object of non-empty lists")
    if not isinstance(seeds, list) or not seeds or not all(is_whole(x) for x in seeds):
        raise Damaged("sweep.json: 'seeds' must be a list of whole numbers")
    search = data.get("rate_search")
    if search is not None and not (isinstance(search, dict) and isinstance(search.get("values"), list)
                                   and is_whole(search.get("steps")) and is_whole(search.get("seed", 0))
                                   and all(isinstance(v, (int, float)) for v in search["values"])):
        raise Damaged("sweep.json: 'rate_search' has the wrong shape")
    for key, check in (("executor", lambda v: isinstance(v, str)), ("threads", is_whole),
                       ("workers", lambda v: v is None or is_whole(v)), ("name", lambda v: isinstance(v, str)),
                       ("address", lambda v: v is None or isinstance(v, str)),
                       ("gpus_per_run", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))):
        if key in data and not check(data[key]):
            raise Damaged(f"sweep.json: '{key}' has the wrong type")
    spec = SweepSpec.from_dict(data)
    if len(spec.all_points()) > MAX_POINTS:
        raise Damaged(f"sweep.json describes more than {MAX_POINTS:,} runs")
    try:
        for point in spec.all_points():
            spec.config(point)
    except (ConfigError, TypeError, ValueError) as exc:
        raise Damaged(f"sweep.json does not describe runs ({exc})") from None
    return spec


def _rates_shape(rates) -> bool:
    """rates.json: {"chosen": {group: rate}, "candidates": {group: {rate text: accuracy or null}}, ...}."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if not isinstance(rates, dict):
        return False
    chosen, candidates = rates.get("chosen", {}), rates.get("candidates", {})
    return (isinstance(chosen, dict) and all(number(v) for v in chosen.values())
            and isinstance(candidates, dict) and all(
                isinstance(accs, dict) and all(a is None or number(a) for a in accs.values())
                and all(_float_text(r) for r in accs) for accs in candidates.values()))


def _float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_sweep(path: str | Path) -> Sweep:
    """A sweep folder, read back strictly: RunFolderError (one line) when one
    of its files is a link, a special file, too large or of the wrong shape."""
    path = Path(path)
    try:
        if not real_folder(path):
            raise Damaged("not a folder")
        spec = _check_spec(_read(path, "sweep.json"))
        runs = _read(path, "runs.json", dict)
        if not isinstance(runs, dict) or not all(isinstance(v, str) for v in runs.values()):
            raise Damaged("runs.json is not an object of run folders")
        root = path.parent.parent
        for folder in runs.values():  # only run folders of this runs folder: a sweep never trains another's
            if Path(folder).parent.resolve() != root.resolve() or Path(folder).name.startswith("."):
                raise Damaged(f"runs.json names '{folder}', which is not a run folder of '{root}'")
        rates = _read(path, RATES, lambda: None)
        if rates is not None and not _rates_shape(rates):
            raise Damaged(f"{RATES} has the wrong shape")
    except Damaged as exc:
        raise RunFolderError(f"'{path}' is not a readable sweep folder ({exc})") from None
    return Sweep(path, spec, {str(k): str(v) for k, v in runs.items()}, rates)


def find_sweep(ref: str, runs_dir: str) -> Sweep:
    for candidate in (Path(ref), Path(runs_dir) / SWEEPS / ref):
        if os.path.lexists(candidate / "sweep.json"):
            return load_sweep(candidate)
    raise ConfigError(f"no sweep '{ref}' (give a sweep folder, or a sweep id under '{runs_dir}/{SWEEPS}')")


def _sweep_folders(runs_dir: str | Path) -> list[Path]:
    folder = Path(runs_dir) / SWEEPS
    try:
        return sorted((c for c in folder.iterdir() if not c.name.startswith(".")), reverse=True) \
            if real_folder(folder) else []
    except OSError:
        return []


def list_sweeps(runs_dir: str | Path) -> list[Sweep]:
    """The sweeps under the runs folder, newest first (damaged ones left out: see :func:`damaged_sweeps`)."""
    out = []
    for child in _sweep_folders(runs_dir):
        try:
            out.append(load_sweep(child))
        except RunFolderError:
            continue
    return out


def damaged_sweeps(runs_dir: str | Path) -> list[tuple[Path, str]]:
    """(folder, why) of every sweep folder under the runs folder that cannot be read."""
    out = []
    for child in _sweep_folders(runs_dir):
        try:
            load_sweep(child)
        except RunFolderError as exc:
            out.append((child, str(exc)))
    return out


def driver_running(sweep: Sweep) -> bool:
    """Whether a driver is running the sweep now: it holds the sweep's lock,
    or one launched on this host is still starting (its pid is alive)."""
    if lock_held(sweep.path / DRIVER_LOCK):
        return True
    try:
        launched = read_json(sweep.path / DRIVER)
    except Damaged:
        return False
    return isinstance(launched, dict) and launched.get("host") == HOST and isinstance(launched.get("pid"), int) \
        and pid_running(launched["pid"])


def hold_lock(sweep: Sweep) -> int:
    """Take the sweep's lock for this driver (ConfigError when another holds it)."""
    fd = acquire(sweep.path / DRIVER_LOCK)
    if fd is None:
        raise ConfigError(f"sweep {sweep.sweep_id} is already being run by another process")
    return fd


def launch_driver(sweep: Sweep) -> int:
    """Start ``python -m msr sweep --resume`` for the sweep in a process of its
    own session, so it outlives the app that launched it; return its pid."""
    (sweep.path / STOP).unlink(missing_ok=True)
    launched = time.time()  # a stop asked for from now on reaches the driver, however slowly it starts
    pid = launch_detached(["sweep", "--resume", str(sweep.path.resolve()), "--quiet", "--launched", repr(launched)],
                          sweep.path / DRIVER_LOG)
    atomic_write_text(sweep.path / DRIVER, dumps({"pid": pid, "host": HOST, "launched": launched}))
    return pid
