"""Smoke tests: each benchmark script runs on a tiny setting and prints its
table. They check that the scripts work, never how fast anything is."""
import json
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
               "--eval-tasks", "2", "--channels", "4", "--repeats", "2")
    assert "| architecture | 50% | 70% | 90% | best (median) | 90% in each run |" in out
    assert "| conv |" in out


def test_profile_script_prints_top_operators():
    out = _run("benchmarks/profile_step.py", "--engine", "func", "--steps", "2", "--rows", "5")
    assert "Self CPU" in out


def test_reference_loop_computes_the_same_meta_gradient_as_the_func_engine():
    """The speed comparison is only fair if both compute the same thing."""
    import torch

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import student_episodes
    from benchmarks.reference_loop import ReferenceLoop, StudentNet
    from msr.core.choices import MetaConfig, ModelSpec
    from msr.core.meta import Episode, MetaLearner
    from msr.core.models import build_model

    ep = student_episodes(1, tasks=3, support=2, query=3)[0]
    ep = Episode(ep.xs.double(), ep.ys, ep.xq.double(), ep.yq, ep.as_, ep.aq)
    spec = ModelSpec(arch="shared", ways=10, channels=3)
    ours = MetaLearner(build_model(spec, seed=1), MetaConfig(inner_lr=0.1, engine="func")).double()
    reference = ReferenceLoop(StudentNet(build_model(spec, seed=1)).double(), inner_lr=0.1)
    reference.lrs = [lr.detach().double().requires_grad_() for lr in reference.lrs]
    reference.meta_opt = torch.optim.Adam(list(reference.model.parameters()) + reference.lrs, lr=0.0)
    ours.meta_gradient(ep)
    reference.step(ep)
    net = reference.model
    pairs = {"conv.weight": net.conv_weight, "conv.bias": net.conv_bias, "conv.sym_A": net.A_warp,
             "conv.sym_B": net.B_warp, "conv.sym_C": net.C_warp, "head.sym_U": net.warp,
             "head.weight": net.latent_params, "head.bias": net.bias}
    for name, ref_param in pairs.items():
        torch.testing.assert_close(dict(ours.model.named_parameters())[name].grad, ref_param.grad,
                                   rtol=1e-4, atol=1e-12, msg=name)
    ours_lrs = [ours.inner_lrs[n.replace(".", "__")].grad for n in ("conv.weight", "conv.bias", "head.weight",
                                                                     "head.bias")]
    for a, b in zip(ours_lrs, reference.lrs):
        torch.testing.assert_close(a, b.grad, rtol=1e-4, atol=1e-12)


def test_rotation_table_script_prints_its_tables():
    out = _run("benchmarks/rotation_table.py", "--problems", "rot4", "--steps", "2", "--test-tasks", "4",
               "--search-steps", "2")
    assert "| Model | rot4 |" in out
    for label in ("MAML-Conv", "MSR-Conv", "MSR-Conv (dense U) (latent 27)", "*the data's own layer*"):
        assert f"| {label} |" in out
    assert "Validation MSE per candidate" in out and "(rate " in out, "each model at the rate it chose"


def test_symmetry_search_script_prints_its_table():
    out = _run("benchmarks/symmetry_search.py", "--steps", "2", "--eval-tasks", "2", "--only", "0", "7")
    assert "| flatten | dense / dense |" in out and "| rings4 | plain / plain |" in out and "no U" in out


def test_sweep_scaling_script_prints_its_table():
    out = _run("benchmarks/sweep_scaling.py", "--steps", "2", "--repeats", "1")
    for row in ("local, 1 worker", "local, 2 workers", "ray, 2 workers"):
        assert f"| {row} |" in out


def test_presets_script_compares_both_presets_with_the_reference():
    out = _run("benchmarks/presets.py", "--quick")
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["preset"] for r in records] == ["seed", "demo"]
    for r in records:
        assert r["steps_per_sec"] > 0 and r["reference_steps_per_sec"] > 0
        assert r["gflop_per_step"] > r["reference_gflop_per_step"] * 0.5 > 0
    assert "| `seed` |" in out and "| `demo` |" in out and "GEMM rate" in out


def test_overlay_script_prints_its_table():
    out = _run("benchmarks/overlay.py", "--sizes", "50,700", "--repeats", "1")
    assert "| records per run | load one run | open one run (load + its charts) | overlay two runs |" in out
    assert "| 700 |" in out


def test_cli_startup_script_prints_its_table():
    out = _run("benchmarks/cli_startup.py", "--repeats", "1")
    assert "| `msr --help` |" in out and "÷ import torch" in out


def test_every_benchmark_script_imports():
    """A script no smoke test runs (the long ones) still loads: a moved module breaks it here, not on the day
    someone reruns it."""
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")
    code = ("import importlib, sys; sys.path.insert(0, '.'); sys.path.insert(0, 'benchmarks')\n"
            f"for name in {scripts!r}: importlib.import_module('benchmarks.' + name)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
