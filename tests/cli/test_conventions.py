"""The command line follows conventions: light --help (no torch), --version, defaults and bounds in --help,
"did you mean", a hidden internal command, --config (a run's own config.json), stop --json, a missing runs
folder named as such, and one MSR_RUNS_DIR."""
import json
import os
import re
import subprocess
import sys

import pytest

from msr import __version__
from msr.cli.main import main
from msr.runner.execute import create_run
from msr.store.writer import RunWriter

from conftest import ENV, ROOT, TINY_FLAGS, msr, tiny

HEAVY = ("torch", "scipy.stats", "pandas")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["stop", "--help"], ["runs", "--help"],
                                  ["resume", "--help"], ["symmetry", "--help"], ["train", "--help"],
                                  ["sweep", "--help"], ["export", "--help"]])
def test_help_and_light_commands_never_import_torch(argv):
    code = ("import io, contextlib, sys\nfrom msr.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip().endswith(__version__)


def test_help_lists_commands_but_not_the_internal_worker(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = [m.group(1) for line in out.splitlines() if (m := re.match(r"    (\S+)", line))]  # not wrapped help
    assert {"train", "runs", "stop", "sweep"} <= set(listed) and "worker" not in listed


def test_train_help_shows_defaults_and_bounds(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(> 0; default 0.01)" in out  # the inner rate
    assert "outer steps (1 to 10,000,000; default 1000)" in out
    assert "query images per class (≥ 1; default 19)" in out
    assert "--arch {shared,dedicated,dense,conv}" in out and "(default shared)" in out
    assert "--first-order, --no-first-order drop the second-order terms" in out and "(default off)" in out


@pytest.mark.parametrize("argv,hint", [(["trian"], "did you mean train?"),
                                       (["train", "--stpes", "5"], "did you mean --steps?"),
                                       (["train", "--arch", "sharde"], "did you mean shared?"),
                                       (["runs", "--runs-dri", "x"], "did you mean --runs-dir?")])
def test_a_mistyped_command_flag_or_choice_gets_a_suggestion(argv, hint, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert hint in err and len(err.strip().splitlines()) == 1 and ", worker" not in err


def test_a_runs_folder_that_does_not_exist_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["runs", "--runs-dir", str(missing)]) == 2
    assert f"no runs folder '{missing}'" in capsys.readouterr().err


def test_msr_runs_dir_serves_the_command_line(tmp_path):
    runs = tmp_path / "elsewhere"
    env = {**ENV, "MSR_RUNS_DIR": str(runs)}
    trained = msr("train", *TINY_FLAGS, "--steps", "2", "--eval-interval", "2", "--json", env=env)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert os.path.dirname(summary["run_dir"]) == str(runs)
    listed = msr("runs", "--json", env=env)
    assert [r["id"] for r in json.loads(listed.stdout.strip().splitlines()[-1])] == [os.path.basename(summary["run_dir"])]


def test_a_runs_own_config_trains_again_with_changes(tmp_path):
    first = msr("train", *TINY_FLAGS, "--steps", "2", "--eval-interval", "2", "--runs-dir", str(tmp_path / "runs"),
                "--seed", "3", "--json")
    assert first.returncode == 0, first.stderr
    run_dir = json.loads(first.stdout.strip().splitlines()[-1])["run_dir"]
    again = msr("train", "--config", os.path.join(run_dir, "config.json"), "--steps", "4", "--json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout.strip().splitlines()[-1])["run_dir"]
    old = json.load(open(os.path.join(run_dir, "config.json")))
    new = json.load(open(os.path.join(second, "config.json")))
    assert new["steps"] == 4 and {**new, "steps": 2} == old  # everything else as the run had it


def test_config_and_preset_together_are_refused(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"steps": 3}))
    assert main(["train", "--config", str(path), "--preset", "demo"]) == 2
    assert "either --config or --preset" in capsys.readouterr().err


def test_a_config_of_another_kind_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"kind": "synthetic", "problem": "rank1"}))
    assert main(["train", "--config", str(path)]) == 2
    assert "not of a 'mnist' run" in capsys.readouterr().err


def test_stop_json(tmp_path, capsys):
    run_dir = create_run(tiny(tmp_path).validate())
    assert main(["stop", str(run_dir), "--json"]) == 2  # not training
    capsys.readouterr()
    with RunWriter(run_dir).claim() as writer:  # this process plays the worker (so no signal is sent)
        writer.write_status(sync=True, status="running", pid=os.getpid())
        assert main(["stop", run_dir.name, "--runs-dir", str(run_dir.parent), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == {"id": run_dir.name, "path": str(run_dir), "asked": True}


def test_a_synthetic_runs_own_config_trains_again(tmp_path, capsys):
    flags = ["--problem", "rank1", "--model", "msr-fc", "--steps", "2", "--eval-interval", "2", "--tasks", "100",
             "--test-tasks", "10", "--tasks-per-step", "4", "--cache-dir", str(tmp_path), "--runs-dir",
             str(tmp_path / "runs"), "--json", "--quiet"]
    assert main(["synthetic", *flags]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]
    assert main(["synthetic", "--config", first, "--steps", "4", "--json", "--quiet"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]
    old = json.load(open(os.path.join(first, "config.json")))
    new = json.load(open(os.path.join(second, "config.json")))
    assert new == {**old, "steps": 4}
