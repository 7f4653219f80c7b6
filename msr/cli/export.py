"""``msr export RUN --tensorboard DIR``: a trained run's evaluations as TensorBoard event files."""
from __future__ import annotations

from .common import EXIT_OK, add_runs_dir, find_run, print_json


def run(args) -> int:
    from ..runner.trackers import export_tensorboard

    run_dir = find_run(args.run, args.runs_dir)
    target = export_tensorboard(run_dir, args.tensorboard)
    if args.json:
        print_json({"id": run_dir.name, "tensorboard": str(target)})
    else:
        print(f"wrote {run_dir.name}'s evaluations to {target} (tensorboard --logdir {args.tensorboard})")
    return EXIT_OK


def register(sub, arguments: bool = True) -> None:
    e = sub.add_parser("export", help="write a trained run's evaluations for TensorBoard",
                       description="Write a run's losses, accuracies (also per angle), learned inner rates and "
                                   "first-layer filters (at each kept checkpoint) as TensorBoard event files in "
                                   "DIR/<run id>. Needs the tensorboard extra.")
    if arguments:
        e.add_argument("run", help="run folder, or run id under --runs-dir")
        add_runs_dir(e)
        e.add_argument("--tensorboard", metavar="DIR", required=True, help="the folder to write the event files in")
        e.add_argument("--json", action="store_true", help="print {id, tensorboard} as one JSON object")
    e.set_defaults(func=run)
