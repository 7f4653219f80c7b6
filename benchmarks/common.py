"""Shared pieces of the benchmark scripts: the student project's workload and
a fair timer (warm-up, interleaved repeats, median)."""
from __future__ import annotations

import os
import re
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from msr.core.choices import make_angles
from msr.core.data import load_bundled, prepare
from msr.core.meta import Episode


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads){gpu}"


def student_episodes(count: int, tasks: int = 5, support: int = 1, query: int = 19, n_angles: int = 5,
                     seed: int = 0, device: str = "cpu") -> list[Episode]:
    """The student project's tasks: 1 support + 19 query images of 28×28 per
    task, digits 0–9 as labels, each image at a random angle of {0, 9, …, 36}°."""
    data = load_bundled()
    g = torch.Generator().manual_seed(seed)
    angles = torch.tensor(make_angles(n_angles, 9.0))
    out = []
    for _ in range(count):
        idx = torch.randint(len(data.train), (tasks, support + query), generator=g)
        a_idx = torch.randint(n_angles, (tasks, support + query), generator=g)
        x = prepare(data.train.images[idx.reshape(-1)], angles[a_idx.reshape(-1)]).reshape(tasks, support + query, 1, 28, 28)
        y = data.train.labels[idx]
        x, y, a_idx = x.to(device), y.to(device), a_idx.to(device)
        out.append(Episode(x[:, :support], y[:, :support], x[:, support:], y[:, support:],
                           a_idx[:, :support], a_idx[:, support:]))
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class Timing:
    name: str
    steps_per_sec: float
    runs: list[float]


def interleaved(candidates: dict[str, Callable[[], None]], steps: int, repeats: int, warmup: int,
                device: str = "cpu") -> dict[str, Timing]:
    """Steps/sec of each candidate: warm-up, then `repeats` rounds in which every
    candidate runs `steps` steps in turn (so drift in machine load hits all of
    them alike); the median round counts."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
        sync(device)
    rates: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            sync(device)
            rates[name].append(steps / (time.perf_counter() - t0))
    return {k: Timing(k, statistics.median(v), v) for k, v in rates.items()}


def _rss_mib() -> float:
    import resource
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2 ** 20


def peak_growth_mib(run_steps: Callable[[], None], device: str) -> float:
    """Peak memory that run_steps() needs beyond what the process holds
    before it: on the CPU the growth of the resident set's peak (so call it
    in a fresh process); on CUDA the allocator's peak."""
    import resource
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2 ** 20
    else:
        base = _rss_mib()
    run_steps()
    sync(device)
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20 - base
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base


def in_child(target: Callable, *args):
    """target(*args, queue) in a fresh spawned process; what it puts on the
    queue comes back."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    value = queue.get(timeout=600)
    proc.join()
    return value


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


DOCS = Path(__file__).resolve().parents[1] / "docs"


def update_doc(doc: str, name: str, body: str, rerun: str) -> None:
    """Put body between the ``<!-- name:start/end -->`` markers of docs/<doc>
    (appending the block when they are missing), so every table there comes
    from a run of the script that says how to rerun it."""
    path = DOCS / doc
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{body}\n\nRerun: `{rerun}`\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    print(f"updated {path}")


def pick(text: str, allowed, name: str) -> list[str]:
    """A comma-separated choice list; ValueError (one line) on an unknown entry."""
    values = [v for v in text.split(",") if v]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown {name} {bad[0]!r}; allowed: {', '.join(allowed)}")
    return values
