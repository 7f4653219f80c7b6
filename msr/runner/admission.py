"""What the machine must have for a run, checked when it is launched: a GPU if it asks for one, and the memory.

A run's settings are checked by its config alone (pure; bad input is a
ConfigError). Whether this machine can take the run *now* is asked here, when
it is launched (the app's Start, the command line, a resume, a sweep), and a
refusal is a MachineError in its own words: what the run needs, what the
machine has, what to change. The disk and the runs folder are checked when
the run folder is made (msr.store.folders).

A run that asks for more memory than the machine has would die with a memory
error (or be killed) after its folder was written; its kind's estimate
(msr.core.kind.RunKind.memory) is compared with the memory free now.
"""
from __future__ import annotations

import os

try:
    import psutil
except ImportError:  # an environment made before psutil was a dependency
    psutil = None

from .. import kinds
from ..core.errors import ConfigError, MachineError
from ..core.runtime import LIMIT_ENV, MIB, available_memory_bytes, override_bytes  # noqa: F401 - re-exported
from .trackers import check_trackers

GIB = 2**30


def format_bytes(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def uses_cuda(config) -> bool:
    """Whether the run would train on a GPU here ('auto': where there is one)."""
    if config.device == "cpu":
        return False
    if config.device == "cuda":
        return True
    return cuda_available()


def _gpu_free_bytes() -> int | None:
    import torch
    try:
        return int(torch.cuda.mem_get_info()[0])
    except (RuntimeError, AssertionError):
        return None


def check_device(config) -> None:
    """MachineError when the run asks for a GPU this machine does not have."""
    if config.device == "cuda" and not cuda_available():
        raise MachineError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'",
                           field="device")


def check_memory(config) -> None:
    """MachineError (one line: the estimate, the limit, what to change) when
    the run's estimated peak exceeds the memory available to it: the
    machine's free memory, or on CUDA the GPU's."""
    source = f" (the limit set by {LIMIT_ENV})" if override_bytes() is not None else ""
    need = kinds.of(config).memory(config, uses_cuda(config))
    if need is None:
        return
    if need.cuda:
        override = override_bytes()
        limit = override if override is not None else _gpu_free_bytes()
        where = "GPU memory"
        if limit is None:
            return
    else:
        limit, where = available_memory_bytes(), "memory"
    if need.bytes > limit:
        raise MachineError(f"this run needs about {format_bytes(need.bytes)} of {where} at its peak (estimate), "
                           f"more than the {format_bytes(limit)} available{source}; {need.advice}")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads) -> None:
    """ConfigError (one line) for more torch threads than this machine has cores."""
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > cores():
        raise ConfigError(f"threads must be at most the {cores()} cores of this machine, got {threads}",
                          field="threads")


def admit(config) -> None:
    """Whether this machine can take the run now: MachineError (one line) if
    not; ConfigError for more threads than it has cores, or when a tracker the
    run logs to is not installed."""
    check_threads(getattr(config, "threads", None))
    check_trackers(config)
    check_device(config)
    check_memory(config)
