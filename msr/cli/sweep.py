"""``msr sweep``: a grid of runs over seeds, grouped into means with 95% intervals (msr.runner.sweep)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..core.choices import parse_angles
from ..core.errors import ConfigError
from ..core.settings import given
from ..core.text import num
from ..mnist.config import RunConfig
from ..store.layout import default_runs_dir
from .common import exit_code, print_json
from .train import add_run_arguments, config_from_args


def sweep_spec_from_args(args):
    """The sweep the flags describe: a grid of its own, or (``--ablation``)
    the first layer × head ablation with the train flags given on top."""
    from ..analysis import ablation
    from ..runner.sweep.spec import SweepSpec, parse_grid, parse_rates, parse_seeds

    rates = parse_rates(args.rate_search) if args.rate_search else None
    if args.ablation:
        if args.grid:
            raise ConfigError("--ablation fixes the grid (first layer × head); leave out --grid")
        if args.config:
            raise ConfigError("--ablation makes its own settings; leave out --config")
        changes = given(args, RunConfig)
        angles = parse_angles(changes.pop("angles")) if "angles" in changes else ablation.ANGLES
        spec = ablation.ablation_spec(changes.pop("runs_dir", default_runs_dir()), parse_seeds(args.seeds or "0,1,2"),
                                      angles,
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


def run(args) -> int:
    """A grid of runs over seeds (msr.runner.sweep); the groups' means and intervals at the end."""
    from ..analysis import ablation
    from ..runner.sweep.folder import create_sweep, find_sweep
    from ..runner.sweep.results import groups
    from ..runner.sweep.run import run_sweep

    if args.resume:
        sweep = find_sweep(args.resume, args.runs_dir or default_runs_dir())
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
        print(f"{label}: n={g['n']}, test acc {num(acc['mean'], '.3f')} ± {num(acc['ci95'], '.3f')}, "
              f"test loss {num(loss['mean'])} ± {num(loss['ci95'])}"
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
        print_json(out)
    return exit_code(status)


def register(sub, arguments: bool = True) -> None:
    sw = sub.add_parser("sweep", help="a grid of runs over seeds, grouped into means with 95%% intervals",
                        description="Every train flag sets a fixed field; --grid varies one. Each point is an "
                                    "ordinary run; the sweep's folder (under RUNS_DIR/.sweeps) lets --resume "
                                    "finish what is missing.")
    sw.set_defaults(func=run)
    if not arguments:
        return
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
