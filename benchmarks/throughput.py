"""Meta-training throughput on the student project's configuration.

Workload: the shared architecture, 5 tasks per step, each with 1 support and
19 query images of 28×28, 1 inner step, second order, per-layer learned inner
rates, Adam. Compared, in one process and interleaved round by round:

  (a) reference: the loop as the student project and the authors' code wrote
      it (benchmarks/reference_loop.py): a ``higher`` context per task, one
      task after another, a backward per task;
  (b) our ``func`` engine (vmapped over tasks);
  (c) our ``higher`` engine.

Each figure is the median over repeats after a warm-up. Peak memory is
measured per engine in a fresh child process (CPU: peak resident set growth;
CUDA: torch.cuda.max_memory_allocated).

    python benchmarks/throughput.py                 # full tables (~10 min on 2 cores)
    python benchmarks/throughput.py --quick         # tiny smoke run
    python benchmarks/throughput.py --update-docs # also write the tables into docs/performance.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.common import in_child, interleaved, machine, peak_growth_mib, student_episodes, table, update_doc  # noqa: E402
from benchmarks.reference_loop import ReferenceLoop  # noqa: E402
from msr.core.choices import MetaConfig, ModelSpec
from msr.core.meta import MetaLearner
from msr.core.models import build_model

DOC, DOC_BLOCK = "performance.md", "throughput"  # where the table goes in docs/


def make_stepper(kind: str, arch: str = "shared", channels: int = 32, n_angles: int = 5,
                 inner_steps: int = 1, first_order: bool = False, device: str = "cpu"):
    model = build_model(ModelSpec(arch=arch, ways=10, n_angles=n_angles, channels=channels), seed=0).to(device)
    if kind == "reference":
        return ReferenceLoop(model, inner_steps=inner_steps, first_order=first_order).step
    cfg = MetaConfig(inner_lr=0.01, outer_lr=1e-4, lr_mode="per_layer", inner_steps=inner_steps,
                     first_order=first_order, engine=kind)
    return MetaLearner(model, cfg).to(device).step


def measure(kinds: list[str], args, tasks: int = 5, **model_kw) -> dict[str, float]:
    episodes = student_episodes(4, tasks=tasks, n_angles=model_kw.get("n_angles", 5), device=args.device)
    candidates = {}
    for kind in kinds:
        step = make_stepper(kind, channels=args.channels, device=args.device, **model_kw)
        counter = iter(range(10 ** 9))
        candidates[kind] = (lambda s=step, c=counter: s(episodes[next(c) % len(episodes)]))
    timings = interleaved(candidates, steps=args.steps, repeats=args.repeats, warmup=args.warmup,
                          device=args.device)
    return {k: t.steps_per_sec for k, t in timings.items()}


def _memory_child(kind: str, channels: int, device: str, steps: int, queue) -> None:
    episodes = student_episodes(2, device=device)
    step = make_stepper(kind, channels=channels, device=device)
    queue.put(peak_growth_mib(lambda: [step(episodes[i % 2]) for i in range(steps)], device))


def peak_memory_mib(kind: str, args) -> float:
    return in_child(_memory_child, kind, args.channels, args.device, max(1, args.steps))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--no-scaling", action="store_true", help="main table only")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 4 channels, 1 step, 1 round")
    p.add_argument("--update-docs", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup, args.channels, args.no_memory = 1, 1, 0, 4, True

    out = [f"Machine: {machine()}; device {args.device}. Median of {args.repeats} rounds of "
           f"{args.steps} steps after {args.warmup} warm-up steps; ratios within one process."]
    kinds = ["reference", "func", "higher"]
    rates = measure(kinds, args)
    memory = {k: peak_memory_mib(k, args) for k in kinds} if not args.no_memory else {}
    names = {"reference": "(a) reference loop (higher, per task)", "func": "(b) `func` engine",
             "higher": "(c) `higher` engine"}
    rows = [[names[k], f"{rates[k]:.2f}", f"{rates[k] / rates['reference']:.2f}×",
             f"{memory[k]:.0f}" if k in memory else "-"] for k in kinds]
    mem_head = "peak memory of a step (MiB, " + ("GPU allocated" if args.device.startswith("cuda") else "resident set growth") + ")"
    out.append("\n**Student configuration** (shared, 5 tasks × (1 support + 19 query), 1 inner step, "
               "second order, per-layer learned rates, Adam)\n")
    out.append(table(["engine", "steps/sec", "vs (a)", mem_head], rows))
    print("\n".join(out), flush=True)

    if not args.no_scaling:
        scaling = []
        sizes = [1, 5] if args.quick else [1, 5, 20, 50]
        rows = []
        for t in sizes:
            r = measure(["reference", "func"], args, tasks=t)
            rows.append([str(t), f"{r['reference']:.2f}", f"{r['func']:.2f}", f"{r['func'] / r['reference']:.2f}×"])
        scaling.append("\n**Tasks per step**\n\n" + table(["tasks", "(a) steps/sec", "(b) steps/sec", "b/a"], rows))
        print(scaling[-1], flush=True)
        rows = []
        for k in ([1, 3] if args.quick else [1, 3, 5]):
            r = measure(["reference", "func"], args, inner_steps=k)
            rows.append([str(k), f"{r['reference']:.2f}", f"{r['func']:.2f}", f"{r['func'] / r['reference']:.2f}×"])
        scaling.append("\n**Inner steps**\n\n" + table(["inner steps", "(a) steps/sec", "(b) steps/sec", "b/a"], rows))
        print(scaling[-1], flush=True)
        rows = []
        for n in ([2] if args.quick else [2, 5, 10]):
            r = measure(["reference", "func"], args, arch="dedicated", n_angles=n)
            rows.append([str(n), f"{r['reference']:.2f}", f"{r['func']:.2f}", f"{r['func'] / r['reference']:.2f}×"])
        scaling.append("\n**Angles (dedicated architecture, one circuit each)**\n\n" +
                       table(["angles", "(a) steps/sec", "(b) steps/sec", "b/a"], rows))
        print(scaling[-1], flush=True)
        rows = []
        for fo in (False, True):
            r = measure(["reference", "func"], args, first_order=fo)
            rows.append(["first" if fo else "second", f"{r['reference']:.2f}", f"{r['func']:.2f}",
                         f"{r['func'] / r['reference']:.2f}×"])
        scaling.append("\n**Order of the meta-gradient**\n\n" +
                       table(["order", "(a) steps/sec", "(b) steps/sec", "b/a"], rows))
        print(scaling[-1], flush=True)
        out += scaling

    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, "\n".join(out), "python benchmarks/throughput.py --update-docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
