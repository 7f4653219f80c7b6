"""Tables about saved runs, as pandas frames (no Streamlit here, so tests
read them directly)."""
from __future__ import annotations

import math
import time

import pandas as pd

from msr.config import RunConfig
from msr.runs import RunRecord

TABLE_COLUMNS = ["run", "architecture", "angles", "steps", "test loss", "± 95%", "test accuracy", "status", "date"]


def run_label(rec: RunRecord) -> str:
    """Unique and readable: the folder name, after the run's name if it has one."""
    name = getattr(rec.config, "name", "") if rec.config is not None else ""
    return f"{name} ({rec.run_id})" if name else rec.run_id


def angles_text(config: RunConfig) -> str:
    angles = config.angle_list()
    if config.angles is None and len(angles) > 2:
        return f"0–{angles[-1]:g}° by {config.angle_step:g}°"
    return ", ".join(f"{a:g}°" for a in angles)


def _num(value):
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def runs_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run folder (named by ``run_label``); a damaged one keeps
    its row, says why, and leaves the rest empty. Reads only each run's
    summary (status.json), never its whole metrics file."""
    rows = []
    for rec in records:
        try:
            date = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created))
        except (OSError, OverflowError, ValueError):
            date = ""
        if rec.damaged or rec.config is None:
            rows.append({"run": rec.run_id, "architecture": "", "angles": "", "steps": "",
                         "test loss": None, "± 95%": None, "test accuracy": None,
                         "status": f"damaged: {rec.damaged}", "date": date})
            continue
        last = rec.last
        synthetic = rec.kind == "synthetic"
        rows.append({
            "run": run_label(rec),
            "architecture": f"{rec.config.model} ({rec.config.problem})" if synthetic else rec.config.arch,
            "angles": "–" if synthetic else angles_text(rec.config),
            "steps": f"{rec.step} / {rec.total}",
            "test loss": _num(last.get("test_mse" if synthetic else "test_loss")),
            "± 95%": _num(last.get("test_err")),
            "test accuracy": None if synthetic else _num(last.get("test_acc")),
            "status": rec.state, "date": date,
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _comparable(config: RunConfig) -> dict:
    """The config as compared: the angles resolved to the list actually used
    (count × step and an explicit list that agree are the same), where
    it is saved left out."""
    data = config.to_dict()
    for key in ("angles", "n_angles", "angle_step", "runs_dir"):
        data.pop(key)
    data = {"angles": ", ".join(f"{a:g}" for a in config.angle_list()), **data}
    return data


def config_diff(configs: dict[str, RunConfig]) -> pd.DataFrame:
    """Only the fields whose values differ among the runs: one row per field,
    one column per run."""
    comparable = {label: _comparable(cfg) for label, cfg in configs.items()}
    if len(comparable) < 2:
        return pd.DataFrame(columns=["field", *comparable])
    names = list(next(iter(comparable.values())))
    rows = []
    for name in names:
        values = [c.get(name) for c in comparable.values()]
        if any(v != values[0] for v in values[1:]):
            rows.append({"field": name, **{label: str(v) for label, v in zip(comparable, values)}})
    return pd.DataFrame(rows, columns=["field", *comparable])
