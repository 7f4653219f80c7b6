"""The Python API (msr.api, at the top level): train, load_run, runs, load_config, Run; the README's example runs."""
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

import msr
from msr.core.errors import ConfigError
from msr.mnist.config import RunConfig
from msr.store.files import RunFolderError
from msr.synthetic.config import SyntheticConfig

from conftest import ENV, ROOT, TINY


def test_import_msr_is_light():
    code = "import sys, msr\nprint(sorted(m for m in ('torch', 'pandas', 'msr.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    assert {"train", "load_run", "runs", "load_config", "Run"} <= set(dir(msr))
    with pytest.raises(AttributeError):
        msr.no_such_thing  # noqa: B018


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api") / "runs"
    return msr.train(runs_dir=root, **TINY)


def test_train_writes_an_ordinary_run(trained):
    assert isinstance(trained, msr.Run) and trained.status == "completed" and trained.kind == "mnist"
    assert trained.config.steps == TINY["steps"] and trained.path.parent.name == "runs"
    frame = trained.metrics
    assert list(frame["step"]) == [0, 2, 4]
    assert {"test_loss", "test_acc", "test_err", "train_loss"} <= set(frame.columns)
    assert trained.checkpoint_steps == [0, 2, 4]


def test_load_run_and_runs(trained):
    again = msr.load_run(trained.path)
    assert again.id == trained.id and again.config == trained.config
    table = msr.runs(trained.path.parent)
    assert isinstance(table, pd.DataFrame) and list(table["id"]) == [trained.id]
    row = table.iloc[0]
    assert row["status"] == "completed" and row["step"] == 4 and row["kind"] == "mnist"
    assert row["test_acc"] == pytest.approx(trained.metrics["test_acc"].iloc[-1])


def test_model_and_adapting_to_a_new_task(trained):
    import torch

    model = trained.model()
    assert isinstance(model, torch.nn.Module) and not model.training
    first = trained.model(step=0)
    assert not torch.equal(next(model.parameters()), next(first.parameters()))  # a different checkpoint
    task = trained.sample_task(seed=5)
    assert task.xs.shape == (2, 1, 28, 28) and task.xq.shape == (4, 1, 28, 28)
    adapted = trained.adapt(task.xs, task.ys, task.as_)
    logits = adapted(task.xq, task.aq)
    assert logits.shape == (4, 2) and adapted.predict(task.xq, task.aq).shape == (4,)
    # adapting moved the adapted weights away from the meta-learned ones
    name = trained.learner().fast_names[0]
    assert not torch.equal(adapted.params[name], dict(model.named_parameters())[name])


def test_a_runs_config_json_loads_back(trained):
    data = json.loads((trained.path / "config.json").read_text())
    assert data["kind"] == "mnist"
    assert RunConfig.from_dict(data) == trained.config == msr.load_config(trained.path)
    assert RunConfig.load(trained.path / "config.json") == trained.config
    with pytest.raises(ConfigError, match="not of a 'synthetic' run"):
        SyntheticConfig.from_dict(data)


def test_train_from_a_runs_config_with_changes(trained, tmp_path):
    run = msr.train(config=trained.path / "config.json", runs_dir=tmp_path, steps=2)
    assert run.config == trained.config.replace(steps=2, runs_dir=str(tmp_path)) and run.status == "completed"


def test_angles_as_a_list_or_as_text(tmp_path):
    run = msr.train(runs_dir=tmp_path, **{**TINY, "steps": 2, "eval_interval": 2}, angles="0, 180")
    assert run.config.angle_list() == [0.0, 180.0]
    with pytest.raises(ConfigError, match="cannot parse angle list"):
        msr.train(runs_dir=tmp_path, angles="0,ninety")


def test_bad_input_and_missing_folders(tmp_path):
    with pytest.raises(ConfigError):
        msr.train(runs_dir=tmp_path, **{**TINY, "ways": 1})
    with pytest.raises(ConfigError, match="unknown setting"):
        msr.train(runs_dir=tmp_path, no_such_field=1)
    assert not tmp_path.joinpath("runs").exists() and not any(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError):
        msr.load_run(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):
        msr.runs(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(RunFolderError):
        msr.load_run(tmp_path / "junk")


def test_a_synthetic_runs_model(tmp_path):
    config = SyntheticConfig(problem="rank1", model="msr-fc", steps=2, eval_interval=2, n_tasks=100, test_tasks=10,
                             tasks_per_step=4, cache_dir=str(tmp_path / "cache"), runs_dir=str(tmp_path / "runs"))
    run = msr.train(config=config)
    assert run.kind == "synthetic" and run.status == "completed"
    assert {"step", "test_mse"} <= set(run.metrics.columns)
    assert type(run.model()).__name__ == "MSRFCModel"


def test_the_readmes_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=ENV,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "completed" in out.stdout and "query accuracy" in out.stdout
    assert len([p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]) == 1
