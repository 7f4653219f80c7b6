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


SHARE = ("from msr.core.runtime import share_cores; import os; "
         "print(share_cores(), os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")


def _share_child(code: str, env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MSR_OMP_WAIT")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


def test_idle_openmp_threads_sleep_unless_told_otherwise():
    assert _share_child(SHARE, {}) == "True PASSIVE None"
    assert _share_child(SHARE, {"GOMP_SPINCOUNT": "1000"}) == "True PASSIVE 1000", "a spin count of one's own is kept"
    assert _share_child(SHARE, {"OMP_WAIT_POLICY": "active"}) == "False active None", "an explicit policy is kept"
    assert _share_child(SHARE, {"MSR_OMP_WAIT": "default"}) == "False None None"


def test_ray_workers_get_the_same_settings():
    code = "from msr.core.runtime import sharing_env; print(sorted(sharing_env().items()))"
    assert _share_child(code, {}) == "[('OMP_WAIT_POLICY', 'PASSIVE')]"
    assert _share_child(code, {"GOMP_SPINCOUNT": "1000"}) == "[('GOMP_SPINCOUNT', '1000'), ('OMP_WAIT_POLICY', 'PASSIVE')]"
    assert _share_child(code, {"MSR_OMP_WAIT": "default"}) == "[]"


def test_the_command_line_sets_the_policy_before_torch_loads(tmp_path):
    """Every run, worker and sweep driver starts as python -m msr, whose first
    act is share_cores()."""
    code = ("import os, runpy, sys\n"
            f"sys.argv = ['msr', 'runs', '--runs-dir', {str(tmp_path)!r}]\n"
            "try:\n    runpy.run_module('msr', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
    assert _share_child(code, {}) == "PASSIVE None"
