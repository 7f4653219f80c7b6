"""Process settings that training needs to run at the machine's speed.

glibc's malloc hands every block over 32 MiB straight back to the kernel
when it is freed. A meta-training step frees and re-allocates activation
tensors of that size dozens of times (the `seed` preset's 1,000 images give
82 MiB tensors), and each new one is faulted in and zeroed page by page
again: measured, that doubled the time of a `seed` step on 2 cores (see
benchmarks/presets.py). Keeping freed memory in the heap trades the return
of memory to the system for that time; a training process reuses the same
sizes every step, so its resident set stays at its first step's peak.

Set MSR_MALLOC=default to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import time

try:
    import psutil
except ImportError:  # an environment made before psutil was a dependency
    psutil = None

from .errors import ConfigError

# When this process started, near enough: python -m msr loads this module first (msr/__main__.py), before torch.
# A worker's start-up (Python, torch, the data, the model) is the time from here to its first step.
PROCESS_STARTED = time.time()

MIB = 2**20
LIMIT_ENV = "MSR_MEMORY_LIMIT_MB"

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2 ** 31 - 1

_state = {"kept": False}


def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Make malloc keep freed blocks for reuse, for the rest of the process.
    Returns whether the setting is in force: False where the C library is
    not glibc, or with MSR_MALLOC=default."""
    if _state["kept"]:
        return True
    if os.environ.get("MSR_MALLOC", "").lower() == "default":
        return False
    libc = _libc()
    if libc is None:
        return False
    _state["kept"] = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    return _state["kept"]


def freed_memory_kept() -> bool:
    return _state["kept"]


WAIT_ENV = "MSR_OMP_WAIT"  # sleep, spin, or auto
DEFAULT_WAIT = "auto"
WAIT_CHOICES = {"auto": "auto", "sleep": "sleep", "passive": "sleep", "spin": "spin", "default": "spin"}
_CHOSEN_ENV = "MSR_OMP_WAIT_CHOSEN"  # set beside OMP_WAIT_POLICY when share_cores set it, not the user
SHARING_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # the policy, and GNU OpenMP's spin count if one is set
OTHER_WORK_CORES = 0.25  # other processes keeping this much of a core busy or more: idle threads sleep
SAMPLE_SECONDS = 0.2
HANDOVER_BEATS = 2  # looks in a row (one each heartbeat, 2 s) that call for a hand-over (HandOver)
# A run with less training left than this finishes where it is. Starting a demo run's process again costs
# 3.3-3.7 s here; spinning beside other runs costs half the speed or more, sleeping alone a quarter of it.
HANDOVER_MIN_SECONDS = {"sleep": 10.0, "spin": 30.0}
START_ENV = "MSR_OMP_WAIT_START"  # "spin": the program a sleeping run hands over to spins without looking first


class OtherWork:
    """The cores other processes kept busy since the last look: the
    machine's CPU time less this process's and the one that started it (an
    app still drawing the page whose Start launched this run is not
    competing work). A process read once and gone by the next look is left
    out of both looks."""

    def __init__(self):
        me = psutil.Process()
        self.procs = [p for p in (me, me.parent()) if p is not None]
        self.last = self._read()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def _read(self) -> tuple[float, float, dict[int, float]]:
        ours = {}
        for p in self.procs:
            try:
                ours[p.pid] = sum(p.cpu_times()[:2])
            except psutil.Error:
                pass
        return time.monotonic(), self._busy(), ours

    def cores(self) -> float:
        (t0, machine0, ours0), (t1, machine1, ours1) = self.last, self._read()
        self.last = (t1, machine1, ours1)
        ours = sum(ours1[pid] - ours0[pid] for pid in ours1.keys() & ours0.keys())
        return max(0.0, (machine1 - machine0) - ours) / max(t1 - t0, 1e-6)


def watch_other_work() -> OtherWork | None:
    """An OtherWork from now on; None without psutil, or where the machine's or this process's times cannot be read."""
    if psutil is None:
        return None
    try:
        return OtherWork()
    except (psutil.Error, OSError):
        return None


def other_work_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """How many cores other processes (OtherWork) kept busy over ``seconds``; None without psutil."""
    watch = watch_other_work()
    if watch is None:
        return None
    time.sleep(seconds)
    try:
        return watch.cores()
    except (psutil.Error, OSError):
        return None


class HandOver:
    """When a run should go on in a fresh process whose idle threads do the
    other thing (``to``: "sleep" or "spin"; OpenMP reads its wait policy only
    when a process starts): a spinning run once other processes have kept
    OTHER_WORK_CORES busy for ``beats`` looks in a row, a sleeping one once
    the machine has been that quiet for as long (one look is a spike: the
    browser drawing a chart). Only while enough training is left to pay for
    starting a process again (``min_seconds``)."""

    def __init__(self, watch: OtherWork, to: str, beats: int, min_seconds: float):
        self.watch, self.to, self.beats, self.min_seconds = watch, to, beats, min_seconds
        self.seen = 0  # looks in a row that call for the change
        try:
            watch.cores()  # from now on: the process's own start (and the burst that launched it) is not looked at
        except (psutil.Error, OSError):
            pass

    def due(self, seconds_left: float | None) -> bool:
        """Look once (every heartbeat); ``seconds_left``: the run's training time left, None while unknown."""
        try:
            busy = self.watch.cores() >= OTHER_WORK_CORES
        except (psutil.Error, OSError):
            return False
        self.seen = self.seen + 1 if busy == (self.to == "sleep") else 0
        return self.seen >= self.beats and seconds_left is not None and seconds_left >= self.min_seconds


def hand_over() -> HandOver | None:
    """Under MSR_OMP_WAIT=auto, for a process that trains: a HandOver to
    sleeping threads where its threads spin, to spinning ones where they
    sleep because other work was there when it started. None otherwise:
    spin or sleep was asked for, runs started together, or a run that has
    handed over to sleeping threads once (it stays so: no back and forth)."""
    to = _state.get("then")
    if _state.get("watch") is None or to is None:
        return None
    return HandOver(_state["watch"], to, HANDOVER_BEATS, HANDOVER_MIN_SECONDS[to])


def _asked(env) -> str:
    """What MSR_OMP_WAIT in ``env`` asks for: sleep, spin or auto (unset: DEFAULT_WAIT; an unknown word: sleep)."""
    return WAIT_CHOICES.get(env.get(WAIT_ENV, DEFAULT_WAIT).strip().lower(), "sleep")


def share_cores(sample: bool = False) -> str:
    """Set, before torch loads OpenMP, whether its idle threads spin or sleep
    in this process; return "spin" or "sleep".

    Spinning threads of two training processes starve each other (a demo run
    beside two others at about 1 step/s instead of 4.4,
    benchmarks/busy_machine.py); sleeping ones cost a run alone on an idle
    machine a quarter of its speed. So by default (MSR_OMP_WAIT=auto) a
    process about to train (``sample``) looks at the machine: it spins when
    other processes keep less than OTHER_WORK_CORES busy, sleeps otherwise,
    and goes on looking while it trains (hand_over: OpenMP cannot change its
    policy later, so the run goes on in a fresh process that does the other
    thing). Every other process (the app, the suite, a command that reads)
    sleeps, and so do runs started together (child_environment).
    MSR_OMP_WAIT=sleep or spin fixes the choice for good. The wait policy
    never changes a run's numbers. An OMP_WAIT_POLICY of one's own is kept.
    """
    own = os.environ.get("OMP_WAIT_POLICY") or None  # set but empty: OpenMP ignores it, and so does this
    if own is not None and not os.environ.get(_CHOSEN_ENV):
        return "sleep" if own.upper() == "PASSIVE" else "spin"
    choice = _asked(os.environ)
    handed_spin = os.environ.pop(START_ENV, "") == "spin"  # (a sleeping run handed over to this process)
    _state.update(watch=None, then=None)
    if choice == "auto":
        busy = (0.0 if handed_spin else other_work_cores()) if sample else None
        choice = "spin" if busy is not None and busy < OTHER_WORK_CORES else "sleep"
        if busy is not None:  # it keeps looking while the run trains (HandOver)
            _state.update(watch=watch_other_work(), then="sleep" if choice == "spin" else "spin")
    if choice == "sleep":
        os.environ.update({"OMP_WAIT_POLICY": "PASSIVE", _CHOSEN_ENV: "1"})
    else:
        os.environ.pop("OMP_WAIT_POLICY", None)
        os.environ.pop(_CHOSEN_ENV, None)
    return choice


def wait_policy() -> str:
    """What this process's OpenMP threads do when idle: "spin" or "sleep" (recorded with each run)."""
    return "sleep" if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else "spin"


def child_environment(env, together: bool = False) -> dict[str, str]:
    """``env`` for a training process this one starts. It makes its own choice
    (an OMP_WAIT_POLICY that share_cores set is this process's, not the
    child's), and with MSR_OMP_WAIT=auto one that starts ``together`` with
    others sleeps: started in the same instant, each would find the machine
    idle."""
    env = dict(env)
    if env.pop(_CHOSEN_ENV, None):
        env.pop("OMP_WAIT_POLICY", None)
    if together and _asked(env) == "auto":
        env[WAIT_ENV] = "sleep"
    return env


def continuation_environment(env, to: str) -> dict[str, str]:
    """``env`` for the process a run hands over to (HandOver), whose idle
    threads do ``to``: sleep for good, or spin at once and go on looking."""
    return {**child_environment(env), **({WAIT_ENV: "sleep"} if to == "sleep" else {WAIT_ENV: "auto", START_ENV: "spin"})}


def sharing_env() -> dict[str, str]:
    """OpenMP settings for Ray's workers, which run runs side by side and do not start as ``python -m msr``:
    OMP_WAIT_POLICY itself, as share_cores would set it for processes started together."""
    env = child_environment(os.environ, together=True)
    if "OMP_WAIT_POLICY" not in env and _asked(env) == "sleep":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return {k: env[k] for k in (*SHARING_VARIABLES, WAIT_ENV) if k in env}


def available_memory_bytes() -> int:
    """Memory a new run may use: MemAvailable of /proc/meminfo (the free
    physical pages where that file is missing), or MSR_MEMORY_LIMIT_MB when
    it is set."""
    override = override_bytes()
    if override is not None:
        return override
    if psutil is not None:  # every OS; where it is missing (an environment made before it was a dependency), /proc
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: refuse nothing


def override_bytes() -> int | None:
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{LIMIT_ENV} must be a number of MiB, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{LIMIT_ENV} must be a number of MiB > 0, got {text!r}")
    return int(value * MIB)
