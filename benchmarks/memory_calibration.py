"""Measured peak memory of training runs next to msr.mnist.memory's estimate.

Each shape runs in a fresh process that builds a Trainer, takes two meta-steps
and one evaluation, then reports its peak resident set size (VmHWM); the
table shows that next to ``estimate_peak_bytes``. The estimate's constants
were fitted to such measurements (see msr/mnist/memory.py).

    python benchmarks/memory_calibration.py              # every shape
    python benchmarks/memory_calibration.py --shapes demo seed
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msr.mnist.config import PRESETS, RunConfig  # noqa: E402
from msr.mnist.memory import MIB, estimate_peak_bytes  # noqa: E402

_CHILD = """
import json, resource, sys
import torch
torch.set_num_threads(int(sys.argv[2]))
from msr.mnist.config import RunConfig
from msr.mnist.trainer import Trainer
trainer = Trainer(RunConfig.from_dict(json.loads(sys.argv[1])))
for _ in range(int(sys.argv[3])):
    trainer.step()
trainer.evaluate(int(sys.argv[3]))
# This process's own peak (KiB). ru_maxrss would also count the peak of the process that launched it: Linux
# keeps the launcher's high-water mark across the exec, so a large launcher (a test session) would show.
peak = next((int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")), None)
print(peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_peak_bytes(config: RunConfig, steps: int = 2, threads: int = 2, timeout: float = 600) -> int:
    """Peak resident memory (bytes) of a fresh process that builds
    ``Trainer(config)``, runs ``steps`` meta-steps and one evaluation, with
    torch limited to ``threads`` threads. The child's own memory check is
    lifted, so a shape can be measured whatever the estimate says."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MSR_MEMORY_LIMIT_MB"] = str(2**40)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(config.to_dict()), str(threads), str(steps)],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {config.to_dict()} failed: {proc.stderr.strip()[-2000:]}")
    return int(proc.stdout.split()[-1]) * 1024  # VmHWM and ru_maxrss are in KiB on Linux


def _shape(base: str, **changes) -> RunConfig:
    return RunConfig(**{**PRESETS[base], "steps": 2, **changes})


SHAPES: dict[str, RunConfig] = {
    "demo preset": _shape("demo"),
    "seed preset": _shape("seed"),
    "seed, 64 channels, 50 eval tasks": _shape("seed", channels=64, eval_tasks=50, tasks_per_step=2),
    "seed, 128 channels, 2 eval tasks": _shape("seed", channels=128, eval_tasks=2),
    "seed, 1+39, 50 eval tasks": _shape("seed", queries=39, eval_tasks=50, tasks_per_step=2),
    "seed, 39+1, 50 eval tasks": _shape("seed", shots=39, queries=1, eval_tasks=50, tasks_per_step=2),
    "seed, 39+1, 3 inner steps": _shape("seed", shots=39, queries=1, inner_steps=3, eval_tasks=2),
    "seed, latent 300": _shape("seed", latent=300, queries=1, tasks_per_step=2, eval_tasks=2),
    "seed, latent 300, 3 inner steps": _shape("seed", latent=300, queries=1, tasks_per_step=2, eval_tasks=2,
                                              inner_steps=3),
    "seed, latent 300, SGD": _shape("seed", latent=300, queries=1, tasks_per_step=2, eval_tasks=2, outer_opt="sgd"),
    "dedicated, latent 60": _shape("seed", arch="dedicated", latent=60, queries=1, tasks_per_step=2, eval_tasks=2),
    "dense, 64 channels, conv latent 200": _shape("demo", arch="dense", channels=64, conv_latent=200, eval_tasks=50),
    "per_param, 3 inner steps, 5-way 5+10": _shape("demo", lr_mode="per_param", inner_steps=3, queries=10,
                                                   tasks_per_step=8, eval_tasks=20),
    "conv, 64 channels, 64 tasks of 1+1": _shape("seed", arch="conv", channels=64, tasks_per_step=64, queries=1,
                                                 eval_tasks=2),
    "10-way 5+15, 16 tasks, 100 eval tasks": _shape("seed", shots=5, queries=15, tasks_per_step=16, eval_tasks=100),
    "seed, 2000 eval tasks of 1+9": _shape("seed", queries=9, tasks_per_step=2, eval_tasks=2000),
    "higher engine, 10-way 20+20, 3 inner steps": _shape("seed", engine="higher", inner_steps=3, shots=20,
                                                              queries=20, eval_tasks=2),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="*", help="names (or leading words) of the shapes to run; default: all")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    names = [n for n in SHAPES if not args.shapes or any(n.startswith(s) for s in args.shapes)]
    print("| shape | estimate (MiB) | measured (MiB) | error |")
    print("|---|---:|---:|---:|")
    for name in names:
        config = SHAPES[name]
        est, got = estimate_peak_bytes(config), measure_peak_bytes(config, threads=args.threads)
        print(f"| {name} | {est / MIB:.0f} | {got / MIB:.0f} | {est / got - 1:+.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
