"""Command line: ``python -m msr train|runs|resume|stop|sweep|symmetry|synthetic``.

Bad input (and an unusable runs folder) ends with exit code 2 and one line on
stderr saying what is wrong and what is allowed; nothing is written to disk in
that case. A run ends with 0 (completed), 1 (failed) or 3 (stopped: Stop,
SIGTERM or Ctrl-C, after a final evaluation).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from .config import PRESETS, ConfigError, RunConfig, preset
from .data import DataError, parse_angles
from .runs import describe_os_error, json_safe, list_runs, load_run, request_stop
from .settings import add_flags, given
from .worker import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_STOPPED


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """A flag for every RunConfig field; None means 'keep the preset's value'."""
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="start from a preset: 'seed' = the student project's defaults, 'demo' = a quick run")
    add_flags(p, RunConfig)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    base = preset(args.preset) if args.preset else RunConfig()
    changes = given(args, RunConfig)
    if "angles" in changes:
        try:
            changes["angles"] = parse_angles(changes["angles"])
        except ValueError as exc:
            raise ConfigError(str(exc), field="angles") from None
    if "angles" in changes and ({"n_angles", "angle_step"} & set(changes)):
        raise ConfigError("give either --angles or --n-angles/--angle-step, not both")
    if "angles" not in changes and ({"n_angles", "angle_step"} & set(changes)):
        changes["angles"] = None
    return base.replace(**changes)


class CliProgress:
    """A tqdm bar on a terminal; otherwise one line per evaluation in the
    student project's format."""

    def __init__(self, total: int, quiet: bool, kind: str = "mnist"):
        self.quiet, self.kind = quiet, kind
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="step", file=sys.stderr)

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.kind == "progress" and self.bar is not None:
            self.bar.n = event.step
            post = {}
            if event.loss is not None:
                post["loss"] = f"{event.loss:.4f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.refresh()
        elif event.kind == "eval":
            line = self.line(event.record)
            (self.bar.write if self.bar is not None else lambda s: print(s, file=sys.stderr, flush=True))(line)
        elif event.kind == "done" and self.bar is not None:
            self.bar.close()

    def line(self, rec: dict) -> str:
        if self.kind == "synthetic":
            from .synthetic.cli import progress_line
            return progress_line(rec)
        sps = rec.get("steps_per_sec")
        return (f"Step: {rec['step']}. Steps/sec: {sps:.2f}. " if sps else f"Step: {rec['step']}. ") + \
            f"Val Loss: {_num(rec.get('test_loss'))}. Val Acc: {_num(rec.get('test_acc'), '.3f')}"


def exit_code(status: str) -> int:
    """0 completed, 1 failed, 3 stopped (Stop, SIGTERM or Ctrl-C); 2 is bad input."""
    return {"completed": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


def report(result, args) -> int:
    """The outcome on stdout: one line of text, or the JSON summary."""
    summary = result.summary()
    if args.json:
        print(json.dumps(json_safe(summary), allow_nan=False))
    else:
        if result.kind == "synthetic":
            from .synthetic.models import model_label
            cfg = result.config
            if cfg.is_rotation:
                score = (f"equivariance error at 90° {_num(summary.get('equiv_error'), '.3f')}, "
                         f"orbit score {_num(summary.get('orbit_score'), '.2f')}")
            else:
                score = (f"conv score {_num(summary.get('conv_score_start'), '.3f')} → "
                         f"{_num(summary.get('conv_score'), '.3f')}")
            print(f"{result.status}: {model_label(cfg.model)} on {cfg.problem}, {result.steps} steps, "
                  f"test MSE {_num(summary.get('test_mse'))} ± {_num(summary.get('test_err'))}, "
                  f"{score}, run saved in {result.run_dir}")
        else:
            print(f"{result.status}: {result.steps} steps, test loss {_num(summary.get('test_loss'))}, "
                  f"test acc {_num(summary.get('test_acc'), '.3f')}, run saved in {result.run_dir}")
        if result.message:
            print(result.message)
    return exit_code(result.status)


def _num(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def run_in_this_process(run_dir, args, resume: bool = False, trainer=None) -> int:
    from .worker import execute

    rec = load_run(run_dir, with_metrics=False)
    progress = CliProgress(rec.total or 0, quiet=getattr(args, "quiet", False), kind=rec.kind)
    result = execute(run_dir, resume=resume, on_event=progress, trainer=trainer)
    return report(result, args)


def start_in_this_process(config, kind: str, args) -> int:
    """Build the run (data, model) first, so bad data is reported before any
    folder exists; then create the folder and train."""
    from .worker import create_run, make_trainer

    trainer = make_trainer(kind, config)
    return run_in_this_process(create_run(trainer.config, kind), args, trainer=trainer)


def cmd_train(args) -> int:
    return start_in_this_process(config_from_args(args).validate(), "mnist", args)


def find_run(ref: str, runs_dir: str) -> Path:
    """A run given by its folder or by its id under the runs folder."""
    for candidate in (Path(ref), Path(runs_dir) / ref):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no run '{ref}' (give a run folder, or a run id under '{runs_dir}')")


def cmd_resume(args) -> int:
    from .worker import check_resumable

    run_dir = find_run(args.run, args.runs_dir)
    check_resumable(run_dir)
    return run_in_this_process(run_dir, args, resume=True)


def cmd_stop(args) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    if not request_stop(run_dir):
        raise ConfigError(f"run '{run_dir.name}' is not training")
    print(f"asked run {run_dir.name} to stop")
    return EXIT_OK


def cmd_worker(args) -> int:
    """The app's detached worker: trains one run folder, logs to stdout."""
    from .worker import execute

    rec = load_run(args.run, with_metrics=False)
    result = execute(args.run, resume=args.resume, on_event=CliProgress(rec.total or 0, quiet=False, kind=rec.kind))
    print(f"{result.status}: {result.steps} steps" + (f"; {result.message}" if result.message else ""), flush=True)
    return exit_code(result.status)


def sweep_spec_from_args(args):
    """The sweep the flags describe: a grid of its own, or (``--ablation``)
    the first layer × head ablation with the train flags given on top."""
    from . import ablation
    from .sweep import SweepSpec, parse_grid, parse_rates, parse_seeds

    rates = parse_rates(args.rate_search) if args.rate_search else None
    if args.ablation:
        if args.grid:
            raise ConfigError("--ablation fixes the grid (first layer × head); leave out --grid")
        changes = given(args, RunConfig)
        angles = parse_angles(changes.pop("angles")) if "angles" in changes else ablation.ANGLES
        spec = ablation.ablation_spec(changes.pop("runs_dir", "runs"), parse_seeds(args.seeds or "0,1,2"), angles,
                                      changes.pop("steps", ablation.STEPS), rates or ablation.RATES,
                                      args.search_steps or ablation.SEARCH_STEPS, args.workers, args.executor,
                                      args.threads, args.address, preset_name=args.preset or ablation.PRESET)
        if {"n_angles", "angle_step"} & set(changes):
            changes["angles"] = None
        spec.base = RunConfig.from_dict(spec.base).replace(**changes).to_dict()
        spec.gpus_per_run = args.gpus_per_run
        return spec
    base = config_from_args(args)
    search = None if rates is None else {"values": rates, "steps": args.search_steps or min(base.steps, 150),
                                         "seed": 0}
    return SweepSpec(base=base.to_dict(), grid=parse_grid(args.grid), seeds=parse_seeds(args.seeds or "0"),
                     executor=args.executor, workers=args.workers, threads=args.threads, address=args.address,
                     gpus_per_run=args.gpus_per_run, name=base.name, rate_search=search)


def cmd_sweep(args) -> int:
    """A grid of runs over seeds (msr.sweep); the groups' means and intervals at the end."""
    from . import ablation
    from .sweep import create_sweep, find_sweep, groups, run_sweep

    if args.resume:
        sweep = find_sweep(args.resume, args.runs_dir or "runs")
        # resuming answers an earlier stop, not one made while this driver was being launched and starting
        sweep.clear_stop_before(args.launched if args.launched is not None else time.time())
    else:
        sweep = create_sweep(sweep_spec_from_args(args))
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    searched = len(sweep.spec.search_points())
    say(f"sweep {sweep.sweep_id}: {len(sweep.spec.points())} runs"
        + (f" after a rate search of {searched} runs on validation tasks" if searched else "") + f" in {sweep.path}")
    status = run_sweep(sweep, say)
    found = [g.summary() for g in groups(sweep)]
    rates = sweep.chosen_rates
    for g in found:
        label = ", ".join(f"{k}={v}" for k, v in g["setting"].items()) or "all"
        acc, loss = g["test_acc"], g["test_loss"]
        rate = rates.get(json.dumps(g["setting"], sort_keys=True))
        print(f"{label}: n={g['n']}, test acc {_num(acc['mean'], '.3f')} ± {_num(acc['ci95'], '.3f')}, "
              f"test loss {_num(loss['mean'])} ± {_num(loss['ci95'])}"
              + (f", inner rate {rate:g} (chosen on validation tasks)" if rate is not None else ""))
    study = ablation.ablation(sweep) if ablation.applies(sweep) else None
    if study is not None:
        print(ablation.summary(study))
    print(f"{status}: sweep {sweep.sweep_id} ({sweep.path})")
    if args.json:
        out = {"sweep": sweep.sweep_id, "path": str(sweep.path), "status": status, "groups": found}
        if sweep.spec.rate_search:
            out["rates"] = sweep.rates
        if study is not None:
            out["ablation"] = study.to_json()
        print(json.dumps(json_safe(out), allow_nan=False))
    return exit_code(status)


def cmd_symmetry(args) -> int:
    """The equivariance lens over a run's checkpoints."""
    from .lens import lens_report

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
        line += f" {_num(s.u_orbit_score, '.2f'):>8}"
        if s.invariance:
            line += "  " + " ".join(f"{a}°: {v:.2f}" for a, v in s.invariance.items())
        print(line)
    if args.json:
        print(json.dumps(json_safe(report.to_json()), allow_nan=False))
    return EXIT_OK


def cmd_runs(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list_runs(args.runs_dir, include_damaged=True)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe([run_row(r) for r in runs]), allow_nan=False))
        return 0
    if not runs:
        print(f"no runs in '{args.runs_dir}'")
        return 0
    print(f"{'run':40} {'kind':14} {'status':12} {'step':>13} {'test loss':>10} {'test acc':>9}")
    for r in runs:
        row = run_row(r)
        loss, acc = _num(row["test_loss"]), _num(row["test_acc"], ".3f")
        steps = f"{row['step']} / {row['total']}" if row["total"] is not None else "-"
        what = row["model"] or row["kind"] or "-"
        status = row["status"] if not r.damaged else "damaged"
        print(f"{r.run_id:40} {what:14} {status:12} {steps:>13} {loss:>10} {acc:>9}")
        if r.damaged:
            print(f"  damaged: {r.damaged}")
    return 0


def run_row(r) -> dict:
    """One run as the runs listing gives it (--json)."""
    if r.damaged:
        return {"id": r.run_id, "path": str(r.path), "status": "damaged", "damaged": r.damaged, "kind": None,
                "arch": None, "model": None, "step": None, "total": None, "test_loss": None, "test_acc": None}
    last = r.last
    return {"id": r.run_id, "path": str(r.path), "status": r.state, "kind": r.kind,
            "arch": getattr(r.config, "arch", None) or getattr(r.config, "model", None),
            "model": r.config.model_label() if hasattr(r.config, "model_label") else getattr(r.config, "model", None),
            "step": r.step, "total": r.total,
            "test_loss": last.get("test_loss", last.get("test_mse")), "test_acc": last.get("test_acc"),
            "pid": r.status.get("pid"), "host": r.status.get("host"), "message": r.status.get("message")}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m msr", description="Meta-learning Symmetries by Reparameterization "
                                                              "on Rotated MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    t = sub.add_parser("train", help="meta-train a model")
    add_run_arguments(t)
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)
    r = sub.add_parser("runs", help="list saved runs (status: starting, running, completed, stopped, failed, "
                                    "interrupted = its worker is gone, damaged)")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--json", action="store_true", help="one JSON list: id, status, step, total, ... per run")
    r.set_defaults(func=cmd_runs)
    s = sub.add_parser("resume", help="continue a stopped, interrupted or failed run from its last saved state")
    s.add_argument("run", help="run folder, or run id under --runs-dir")
    s.add_argument("--runs-dir", default="runs")
    s.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_resume)
    st = sub.add_parser("stop", help="ask a training run to stop (as the app's Stop does)")
    st.add_argument("run", help="run folder, or run id under --runs-dir")
    st.add_argument("--runs-dir", default="runs")
    st.set_defaults(func=cmd_stop)
    sy = sub.add_parser("symmetry", help="the equivariance lens: has a run's first layer learned rotation "
                                         "symmetry? (Rotated MNIST and rot4 / rot8 / rot8_flip runs)")
    sy.add_argument("run", help="run folder, or run id under --runs-dir")
    sy.add_argument("--runs-dir", default="runs")
    sy.add_argument("--step", type=int, default=None, help="one checkpoint step (default: every kept one)")
    sy.add_argument("--json", action="store_true", help="print the numbers per step as JSON, the last line")
    sy.set_defaults(func=cmd_symmetry)
    w = sub.add_parser("worker")  # the app's detached worker; not for direct use
    w.add_argument("run")
    w.add_argument("--resume", action="store_true")
    w.set_defaults(func=cmd_worker)
    sw = sub.add_parser("sweep", help="a grid of runs over seeds, grouped into means with 95%% intervals",
                        description="Every train flag sets a fixed field; --grid varies one. Each point is an "
                                    "ordinary run; the sweep's folder (under RUNS_DIR/.sweeps) lets --resume "
                                    "finish what is missing.")
    add_run_arguments(sw)
    sw.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                    help="vary a field over these values (repeatable)")
    sw.add_argument("--seeds", default=None, help="seeds to repeat each grid point with, e.g. 0,1,2 (default 0; "
                                                  "0,1,2 with --ablation)")
    sw.add_argument("--rate-search", metavar="R1,R2", default=None,
                    help="choose each grid setting's inner rate among these on validation tasks (a short run "
                         "each, on a fifth of the training images) before its seeds run")
    sw.add_argument("--search-steps", type=int, default=None,
                    help="steps of each rate-search run (default: 150, or the run's steps if fewer)")
    sw.add_argument("--ablation", action="store_true",
                    help="where MSR's gain comes from: first layer (plain, kronecker, dense) × head (plain, dense) "
                         "× seeds on upright supports and rotated queries, each setting at its own inner rate; "
                         "other flags change its settings")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local: worker processes on this machine; ray: a Ray task per run")
    sw.add_argument("--workers", type=int, default=None,
                    help="runs at once (default: what fits in the cores and the memory estimate)")
    sw.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    sw.add_argument("--address", default=None, help="a Ray cluster to join (default: a local Ray)")
    sw.add_argument("--gpus-per-run", type=float, default=0.25, help="on CUDA, the share of a GPU per Ray task")
    sw.add_argument("--resume", metavar="SWEEP", default=None, help="finish a sweep (its folder or id)")
    sw.add_argument("--launched", type=float, default=None, help=argparse.SUPPRESS)  # set by the app's launch
    sw.add_argument("--json", action="store_true", help="print the groups as one JSON object, last line")
    sw.add_argument("--quiet", action="store_true", help="no progress lines")
    sw.set_defaults(func=cmd_sweep)
    from .synthetic.cli import register
    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except (UsageError, ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {describe_os_error(exc, getattr(exc, 'filename', None) or 'the runs folder')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted before the run started; nothing was trained", file=sys.stderr)
        return 130
