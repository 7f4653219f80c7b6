"""Keeping freed memory (msr.core.runtime): checked in child processes, since the
setting lasts for the rest of a process."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ("from msr.core.runtime import keep_freed_memory, freed_memory_kept; "
         "print(keep_freed_memory(), freed_memory_kept())")


def _child(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MSR_MALLOC"}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_training_processes_keep_freed_memory_on_glibc():
    assert _child({}) == "True True"


def test_msr_malloc_default_leaves_the_allocator_alone():
    assert _child({"MSR_MALLOC": "default"}) == "False False"


def test_a_run_keeps_freed_memory(tmp_path):
    code = ("from msr.mnist.config import preset; from msr.runner.execute import train; from msr.core.runtime import freed_memory_kept; "
            "train(preset('demo', steps=1, eval_tasks=2, channels=4), save=False); print(freed_memory_kept())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
