"""What every test shares: the one tiny config, and helpers to run the command line and wait on runs.

Tests mirror the package: core/, mnist/, synthetic/, store/, runner/,
analysis/, viz/, cli/; pages/ drives the app's pages through Streamlit's
AppTest, e2e/ a real browser.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msr.core.runtime import share_cores

# Before torch loads OpenMP: the suite and the runs it starts sleep when idle, whatever else runs. Many run at once,
# and a run that hands itself over (MSR_OMP_WAIT=auto, the default) would be a moving part no test asked for;
# tests/runner/test_hand_over.py asks for it.
os.environ["MSR_OMP_WAIT"] = "sleep"
share_cores()

import torch  # noqa: E402

from msr.mnist.config import RunConfig  # noqa: E402
from msr.synthetic.data import IN_SIZE, OUT_SIZE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# The smallest Rotated MNIST run that still exercises every part: seconds long.
TINY = dict(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=4, eval_interval=2,
            eval_tasks=2, n_angles=2, angle_step=90.0)
# The same on the command line (steps and the evaluation interval are left to each test).
TINY_FLAGS = [arg for name, value in TINY.items() if name not in ("steps", "eval_interval")
              for arg in ("--" + name.replace("_", "-"), f"{value:g}" if isinstance(value, float) else str(value))]
TIMING = {"steps_per_sec", "steps_per_sec_overall", "train_seconds", "seconds",
          "cpu_percent", "rss_mb", "gpu_mb"}  # measured, so never the same twice


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")


def tiny(tmp_path, **changes) -> RunConfig:
    """The tiny config, saving under tmp_path/runs, with ``changes``."""
    return RunConfig(**{**TINY, "runs_dir": str(Path(tmp_path) / "runs"), **changes})


@pytest.fixture
def tiny_config(tmp_path):
    """A factory of tiny configs that save under tmp_path/runs."""
    return lambda **changes: tiny(tmp_path, **changes)


def stopper(at: int):
    """A should_stop that asks for a stop before step at + 1 (it is polled once before each step)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > at
    return should_stop


def toeplitz(h: list[float], rows: int = OUT_SIZE, cols: int = IN_SIZE) -> torch.Tensor:
    """The banded Toeplitz matrix of the 1-D problems' shape that convolves with the taps ``h``."""
    w = torch.zeros(rows, cols)
    for i in range(rows):
        for k, v in enumerate(h):
            if i + k < cols:
                w[i, i + k] = v
    return w


def strip(records: list[dict]) -> list[dict]:
    """Records without their timing fields (and the mark of a stop's extra evaluation)."""
    return [{k: v for k, v in r.items() if k not in TIMING and k != "stop"} for r in records]


# ------------------------------------------------------------ processes
def msr(*args, **kw) -> subprocess.CompletedProcess:
    """``python -m msr ARGS`` from the repository root, finished."""
    return subprocess.run([sys.executable, "-m", "msr", *args], capture_output=True, text=True, cwd=ROOT,
                          env=kw.pop("env", ENV), timeout=kw.pop("timeout", 300), **kw)


def start(*args) -> subprocess.Popen:
    """``python -m msr ARGS`` from the repository root, running."""
    return subprocess.Popen([sys.executable, "-m", "msr", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=ENV)


def wait_for(predicate, timeout=90.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def only_run(root: Path) -> Path | None:
    runs = [p for p in root.iterdir() if not p.name.startswith(".")] if root.exists() else []
    assert len(runs) <= 1
    return runs[0] if runs else None


def listing(root: Path) -> list[dict]:
    out = msr("runs", "--runs-dir", str(root), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
