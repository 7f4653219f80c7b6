"""A sweep's folder, ``<runs_dir>/.sweeps/<sweep-id>/``: made, read back, and the driver that runs it."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ...core.errors import ConfigError
from ...mnist.config import RunConfig
from ...store.files import RunFolderError, atomic_write_text, dumps
from ...store.folders import make_new_folder, prepare_root, stamp
from ...store.liveness import HOST
from ...store.locks import acquire, lock_held, pid_running
from ...store.reader import load_run
from ..process import launch_detached
from .spec import Point, SweepSpec, admit_points

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
