"""``python -m msr train``: bad input is one line and exit code 2, with nothing written; every config field has its flag."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from msr.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

BAD_INPUTS = {
    "unknown architecture": (["--arch", "resnet"], "invalid choice"),
    "empty angle list": (["--angles", ","], "angle list is empty"),
    "unparsable angle list": (["--angles", "0,ninety"], "cannot parse angle list"),
    "shots+queries above images per class": (["--shots", "50", "--queries", "51"], "exceeds"),
    "inner lr zero": (["--inner-lr", "0"], "inner learning rate must be"),
    "outer lr negative": (["--outer-lr", "-0.1"], "outer learning rate must be"),
    "steps zero": (["--steps", "0"], "steps must be"),
    "too many ways": (["--ways", "11"], "ways must be between 2 and 10"),
    "too few ways": (["--ways", "1"], "ways must be between 2 and 10"),
    "unreadable data folder": (["--data-source", "mnist", "--data-dir", "{tmp}/nothing"], "cannot read MNIST"),
    "query mode without 0": (["--rotation", "query", "--angles", "10,20"], "must include 0"),
    "non-numeric steps": (["--steps", "many"], "invalid int value"),
    "one eval task": (["--eval-tasks", "1"], "evaluation tasks must be"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CUDA-only input would count as bad
    flags, expected = BAD_INPUTS[case]
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    code = main(["train", "--runs-dir", str(tmp_path / "runs"), *flags])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_json_summary_is_the_last_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "msr", "train", "--arch", "conv", "--channels", "2", "--ways", "2", "--shots", "1",
         "--queries", "2", "--tasks-per-step", "2", "--steps", "3", "--eval-interval", "2", "--eval-tasks", "2",
         "--angles", "0,90", "--runs-dir", str(tmp_path / "runs"), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("run_dir", "steps", "steps_per_sec", "train_loss", "test_loss", "test_err", "test_acc", "per_angle"):
        assert key in summary
    assert summary["steps"] == 3
    assert set(summary["per_angle"]) == {"0", "90"}
    assert set(summary["per_angle"]["90"]) == {"count", "errors", "acc"}
    assert Path(summary["run_dir"]).is_dir()
    # progress lines in the student project's format
    assert "Step: 2. Steps/sec:" in proc.stderr and "Val Loss:" in proc.stderr
    listing = subprocess.run([sys.executable, "-m", "msr", "runs", "--runs-dir", str(tmp_path / "runs")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and Path(summary["run_dir"]).name in listing.stdout


def test_every_config_field_has_a_flag():
    from dataclasses import fields

    from msr.cli.main import build_parser
    from msr.mnist.config import RunConfig

    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    dests = {a.dest for a in train_parser._actions}
    missing = [f.name for f in fields(RunConfig) if f.name not in dests]
    assert not missing, missing


def test_preset_seed_with_overrides(tmp_path):
    from msr.cli.main import build_parser
    from msr.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--preset", "seed", "--steps", "200", "--n-angles", "3"])
    cfg = config_from_args(args)
    assert cfg.steps == 200 and cfg.inner_lr == 0.01 and cfg.angle_list() == [0.0, 9.0, 18.0]
