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


SHARING_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # the policy, and GNU OpenMP's spin count if one is set


def share_cores() -> bool:
    """Let OpenMP's idle threads sleep instead of spin (OMP_WAIT_POLICY=PASSIVE).

    By default each of torch's threads spins for a while when it runs out of
    work. Two training processes on the same cores then burn each other's time
    spinning: measured here, a demo run beside two others ran at about 1
    step/s instead of 4 (benchmarks/busy_machine.py). Waking a sleeping
    thread costs a lone run on an idle machine a tenth to a fifth of its
    speed; a short spin before sleeping (GOMP_SPINCOUNT=1000) did not win that
    back reliably in the same benchmark. OpenMP reads the setting once, when
    torch loads it, so this must run before torch is imported; it returns
    whether the setting is in force for this process. An explicit
    OMP_WAIT_POLICY is kept; MSR_OMP_WAIT=default leaves OpenMP alone.
    """
    if os.environ.get("MSR_OMP_WAIT", "").lower() == "default":
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"


def sharing_env() -> dict[str, str]:
    """This process's OpenMP settings (share_cores' unless told otherwise), for processes it starts where its
    environment does not reach (Ray's workers)."""
    share_cores()
    return {k: os.environ[k] for k in SHARING_VARIABLES if k in os.environ}


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
