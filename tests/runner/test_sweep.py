"""Sweeps: a grid of ordinary runs over seeds, grouped into means with
intervals, run by local workers or by a real Ray cluster on 127.0.0.1."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from msr.core.errors import ConfigError
from msr.kinds import MNIST
from msr.mnist.config import RunConfig
from msr.runner.sweep.folder import create_sweep, load_sweep
from msr.runner.sweep.run import run_sweep
from msr.runner.sweep.spec import SweepSpec, check, parse_grid, parse_seeds
from msr.store.progress import estimate_seconds, measured_speeds, measured_startup
from msr.store.reader import RunRecord, list_runs, load_run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--preset", "demo", "--steps", "4", "--eval-interval", "2", "--eval-tasks", "3", "--ways", "3",
        "--shots", "1", "--queries", "2", "--tasks-per-step", "2", "--channels", "4"]


def msr(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msr", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def final_numbers(runs_dir: Path) -> dict:
    """(arch, seed) -> every evaluation's numbers, timings left out."""
    out = {}
    for rec in list_runs(runs_dir):
        rec = load_run(rec.path)
        out[(rec.config.arch, rec.config.seed)] = [(m["step"], m["test_loss"], m["test_acc"], m["train_loss"])
                                                   for m in rec.metrics]
    return out


def test_grid_and_seed_parsing_refuse_bad_input_with_one_line():
    assert parse_grid(["arch=shared,conv", "inner_lr=0.1,0.01"]) == {"arch": ["shared", "conv"],
                                                                     "inner_lr": [0.1, 0.01]}
    assert parse_grid(["first-order=true,false"]) == {"first_order": [True, False]}
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    for bad, words in [(["arch"], "FIELD=V1,V2"), (["colour=red"], "cannot vary 'colour'"),
                       (["seed=1,2"], "cannot vary 'seed'"), (["ways=3,x"], "not a int"),
                       (["arch=shared", "arch=conv"], "twice"), (["ways=3,3"], "repeats")]:
        with pytest.raises(ConfigError, match=words):
            parse_grid(bad)
    for bad in ("", "0,0", "a,b"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_every_point_is_checked_before_anything_is_written(tmp_path):
    spec = SweepSpec(base={"runs_dir": str(tmp_path / "runs")}, grid={"ways": [5, 11]}, seeds=[0, 1])
    assert len(spec.points()) == 4
    with pytest.raises(ConfigError, match="ways=11: ways must be between 2 and 10"):
        check(spec)
    bad = msr("sweep", *TINY, "--grid", "ways=3,11", "--runs-dir", str(tmp_path / "runs"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "ways=11" in bad.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_local_sweep_gives_ordinary_runs_and_grouped_means(tmp_path):
    runs = tmp_path / "runs"
    out = msr("sweep", *TINY, "--grid", "arch=shared,conv", "--seeds", "0,1", "--workers", "2",
              "--runs-dir", str(runs), "--json", "--quiet")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed"
    assert [g["setting"] for g in result["groups"]] == [{"arch": "shared"}, {"arch": "conv"}]
    listed = {r.run_id: r for r in list_runs(runs)}
    assert len(listed) == 4 and all(r.state == "completed" for r in listed.values())
    for g in result["groups"]:
        assert g["n"] == 2 and set(g["runs"]) <= set(listed)
        accs = [listed[r].last["test_acc"] for r in g["runs"]]
        assert g["test_acc"]["mean"] == pytest.approx(sum(accs) / 2)
        assert g["test_acc"]["ci95"] >= 0
    # the same seed alone gives the same numbers as inside the sweep
    alone = msr("train", *TINY, "--arch", "conv", "--seed", "1", "--runs-dir", str(tmp_path / "alone"), "--quiet",
                env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert alone.returncode == 0, alone.stderr
    assert final_numbers(tmp_path / "alone")[("conv", 1)] == final_numbers(runs)[("conv", 1)]


def test_a_stopped_sweep_stops_its_runs_and_resume_finishes_it(tmp_path):
    runs = tmp_path / "runs"
    base = {"runs_dir": str(runs), "steps": 40, "eval_interval": 10, "eval_tasks": 3, "ways": 3, "shots": 1,
            "queries": 2, "tasks_per_step": 2, "channels": 4, "arch": "shared"}
    sweep = create_sweep(SweepSpec(base=base, grid={"arch": ["shared", "conv"]}, seeds=[0, 1], workers=2))
    lines: list[str] = []
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("status", run_sweep(sweep, lines.append)))
    thread.start()
    end = time.monotonic() + 120
    while time.monotonic() < end and not any(r is not None and r.step >= 2 for r in sweep.records().values()):
        time.sleep(0.2)
    sweep.request_stop()
    thread.join(timeout=180)
    assert done["status"] == "stopped"
    states = [r.state for r in load_sweep(sweep.path).records().values() if r is not None]
    assert states and "running" not in states and "starting" not in states
    assert len(states) < 4 or "stopped" in states  # nothing left training, nothing launched after the stop
    again = msr("sweep", "--resume", sweep.sweep_id, "--runs-dir", str(runs), "--json", "--quiet")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and [g["n"] for g in result["groups"]] == [2, 2]
    assert len(list_runs(runs)) == 4  # resumed in their own folders, none started twice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A real Ray head on 127.0.0.1, its state (and HOME) in a temp folder; stopped after."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    home = tmp_path / "home"
    home.mkdir()
    state = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={state}",
                            "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def test_a_sweep_on_a_ray_cluster_equals_the_local_one(tmp_path, ray_head):
    address, env = ray_head
    args = [*TINY, "--grid", "arch=shared,conv", "--seeds", "0,1", "--workers", "2", "--json", "--quiet"]
    on_ray = msr("sweep", *args, "--executor", "ray", "--address", address, "--runs-dir", str(tmp_path / "ray"),
                 env=env)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    local = msr("sweep", *args, "--runs-dir", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    assert json.loads(on_ray.stdout.strip().splitlines()[-1])["status"] == "completed"
    numbers = final_numbers(tmp_path / "ray")
    assert len(numbers) == 4 and numbers == final_numbers(tmp_path / "local")


def test_a_launched_driver_is_seen_running_and_one_driver_at_a_time(tmp_path):
    from msr.runner.sweep.folder import driver_running, launch_driver

    base = {"runs_dir": str(tmp_path / "runs"), "steps": 30, "eval_interval": 10, "eval_tasks": 3, "ways": 3,
            "shots": 1, "queries": 2, "tasks_per_step": 2, "channels": 4}
    sweep = create_sweep(SweepSpec(base=base, grid={}, seeds=[0], workers=1))
    assert not driver_running(sweep)
    launch_driver(sweep)
    assert driver_running(sweep)  # from the moment it is launched, before it takes the lock
    end = time.monotonic() + 60
    while time.monotonic() < end and not any(r is not None for r in sweep.records().values()) \
            and not load_sweep(sweep.path).runs:
        time.sleep(0.2)
    second = msr("sweep", "--resume", str(sweep.path), "--quiet")
    assert second.returncode == 2 and "already being run" in second.stderr
    end = time.monotonic() + 180
    while time.monotonic() < end and driver_running(sweep):
        time.sleep(0.3)
    assert not driver_running(sweep)
    assert [r.state for r in load_sweep(sweep.path).records().values()] == ["completed"]


# ------------------------------------------------------------ time estimates
def _record(arch, rate, state="completed"):
    return RunRecord(Path(f"/nowhere/{arch}"), kind=MNIST, config=RunConfig(arch=arch), state=state,
                     status={"last": {"steps_per_sec_overall": rate}})


def test_time_estimate_uses_measured_speeds_only():
    speeds = measured_speeds([_record("conv", 2.0), _record("conv", 4.0), _record("conv", 3.0),
                                 _record("shared", 1.0), _record("shared", 50.0, state="running"),
                                 _record("dense", None)])
    assert speeds == {"conv": 3.0, "shared": 1.0}
    configs = [RunConfig(arch="conv", steps=30), RunConfig(arch="shared", steps=30)]
    assert estimate_seconds(configs, speeds, workers=2) == pytest.approx((10 + 30) / 2)
    assert estimate_seconds(configs, speeds, workers=8) == pytest.approx(40 / 2)  # no more at once than runs
    assert estimate_seconds(configs + [RunConfig(arch="dense")], speeds, workers=2) is None
    assert estimate_seconds(configs, speeds, workers=2, startup=6.0) == pytest.approx((16 + 36) / 2), \
        "each run's start-up counts"


def test_speeds_are_wall_time_with_evaluations_and_start_up_is_measured_per_worker():
    run = RunRecord(Path("/nowhere/a"), kind=MNIST, config=RunConfig(arch="conv"), state="completed",
                    status={"step": 100, "start_step": 0, "wall_seconds": 50.0, "last": {"steps_per_sec_overall": 4.0},
                            "created": 100.0, "process_started": 101.0, "started": 106.0})
    assert measured_speeds([run]) == {"conv": 2.0}, "evaluations included: 100 steps in 50 s"
    reused = RunRecord(Path("/nowhere/b"), kind=MNIST, config=RunConfig(arch="conv"), state="completed",
                       status={"created": 100.0, "process_started": 50.0, "started": 101.0})
    assert measured_startup([run, reused]) == pytest.approx(5.0), "a worker started before its run is left out"
    assert measured_startup([reused]) is None
