"""``python -m msr symmetry RUN``: the equivariance lens at every checkpoint of a run (msr.analysis.lens)."""
from __future__ import annotations

from ..core.text import num
from .common import EXIT_OK, add_runs_dir, find_run, print_json

PRELOAD = ("torch",)  # see msr.cli.main.preload


def run(args) -> int:
    """The equivariance lens over a run's checkpoints."""
    from ..analysis.lens import lens_report  # the lens loads scipy and the models: only this command needs it

    run_dir = find_run(args.run, args.runs_dir)
    report = lens_report(run_dir, [args.step] if args.step is not None else None)
    angles = [f"{a:g}" for a in report.angles]
    print(f"{report.run_id}: {report.subject}. Equivariance error per angle (0 = group conv), "
          "orbit score (1 = rotated copies), U = what the symmetry matrices generate")
    head = f"{'step':>6} " + " ".join(f"{a + '°':>7}" for a in angles) + f" {'orbit':>6} {'U orbit':>8}"
    invariance = any(s.invariance for s in report.steps)
    print(head + ("  unchanged predictions per angle" if invariance else ""))
    for name, ref in (("group", report.reference["group_conv"]), ("random", report.reference["random_conv"])):
        print(f"{name:>6} " + " ".join(f"{ref['equivariance'][a]:7.3f}" for a in report.angles)
              + f" {ref['orbit_score']:6.2f}")
    for s in report.steps:
        line = f"{s.step:>6} " + " ".join(f"{s.equivariance[a]:7.3f}" for a in angles) + f" {s.orbit_score:6.2f}"
        line += f" {num(s.u_orbit_score, '.2f'):>8}"
        if s.invariance:
            line += "  " + " ".join(f"{a}°: {v:.2f}" for a, v in s.invariance.items())
        print(line)
    if args.json:
        print_json(report.to_json())
    return EXIT_OK


def register(sub, arguments: bool = True) -> None:
    sy = sub.add_parser("symmetry", help="the equivariance lens: has a run's first layer learned rotation "
                                         "symmetry? (Rotated MNIST and rot4 / rot8 / rot8_flip runs)")
    if arguments:
        sy.add_argument("run", help="run folder, or run id under --runs-dir")
        add_runs_dir(sy)
        sy.add_argument("--step", type=int, default=None, help="one checkpoint step (default: every kept one)")
        sy.add_argument("--json", action="store_true", help="print the numbers per step as JSON, the last line")
    sy.set_defaults(func=run)
