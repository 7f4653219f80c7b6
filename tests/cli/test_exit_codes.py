"""Exit codes of the command line as documented: 2 for bad input (a run that cannot resume, a damaged
resume state), 4 when the machine cannot take the run (too little memory, no GPU, a runs folder that cannot
be written), each with one line and nothing written."""
from __future__ import annotations

from pathlib import Path


from msr.mnist.config import RunConfig
from msr.runner.execute import train
from conftest import ENV, TINY_FLAGS, msr, stopper, tiny


def twelve(tmp_path, **changes) -> RunConfig:
    """The tiny config over 12 steps, evaluated every 3."""
    return tiny(tmp_path, **{"steps": 12, "eval_interval": 3, **changes})


def train_until(cfg: RunConfig, at: int) -> str:
    result = train(cfg, should_stop=stopper(at))
    assert result.status == "stopped" and result.steps == at
    return result.run_dir


def test_only_stopped_interrupted_or_failed_runs_resume(tmp_path):
    done = train(twelve(tmp_path, steps=2, eval_interval=1))
    out = msr("resume", done.run_dir)
    assert out.returncode == 2 and out.stderr.strip() == \
        f"error: run '{Path(done.run_dir).name}' has already completed its 2 steps"
    assert msr("resume", "no-such-run", "--runs-dir", str(tmp_path)).returncode == 2


# ------------------------------------------------- the machine: exit code 4
def test_a_runs_folder_that_is_a_file_exits_4_with_one_line(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = msr("train", *TINY_FLAGS, "--steps", "2", "--runs-dir", str(target))
    assert out.returncode == 4 and out.stderr.strip().splitlines() == [
        f"error: runs folder '{target}' is a file, not a folder; choose another runs folder"]


def test_memory_refusal_exits_4_and_writes_nothing(tmp_path):
    out = msr("train", "--preset", "demo", "--runs-dir", str(tmp_path / "runs"),
              env={**ENV, "MSR_MEMORY_LIMIT_MB": "100"}, timeout=120)
    assert out.returncode == 4
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "estimate" in lines[0] and "available" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_no_gpu_exits_4_with_one_line(tmp_path, capsys, monkeypatch):
    from msr.cli.main import main
    from msr.runner import admission

    monkeypatch.setattr(admission, "cuda_available", lambda: False)
    assert main(["train", *TINY_FLAGS, "--steps", "2", "--device", "cuda", "--runs-dir", str(tmp_path / "runs")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU" in err[0] and not (tmp_path / "runs").exists()


def test_a_full_disk_exits_4(tmp_path, monkeypatch, capsys):
    import errno
    import os
    import tempfile

    from msr.cli.main import main

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full)
    assert main(["train", *TINY_FLAGS, "--steps", "2", "--runs-dir", str(tmp_path / "runs")]) == 4
    assert "is full" in capsys.readouterr().err


def test_a_damaged_resume_state_is_one_line(tmp_path):
    import torch
    run = Path(train_until(twelve(tmp_path), 7))
    torch.save({"step": 3}, run / "resume.pt")
    out = msr("resume", str(run))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "incomplete" in out.stderr
