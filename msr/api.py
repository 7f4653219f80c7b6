"""The Python API: train a run in this process, load one, list them, and use its meta-learned model.

Every run made here is an ordinary run folder, listed by ``msr runs`` and the app like any other::

    import msr

    run = msr.train(preset="demo", runs_dir="runs", steps=100)  # trains here; returns when the run ends
    run.status                                                   # "completed", "stopped" or "failed"
    run.metrics                                                  # DataFrame: step, test_loss, test_acc, ...
    model = run.model()                                          # the meta-learned torch module (latest step)
    task = run.sample_task(seed=1)                               # a new test task at the run's angles
    adapted = run.adapt(task.xs, task.ys, task.as_)              # the inner loop on its support set
    accuracy = (adapted.predict(task.xq, task.aq) == task.yq).float().mean()
    msr.load_run(run.path); msr.runs("runs")                     # a run again; one row per run

``msr.load_config(path)`` reads a run's config.json (or any config JSON) back as its config object.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import kinds
from .analysis.tables import run_row
from .core.choices import parse_angles
from .core.errors import ConfigError
from .core.loop import Event
from .mnist.config import RunConfig, preset as mnist_preset
from .runner.execute import train as train_config
from .store.checkpoints import load_checkpoint
from .store.files import RunFolderError, read_json
from .store.layout import default_runs_dir, run_files
from .store.reader import list_runs
from .store.reader import load_run as read_run
from .store.reader import parse_config


def load_config(path: str | Path):
    """The config a run's config.json holds (give the file or the run's folder), of the run's own kind
    (msr.mnist.config.RunConfig or msr.synthetic.config.SyntheticConfig), checked."""
    path = Path(path)
    file = run_files(path).config if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no config file '{file}'")
    data = read_json(file)
    if isinstance(data, dict) and "kind" in data:
        return kinds.get(data["kind"]).config.from_dict(data).validate()
    return parse_config(data)[1]


def train(preset: str | None = None, runs_dir: str | Path | None = None, *, config=None,
          on_event: Callable[[Event], None] | None = None, **fields) -> "Run":
    """Train a run in this process through the one driver, writing an ordinary run folder, and return it.

    The settings are ``config`` (a config object, or a path to a config.json or a run folder), else the preset
    (``"seed"`` or ``"demo"``), else the Rotated MNIST defaults; ``fields`` change any of them (``steps=100``,
    ``angles=[0, 90, 180, 270]``). ``runs_dir`` defaults to $MSR_RUNS_DIR, else ./runs. Bad settings raise
    ConfigError and a machine that cannot take the run MachineError, before anything is written. ``on_event``
    sees the driver's events (progress, evaluations). A stop (Ctrl-C, SIGTERM, ``msr stop``) ends the run after a
    final evaluation, as ``stopped``; a NaN loss ends it as ``failed``."""
    if config is not None and preset is not None:
        raise ConfigError("give either config or preset, not both")
    if config is None:
        base = mnist_preset(preset) if preset is not None else RunConfig()
    elif isinstance(config, (str, Path)):
        base = load_config(config)
    else:
        base = config
    if runs_dir is not None:
        fields["runs_dir"] = str(runs_dir)
    elif config is None:
        fields.setdefault("runs_dir", default_runs_dir())
    if isinstance(fields.get("angles"), str):  # "0,90,180", as the command line takes it
        try:
            fields["angles"] = parse_angles(fields["angles"])
        except ValueError as exc:
            raise ConfigError(str(exc), field="angles") from None
    if {"n_angles", "angle_step"} & set(fields) and "angles" not in fields:
        fields["angles"] = None
    try:
        cfg = base.replace(**fields)
    except TypeError as exc:
        raise ConfigError(f"unknown setting: {exc}") from None
    result = train_config(cfg, on_event=on_event)
    return load_run(result.run_dir)


def load_run(path: str | Path) -> "Run":
    """The run in a folder. FileNotFoundError if there is none; RunFolderError if the folder cannot be read as a
    run (its reason)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no run folder '{path}'")
    record = read_run(path, with_metrics=False)
    if record.damaged:
        raise RunFolderError(f"'{path}' is not a readable run: {record.damaged}")
    return Run(path)


def runs(runs_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per run under ``runs_dir`` ($MSR_RUNS_DIR, else ./runs), newest first: id, path, status, kind,
    arch, model, step, total, test_loss, test_acc, pid, host, message (damaged folders with their reason in
    ``damaged``). FileNotFoundError if the folder does not exist."""
    root = Path(runs_dir) if runs_dir is not None else Path(default_runs_dir())
    if not root.is_dir():
        raise FileNotFoundError(f"no runs folder '{root}'")
    columns = ["id", "path", "status", "kind", "arch", "model", "step", "total", "test_loss", "test_acc", "pid",
               "host", "message", "damaged"]
    rows = [run_row(r) for r in list_runs(root, include_damaged=True)]
    return pd.DataFrame(rows, columns=columns)


@dataclass
class Task:
    """One N-way K-shot task: support (xs, ys, as_) and query (xq, yq, aq) images as the model sees them
    ((n, 1, 28, 28), normalized and rotated), labels 0..N-1, and each image's index into the run's angles."""
    xs: Any
    ys: Any
    as_: Any
    xq: Any
    yq: Any
    aq: Any
    classes: Any  # the task's digits: label i is classes[i]


class Adapted:
    """A model adapted to one task by the inner loop: call it on images (and their angle indices) for logits,
    or ``predict`` for labels."""

    def __init__(self, model, params: dict):
        self.model, self.params = model, params

    def __call__(self, x, angle_idx=None):
        import torch
        from torch.func import functional_call

        with torch.no_grad():
            return functional_call(self.model, self.params, (x, angle_idx))

    def predict(self, x, angle_idx=None):
        return self(x, angle_idx).argmax(-1)


class Run:
    """A run folder: ``path``, ``id``, ``status`` (read afresh each time), ``config``, ``kind``, ``metrics``
    (a DataFrame), and its meta-learned ``model(step)``, ``learner(step)`` and ``adapt``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"

    def _record(self, with_metrics: bool = False):
        return read_run(self.path, with_metrics=with_metrics)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        """starting, running, completed, stopped, failed, interrupted (its worker is gone) or damaged."""
        return self._record().state

    @property
    def config(self):
        """Its settings (RunConfig for Rotated MNIST, SyntheticConfig for the synthetic problems)."""
        return self._record().config

    @property
    def kind(self) -> str:
        return self._record().kind.name

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per evaluation: step, test_loss, test_err, test_acc, train_loss, steps_per_sec, ... (every
        number the evaluation recorded; per-angle and per-class figures as lists, inner rates as a dict)."""
        records = self._record(with_metrics=True).metrics
        frame = pd.DataFrame(records)
        return frame if not frame.empty else pd.DataFrame(columns=["step"])

    @property
    def checkpoint_steps(self) -> list[int]:
        return self._record().checkpoint_steps()

    def learner(self, step: int | None = None):
        """The meta-learner at a checkpoint (the nearest kept one; the latest when None): the model and its
        learned inner rates (msr.core.meta.MetaLearner)."""
        record = self._record()
        if record.kind.learner is None:
            raise ConfigError(f"a {record.kind.name} run has no model to load")
        return record.kind.learner(load_checkpoint(self.path, step))

    def model(self, step: int | None = None):
        """The meta-learned torch module at a checkpoint (the latest when None), in eval mode. Its forward
        takes (images, angle indices); only the dedicated architecture reads the angle indices."""
        return self.learner(step).model

    def adapt(self, xs, ys, as_=None, step: int | None = None) -> Adapted:
        """Adapt the meta-learned model to a new task in one call: the run's inner loop (its steps and its
        learned rates) on the support images ``xs`` (n, 1, 28, 28, normalized as ``sample_task`` gives them),
        labels ``ys`` (0..N-1) and angle indices ``as_``. Returns the adapted model."""
        learner = self.learner(step)
        return Adapted(learner.model, learner.adapt_one(xs, ys, as_))

    def sample_task(self, seed: int = 0, split: str = "test") -> Task:
        """A task like the run's evaluations draw (its ways, shots, queries, angles and rotation mode) from its
        data source's ``split`` ("test", "validation" or "train"), reproducible by ``seed``. Rotated MNIST runs."""
        import torch

        from .core.data import TaskSampler, load_source

        cfg = self.config
        if not isinstance(cfg, RunConfig):
            raise ConfigError("sample_task draws Rotated MNIST tasks; this run is of another kind")
        data = load_source(cfg.data_source, cfg.data_dir, False)
        splits = {"train": data.train, "test": data.test}
        if split == "validation":
            splits["validation"] = data.validation().test
        if split not in splits:
            raise ConfigError(f"unknown split {split!r}; allowed: train, test, validation")
        sampler = TaskSampler(splits[split], cfg.angle_list(), cfg.ways, cfg.shots, cfg.queries, cfg.rotation,
                              torch.Generator().manual_seed(seed))
        batch = sampler.sample(1)
        return Task(*(getattr(batch, name)[0] for name in ("xs", "ys", "as_", "xq", "yq", "aq", "classes")))
