"""Keeping freed memory (msr.core.runtime): checked in child processes, since the
setting lasts for the rest of a process."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import TINY_FLAGS

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


SHARE = ("import msr.core.runtime as r; import os; {patch}"
         "print(r.share_cores({args}), os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MSR_OMP_WAIT", "MSR_OMP_WAIT_CHOSEN", "MSR_OMP_WAIT_START")


def _share_child(code: str, env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


def share(env_extra: dict, sample: bool = False, machine: float | None = None) -> str:
    """share_cores in a fresh process; ``machine``: the other work it finds when it looks (cores)."""
    patch = f"r.other_work_cores = lambda: {machine!r}; " if sample else ""
    return _share_child(SHARE.format(patch=patch, args="sample=True" if sample else ""), env_extra)


def test_by_default_a_run_chooses_and_everything_else_sleeps():
    assert share({}) == "sleep PASSIVE None", "the app, the suite, a command that only reads"
    assert share({}, sample=True, machine=0.0) == "spin None None", "a run alone on the machine"
    assert share({}, sample=True, machine=1.0) == "sleep PASSIVE None", "a run beside other work"
    assert share({"GOMP_SPINCOUNT": "1000"}) == "sleep PASSIVE 1000", "a spin count of one's own is kept"
    assert share({"MSR_OMP_WAIT": "nonsense"}, sample=True, machine=0.0) == "sleep PASSIVE None"
    assert share({"MSR_OMP_WAIT": "sleep"}, sample=True, machine=0.0) == "sleep PASSIVE None"


def test_auto_spins_only_when_a_run_finds_the_machine_idle():
    auto = {"MSR_OMP_WAIT": "auto"}
    assert share(auto, sample=True, machine=0.0) == "spin None None", "a run alone on the machine"
    assert share(auto, sample=True, machine=0.1) == "spin None None"
    assert share(auto, sample=True, machine=0.3) == "sleep PASSIVE None", "a run beside other work"
    assert share(auto, sample=True, machine=None) == "sleep PASSIVE None", "no psutil: the safe choice"
    assert share(auto) == "sleep PASSIVE None", "a process that does not train does not look"


def test_what_the_user_says_wins():
    assert share({"OMP_WAIT_POLICY": "active"}, sample=True, machine=5.0) == "spin active None"
    assert share({"OMP_WAIT_POLICY": "PASSIVE", "MSR_OMP_WAIT": "auto"}, sample=True, machine=0.0) == \
        "sleep PASSIVE None"
    for word in ("spin", "default"):
        assert share({"MSR_OMP_WAIT": word}, sample=True, machine=5.0) == "spin None None"


def test_a_child_chooses_for_itself_unless_it_starts_with_others():
    from msr.core.runtime import child_environment

    chosen = {"OMP_WAIT_POLICY": "PASSIVE", "MSR_OMP_WAIT_CHOSEN": "1", "PATH": "/bin"}
    assert child_environment(chosen) == {"PATH": "/bin"}, "the app's own choice is not its worker's"
    assert child_environment(chosen, together=True) == {"PATH": "/bin", "MSR_OMP_WAIT": "sleep"}, "with others"
    auto = {**chosen, "MSR_OMP_WAIT": "auto"}
    assert child_environment(auto) == {"PATH": "/bin", "MSR_OMP_WAIT": "auto"}, "alone: it looks for itself"
    assert child_environment(auto, together=True) == {"PATH": "/bin", "MSR_OMP_WAIT": "sleep"}, "with others"
    assert child_environment({"OMP_WAIT_POLICY": "active", "MSR_OMP_WAIT": "auto"}, together=True) == {
        "OMP_WAIT_POLICY": "active", "MSR_OMP_WAIT": "sleep"}, "a policy of the user's own is passed on"
    assert child_environment({"MSR_OMP_WAIT": "spin"}, together=True) == {"MSR_OMP_WAIT": "spin"}


def test_ray_workers_sleep_as_runs_started_together():
    code = "from msr.core.runtime import sharing_env; print(sorted(sharing_env().items()))"
    assert _share_child(code, {}) == "[('MSR_OMP_WAIT', 'sleep'), ('OMP_WAIT_POLICY', 'PASSIVE')]"
    assert _share_child(code, {"GOMP_SPINCOUNT": "1000"}) == \
        "[('GOMP_SPINCOUNT', '1000'), ('MSR_OMP_WAIT', 'sleep'), ('OMP_WAIT_POLICY', 'PASSIVE')]"
    assert _share_child(code, {"MSR_OMP_WAIT": "auto"}) == "[('MSR_OMP_WAIT', 'sleep'), ('OMP_WAIT_POLICY', 'PASSIVE')]"
    assert _share_child(code, {"MSR_OMP_WAIT": "default"}) == "[('MSR_OMP_WAIT', 'default')]"


def _busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])


def test_other_work_counts_but_not_the_process_that_started_this_one():
    """One core of busy-loop beside the sampling process counts; the same loop in the process that started it
    (an app still drawing the page whose Start launched the run) does not."""
    sample = "from msr.core.runtime import other_work_cores; print(other_work_cores(1.0))"
    loop = _busy_loop()
    try:
        time.sleep(0.3)
        beside = float(_share_child(sample, {}))
    finally:
        loop.kill()
        loop.wait()
    parent = ("import subprocess, sys, threading\n"
              f"child = subprocess.Popen([sys.executable, '-c', {sample!r}], stdout=subprocess.PIPE, text=True)\n"
              "while child.poll() is None:\n    pass\n"
              "print(child.stdout.read().strip())")
    inside = float(_share_child(parent, {}))
    assert beside >= 0.6, f"a busy-loop beside it read as {beside:.2f} cores"
    assert beside - inside >= 0.5, f"its parent's loop read as {inside:.2f} cores (beside: {beside:.2f})"


def test_the_command_line_sets_the_policy_before_torch_loads_and_each_run_records_it(tmp_path):
    """Every run, worker and sweep driver starts as python -m msr, whose first act is share_cores(): with
    MSR_OMP_WAIT=auto a command that trains looks at the machine, one that reads (msr runs) does not."""
    code = ("import os, runpy, sys\n"
            "import msr.core.runtime as r\n"
            "r.other_work_cores = lambda: print('looked') or 0.0\n"
            "sys.argv = ['msr'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('msr', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'))")

    def msr(*argv: str, **env: str) -> list[str]:
        clean = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
        return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True,
                              env={**clean, **env}).stdout.strip().splitlines()

    def train(runs: Path, **env: str) -> tuple[list[str], str]:
        out = msr("train", *TINY_FLAGS, "--steps", "1", "--eval-interval", "1", "--runs-dir", str(runs), "--quiet",
                  **env)
        return out, json.loads(next(runs.glob("*/status.json")).read_text())["idle_threads"]

    out = msr("runs", "--runs-dir", str(tmp_path), MSR_OMP_WAIT="auto")
    assert "looked" not in out and out[-1] == "PASSIVE"
    out, recorded = train(tmp_path / "sleep", MSR_OMP_WAIT="sleep")
    assert "looked" not in out and out[-1] == "PASSIVE" and recorded == "sleep", "each run records what its threads do"
    out, recorded = train(tmp_path / "auto", MSR_OMP_WAIT="auto")
    assert out[0] == "looked" and out[-1] == "None" and recorded == "spin"
