"""Profile one meta-training step of an engine on the student project's
workload with torch.profiler and print the top operators by self CPU time.

    python benchmarks/profile_step.py --engine func --steps 5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.common import student_episodes  # noqa: E402
from benchmarks.reference_loop import ReferenceLoop  # noqa: E402
from msr.core.choices import MetaConfig, ModelSpec
from msr.core.meta import MetaLearner
from msr.core.models import build_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engine", choices=["func", "higher", "reference"], default="func")
    p.add_argument("--arch", default="shared")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rows", type=int, default=15)
    p.add_argument("--sort", default="self_cpu_time_total")
    args = p.parse_args(argv)
    eps = student_episodes(args.steps)
    model = build_model(ModelSpec(arch=args.arch), seed=0)
    if args.engine == "reference":
        step = ReferenceLoop(model).step
    else:
        step = MetaLearner(model, MetaConfig(engine=args.engine)).step
    for ep in eps[:2]:
        step(ep)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for ep in eps:
            step(ep)
    print(prof.key_averages().table(sort_by=args.sort, row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
