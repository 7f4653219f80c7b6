"""The shipped presets as users run them: `seed` and `demo` end to end,
against the student-style reference loop doing the same model work.

"End to end" is one training step of ``msr.mnist.trainer.Trainer``: sampling and
rotating the step's tasks, the meta-step, and the run's bookkeeping (per-angle
counts, loss sums). The reference (benchmarks/reference_loop.py: a ``higher``
context per task, the authors' layer code) gets the same tasks already
sampled, so it does the same model work and no sampling. Both run in one
process, interleaved round by round, median of the rounds after a warm-up;
the process keeps freed memory as training does (msr/core/runtime.py), so the
ratio compares code with code.

Also reported, per preset:
  - GFLOP per step (torch's FLOP counter: matmuls and convolutions) and the
    achieved GFLOP/s, against this machine's GEMM rate measured in the same
    process (a 2048² matmul);
  - an evaluation's time (the preset's test tasks);
  - peak memory of a step, in a fresh child process (CPU: growth of the
    resident set's peak; CUDA: the allocator's peak);
  - the same end-to-end rate with glibc's default allocator (MSR_MALLOC=default),
    in a child process, to show what keeping freed memory buys.
  - with --roofline, each kind of operator's time against its own limit:
    FLOPs at the GEMM rate or bytes at the measured copy bandwidth.

    python benchmarks/presets.py                  # both presets (~5 min on 2 cores)
    python benchmarks/presets.py --roofline       # and where the time goes
    python benchmarks/presets.py --device cuda    # on a GPU
    python benchmarks/presets.py --quick          # smoke run
    python benchmarks/presets.py --update-docs
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks.common import in_child, interleaved, machine, peak_growth_mib, sync, table, update_doc  # noqa: E402
from benchmarks.reference_loop import ReferenceLoop, StudentNet  # noqa: E402
from msr.core.data import load_bundled  # noqa: E402
from msr.core.meta import Episode  # noqa: E402
from msr.core.runtime import keep_freed_memory  # noqa: E402
from msr.mnist.config import PRESETS, preset  # noqa: E402
from msr.mnist.trainer import Trainer  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "presets"  # where the table goes in docs/
STEPS_PER_ROUND = {"seed": 4, "demo": 20}


def make_trainer(name: str, device: str, data) -> Trainer:
    return Trainer(preset(name, device=device, seed=0), data)


def reference_for(trainer: Trainer, episodes: int = 4):
    """The reference loop on a copy of the trainer's model, with tasks drawn
    by a sampler of the same kind (its own seed, so the trainer's draws are
    not disturbed)."""
    cfg = trainer.config
    sampler_seed = torch.Generator().manual_seed(12345)
    from msr.core.data import TaskSampler
    sampler = TaskSampler(trainer.data.train, trainer.angles, cfg.ways, cfg.shots, cfg.queries,
                          cfg.rotation, sampler_seed, trainer.device)
    eps = [Episode.of(sampler.sample(cfg.tasks_per_step)) for _ in range(episodes)]
    loop = ReferenceLoop(StudentNet(trainer.model).to(trainer.device), inner_lr=cfg.inner_lr,
                         outer_lr=cfg.outer_lr, inner_steps=cfg.inner_steps)
    counter = iter(range(10 ** 9))
    return lambda: loop.step(eps[next(counter) % len(eps)])


def flops_per_call(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def gemm_rate(device: str, size: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of a square float32 matmul: the machine's practical peak."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def copy_bandwidth(device: str, mib: int = 256, repeats: int = 7) -> float:
    """GB/s of a large tensor copy (read + write): the memory-bound limit."""
    x = torch.randn(mib * 2 ** 18, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        y.copy_(x)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * x.numel() * 4 / statistics.median(times) / 1e9


def eval_seconds(trainer: Trainer, repeats: int = 3) -> float:
    trainer.evaluate(0)
    times = []
    for _ in range(repeats):
        sync(trainer.device.type)
        t0 = time.perf_counter()
        trainer.evaluate(0)
        sync(trainer.device.type)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_preset(name: str, args, data) -> dict:
    trainer = make_trainer(name, args.device, data)
    reference = reference_for(make_trainer(name, args.device, data))
    product = trainer.step
    steps = 1 if args.quick else STEPS_PER_ROUND[name]
    timings = interleaved({"product": product, "reference": reference}, steps=steps, repeats=args.repeats,
                          warmup=args.warmup, device=args.device)
    flops = flops_per_call(product)
    ref_flops = flops_per_call(reference)
    rate, ref_rate = timings["product"].steps_per_sec, timings["reference"].steps_per_sec
    return {"preset": name, "steps_per_sec": rate, "reference_steps_per_sec": ref_rate, "ratio": rate / ref_rate,
            "rounds": timings["product"].runs, "reference_rounds": timings["reference"].runs,
            "gflop_per_step": flops / 1e9, "reference_gflop_per_step": ref_flops / 1e9,
            "gflops": flops / 1e9 * rate, "reference_gflops": ref_flops / 1e9 * ref_rate,
            "eval_seconds": eval_seconds(trainer), "eval_tasks": trainer.config.eval_tasks}


# ----------------------------------------------------------- child processes
def _memory_child(name: str, device: str, steps: int, queue) -> None:
    keep_freed_memory()
    trainer = make_trainer(name, device, load_bundled())
    queue.put(peak_growth_mib(lambda: [trainer.step() for _ in range(steps)], device))


def peak_memory_mib(name: str, device: str, steps: int) -> float:
    return in_child(_memory_child, name, device, steps)


def default_allocator_rate(name: str, args) -> float:
    """The product's end-to-end rate in a child process with glibc's default
    allocator."""
    cmd = [sys.executable, __file__, "--presets", name, "--device", args.device, "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--product-only"] + (["--quick"] if args.quick else [])
    env = {**os.environ, "MSR_MALLOC": "default"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["steps_per_sec"]


def product_only(name: str, args) -> dict:
    keep_freed_memory()
    trainer = make_trainer(name, args.device, load_bundled())
    steps = 1 if args.quick else STEPS_PER_ROUND[name]
    timing = interleaved({"product": trainer.step}, steps=steps, repeats=args.repeats, warmup=args.warmup,
                         device=args.device)["product"]
    return {"preset": name, "steps_per_sec": timing.steps_per_sec}


# ------------------------------------------------------------------ roofline
def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# Operators that only make a new view of memory (or allocate it): no bytes move.
NO_DATA = {"aten::view", "aten::_unsafe_view", "aten::reshape", "aten::_reshape_alias", "aten::transpose",
           "aten::t", "aten::permute", "aten::expand", "aten::slice", "aten::select", "aten::as_strided",
           "aten::unsqueeze", "aten::squeeze", "aten::detach", "aten::alias", "aten::lift_fresh", "aten::empty",
           "aten::empty_strided", "aten::empty_like", "aten::resize_", "aten::unbind", "aten::split",
           "aten::narrow", "aten::movedim", "aten::expand_as", "aten::numpy_T", "aten::flatten"}


def _bytes_moved(name: str, shapes: list) -> float:
    """Least bytes an operator must move: its tensor inputs read once and an
    output written once (a matmul's output is m×n; other outputs are taken
    to be as large as the largest input)."""
    if name in NO_DATA:
        return 0.0
    tensors = [s for s in shapes if isinstance(s, (list, tuple)) and s]
    inputs = sum(_numel(s) for s in tensors)
    if name in ("aten::mm", "aten::addmm") and len(tensors) >= 2:
        out = tensors[-2][0] * tensors[-1][-1]
    elif name == "aten::bmm" and len(tensors) == 2:
        out = tensors[0][0] * tensors[0][1] * tensors[1][2]
    elif name in ("aten::sum", "aten::mean") or not tensors:
        out = 0
    else:
        out = max(_numel(s) for s in tensors)
    return 4.0 * (inputs + out)


def roofline(name: str, args, data, peak_gflops: float, bandwidth: float, steps: int = 3) -> list[dict]:
    """Each operator kind's measured self time per step against its bound:
    max(FLOPs / GEMM rate, least bytes / copy bandwidth)."""
    from torch.profiler import ProfilerActivity, profile

    trainer = make_trainer(name, args.device, data)
    for _ in range(2):
        trainer.step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities, record_shapes=True, with_flops=True) as prof:
        for _ in range(steps):
            trainer.step()
        sync(args.device)
    rows: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "gflop": 0.0, "mb": 0.0, "calls": 0})
    cuda = args.device.startswith("cuda")
    for ev in prof.events():
        if not ev.name.startswith("aten::"):
            continue
        row = rows[ev.name]
        self_us = ev.self_device_time_total if cuda else ev.self_cpu_time_total
        total_us = ev.device_time_total if cuda else ev.cpu_time_total
        row["ms"] += self_us / 1e3 / steps
        row["calls"] += 1 / steps
        # Work is charged to the operator that does it: a composite such as
        # aten::matmul spends its time in the kernels it calls.
        if total_us > 0 and self_us >= 0.5 * total_us:
            row["gflop"] += (ev.flops or 0) / 1e9 / steps
            row["mb"] += _bytes_moved(ev.name, ev.input_shapes or []) / 1e6 / steps
    out = []
    for op, r in rows.items():
        bound = max(r["gflop"] / peak_gflops, r["mb"] / 1e3 / bandwidth) * 1e3
        out.append({"op": op, **r, "bound_ms": bound})
    out.sort(key=lambda r: -r["ms"])
    return out


# ---------------------------------------------------------------------- main
def describe(name: str) -> str:
    p = PRESETS[name]
    per_task = p["ways"] * (p["shots"] + p["queries"])
    return (f"`{name}`: {p['ways']}-way {p['shots']}-shot, {p['queries']} queries per class, "
            f"{p['tasks_per_step']} tasks per step ({per_task * p['tasks_per_step']:,} images)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="seed,demo", help="comma-separated presets")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps of each candidate")
    p.add_argument("--roofline", action="store_true", help="also profile where each preset's step goes")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 step a round, 2 rounds")
    p.add_argument("--product-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--update-docs", action="store_true")
    args = p.parse_args(argv)
    names = [n for n in args.presets.split(",") if n]
    for n in names:
        if n not in PRESETS:
            p.error(f"unknown preset {n!r}; allowed: {', '.join(PRESETS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available here")
    if args.quick:
        args.repeats, args.warmup, args.no_memory = 2, 1, True
    if args.product_only:
        print(json.dumps(product_only(names[0], args)))
        return 0

    kept = keep_freed_memory()
    data = load_bundled()
    peak, bandwidth = gemm_rate(args.device), copy_bandwidth(args.device)
    results = []
    for name in names:
        r = measure_preset(name, args, data)
        r["memory_mib"] = None if args.no_memory else peak_memory_mib(name, args.device, 3)
        r["default_allocator_steps_per_sec"] = (default_allocator_rate(name, args)
                                                if kept and args.device == "cpu" else None)
        results.append(r)
        print(json.dumps(r), flush=True)

    mem_head = "peak memory of a step (MiB, " + ("GPU allocated" if args.device.startswith("cuda")
                                                 else "resident set growth") + ")"
    rows = []
    for r in results:
        default = r["default_allocator_steps_per_sec"]
        rows.append([f"`{r['preset']}`", f"{r['steps_per_sec']:.2f}", f"{r['reference_steps_per_sec']:.2f}",
                     f"**{r['ratio']:.2f}×**",
                     f"{r['gflop_per_step']:.2f} / {r['reference_gflop_per_step']:.2f}",
                     f"{r['gflops']:.0f} ({r['gflops'] / peak:.0%}) / {r['reference_gflops']:.0f}",
                     f"{r['eval_seconds']:.2f} s ({r['eval_tasks']} tasks)",
                     "-" if r["memory_mib"] is None else f"{r['memory_mib']:.0f}",
                     "-" if default is None else f"{default:.2f}"])
    text = [f"Machine: {machine()}; device {args.device}. GEMM rate {peak:.0f} GFLOP/s (2048² float32 matmul), "
            f"copy bandwidth {bandwidth:.0f} GB/s, both measured in the same process. Median of {args.repeats} "
            f"interleaved rounds after {args.warmup} warm-up steps.",
            "", *(f"- {describe(n)}" for n in names), "",
            table(["preset", "steps/s (end to end)", "reference steps/s", "ratio", "GFLOP/step (ours / ref)",
                   "GFLOP/s (of GEMM rate) / ref", "one evaluation", mem_head,
                   "steps/s, default allocator"], rows)]
    if args.roofline:
        for name in names:
            ops = roofline(name, args, data, peak, bandwidth)
            total = sum(o["ms"] for o in ops)
            top = [o for o in ops if o["ms"] >= 0.02 * total][:12]
            text += ["", f"**Where a `{name}` step goes** (profiled: {total:.1f} ms of operator time a step)", "",
                     table(["operator", "calls/step", "ms/step", "GFLOP", "MB moved (least)", "bound ms",
                            "time / bound"],
                           [[o["op"], f"{o['calls']:.0f}", f"{o['ms']:.1f}", f"{o['gflop']:.2f}",
                             f"{o['mb']:.0f}", f"{o['bound_ms']:.2f}",
                             f"{o['ms'] / o['bound_ms']:.1f}×" if o["bound_ms"] > 0 else "-"] for o in top])]
    out = "\n".join(text)
    print("\n" + out)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, out, "python benchmarks/presets.py --roofline --update-docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
