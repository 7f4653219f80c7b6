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
import os

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
