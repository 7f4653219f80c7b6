"""``python -m msr synthetic``: the JSON summary and one-line errors with exit code 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msr.cli.common import EXIT_BAD_INPUT
from msr.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--steps", "4", "--eval-interval", "2", "--tasks", "100", "--test-tasks", "10", "--tasks-per-step", "4"]


def test_json_summary_is_the_last_line(tmp_path, capsys):
    code = main(["synthetic", "--problem", "rank1", "--model", "msr-fc", *TINY, "--cache-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs"),
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert {"problem", "model", "steps", "test_mse", "test_err", "conv_score"} <= set(summary)
    assert (summary["problem"], summary["model"], summary["steps"], summary["latent"]) == ("rank1", "msr-fc", 4, 3)
    assert summary["status"] == "completed" and summary["test_mse"] > 0 and summary["test_err"] > 0
    assert 0 <= summary["conv_score"] <= 1
    # One progress line per evaluation, on stderr.
    assert [line.split(".")[0] for line in err.strip().splitlines()] == ["Step: 0", "Step: 2", "Step: 4"]
    assert any(p.suffix == ".pt" for p in tmp_path.iterdir())  # the dataset went to the cache folder


def test_flags_reach_the_run(tmp_path, capsys):
    code = main(["synthetic", "--problem", "rank5", "--model", "msr-fc", "--latent", "4", "--seed", "3", *TINY,
                 "--no-cache", "--cache-dir", str(tmp_path / "cache"), "--runs-dir", str(tmp_path / "runs"), "--json",
                 "--quiet"])
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and err == ""
    assert (summary["problem"], summary["latent"], summary["seed"]) == ("rank5", 4, 3)
    assert not (tmp_path / "cache").exists()  # --no-cache writes no dataset
    assert summary["run_dir"].startswith(str(tmp_path / "runs"))  # the run itself is saved


def test_plain_output(tmp_path, capsys):
    assert main(["synthetic", "--model", "maml-conv", *TINY, "--cache-dir", str(tmp_path),
                 "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("completed: MAML-Conv on rank1, 4 steps, test MSE ")
    assert "conv score 1.000 → 1.000" in out  # a convolution is a convolution from the start


@pytest.mark.parametrize("args, fragment", [
    (["--problem", "rank3"], "invalid choice: 'rank3'"),
    (["--model", "cnn"], "invalid choice: 'cnn'"),
    (["--steps", "0"], "steps must be a whole number from 1 to 10,000,000"),
    (["--steps", "ten"], "invalid int value: 'ten'"),
    (["--model", "maml-fc", "--latent", "3"], "latent size applies to msr-fc and msr-conv-dense only"),
    (["--shots", "5", "--queries", "19"], "exceeds the 20 examples"),
    (["--test-tasks", "3000"], "test tasks must be a whole number from 2 to 2,000"),
    (["--outer-lr", "-1"], "outer learning rate must be a number > 0"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment, tmp_path, capsys):
    code = main(["synthetic", *args, "--cache-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")])
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert out == "" and len(err.strip().splitlines()) == 1 and fragment in err
    assert not any(tmp_path.iterdir())


def test_module_entry_point(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "msr", "synthetic", "--model", "maml-lc", *TINY, "--cache-dir",
                         str(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--json", "--quiet"], capture_output=True, text=True, cwd=ROOT, env=env,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["model"] == "maml-lc"
    bad = subprocess.run([sys.executable, "-m", "msr", "synthetic", "--steps", "-3"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["error: steps must be a whole number from 1 to 10,000,000, got -3"]
