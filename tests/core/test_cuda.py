"""The CUDA path: these run wherever a CUDA device is present (and are
skipped, with the reason shown, where none is)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from msr.core.choices import ARCHITECTURES, MetaConfig, ModelSpec, make_angles
from msr.core.data import TaskSampler, load_bundled
from msr.core.meta import Episode, MetaLearner
from msr.core.models import build_model
from msr.mnist.config import preset
from msr.runner.execute import train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def _episode(device):
    sampler = TaskSampler(load_bundled().train, make_angles(3, 30.0), ways=3, shots=2, queries=3,
                          generator=torch.Generator().manual_seed(3))
    return Episode.of(sampler.sample(3).to(device))


def _meta_grads(arch: str, device: str, engine: str = "func") -> tuple[float, dict]:
    model = build_model(ModelSpec(arch=arch, ways=3, n_angles=3, channels=4, conv_latent=6), seed=0)
    learner = MetaLearner(model, MetaConfig(inner_lr=0.1, engine=engine)).to(device)
    result = learner.meta_gradient(_episode(device))
    return float(result.loss), {n: p.grad.detach().cpu() for n, p in learner.named_parameters()}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_cuda_meta_gradient_matches_the_cpu_one(arch):
    loss_cpu, cpu = _meta_grads(arch, "cpu")
    loss_gpu, gpu = _meta_grads(arch, "cuda")
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
    for name in cpu:
        torch.testing.assert_close(gpu[name], cpu[name], rtol=2e-3, atol=1e-5, msg=name)


def test_engines_agree_on_cuda():
    _, func = _meta_grads("shared", "cuda", "func")
    _, higher = _meta_grads("shared", "cuda", "higher")
    for name in func:
        torch.testing.assert_close(func[name], higher[name], rtol=2e-3, atol=1e-5, msg=name)


def test_demo_preset_trains_on_cuda_and_is_reproducible():
    cfg = preset("demo", device="cuda", steps=6, eval_interval=3, eval_tasks=4, seed=5)
    first = train(cfg, save=False)
    second = train(cfg, save=False)
    assert first.status == "completed" and first.steps == 6
    assert next(first.learner.model.parameters()).is_cuda
    losses = [r["test_loss"] for r in first.metrics]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses == pytest.approx([r["test_loss"] for r in second.metrics], rel=1e-5)


def test_presets_benchmark_runs_on_cuda():
    proc = subprocess.run([sys.executable, "benchmarks/presets.py", "--quick", "--device", "cuda",
                           "--presets", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout.strip().splitlines()[0])
    assert record["preset"] == "demo" and record["steps_per_sec"] > 0 and record["reference_steps_per_sec"] > 0
