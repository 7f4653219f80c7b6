"""Smoke tests: each benchmark script runs on a tiny setting and prints its
table. They check that the scripts work, never how fast anything is."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_throughput_script_prints_its_tables():
    out = _run("benchmarks/throughput.py", "--quick")
    assert "| (a) reference loop" in out and "| (b) `func` engine" in out and "| (c) `higher` engine" in out
    for title in ("Tasks per step", "Inner steps", "Angles (dedicated", "Order of the meta-gradient"):
        assert title in out


def test_time_to_accuracy_script_prints_its_table():
    out = _run("benchmarks/time_to_accuracy.py", "--archs", "conv", "--steps", "4", "--eval-interval", "2",
               "--eval-tasks", "2", "--channels", "4")
    assert "| architecture | 50% | 70% | 90% | best |" in out
    assert "| conv |" in out


def test_profile_script_prints_top_operators():
    out = _run("benchmarks/profile_step.py", "--engine", "func", "--steps", "2", "--rows", "5")
    assert "Self CPU" in out
