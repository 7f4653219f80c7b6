"""Records and run listings as pandas tables: what pages, charts and downloads read.

Every function takes evaluation records (dicts as written to metrics.jsonl),
run records or reports, and returns a DataFrame; nothing here draws or trains.
"""
from __future__ import annotations

import math
import time
from typing import Iterable, Mapping

import pandas as pd

from ..core.settings import specs
from ..core.stats import wilson_interval
from ..mnist.config import RunConfig
from ..store.progress import progress_of
from ..store.reader import RunRecord
from ..synthetic.models import MODEL_ORDER, model_label
from .lens import LensReport


def inner_rates_frame(records: list[dict]) -> pd.DataFrame:
    """Long form (step, tensor, lr) of the learned inner rates in the records
    (per_param runs record the mean rate of each tensor)."""
    rows = [{"step": r["step"], "tensor": name, "lr": float(lr)}
            for r in records for name, lr in (r.get("inner_lrs") or {}).items()]
    return pd.DataFrame(rows, columns=["step", "tensor", "lr"])


def _angle_label(a: float) -> str:
    return f"{a:g}°"


def record_at(records: list[dict], step: int | None = None) -> dict:
    """The record of ``step``, or the last one at or before it (the last when None)."""
    if not records:
        return {}
    if step is None:
        return records[-1]
    before = [r for r in records if r["step"] <= step]
    return before[-1] if before else records[0]


def images_per_angle(record: dict, angles: list[float]) -> pd.DataFrame:
    """Images each angle received up to this record, support and query, train and test."""
    rows = []
    for split in ("train", "test"):
        counts = (record.get("images_per_angle") or {}).get(split) or [0] * len(angles)
        for a, n in zip(angles, counts):
            rows.append({"split": split, "angle": float(a), "angle_label": _angle_label(a), "images": int(n)})
    return pd.DataFrame(rows, columns=["split", "angle", "angle_label", "images"])


def images_per_class(record: dict) -> pd.DataFrame:
    rows = []
    for split in ("train", "test"):
        counts = (record.get("images_per_class") or {}).get(split) or [0] * 10
        for digit, n in enumerate(counts):
            rows.append({"split": split, "digit": digit, "images": int(n)})
    return pd.DataFrame(rows, columns=["split", "digit", "images"])


def per_angle_errors(records: list[dict], angles: list[float], split: str = "test") -> pd.DataFrame:
    """One row per (step, angle): query images scored and how many were wrong.

    test: the evaluation at that step. train: the meta-training queries since
    the previous evaluation (none at step 0, so step 0 has no train row)."""
    rows = []
    for r in records:
        part = (r.get("per_angle") or {}).get(split) or {}
        counts, errors = part.get("counts"), part.get("errors")
        if not counts or sum(counts) == 0:
            continue
        for a, n, e in zip(angles, counts, errors):
            rows.append({"step": r["step"], "angle": float(a), "angle_label": _angle_label(a),
                         "images": int(n), "errors": int(e), "rate": e / n if n else math.nan})
    return pd.DataFrame(rows, columns=["step", "angle", "angle_label", "images", "errors", "rate"])


def per_angle_accuracy(record: dict, angles: list[float], split: str = "test",
                       confidence: float = 0.95) -> pd.DataFrame:
    """Accuracy per angle at one record with its Wilson interval."""
    part = (record.get("per_angle") or {}).get(split) or {}
    counts = part.get("counts") or [0] * len(angles)
    errors = part.get("errors") or [0] * len(angles)
    rows = []
    for a, n, e in zip(angles, counts, errors):
        correct = int(n) - int(e)
        low, high = wilson_interval(correct, int(n), confidence)
        rows.append({"step": record.get("step"), "angle": float(a), "angle_label": _angle_label(a),
                     "images": int(n), "correct": correct, "acc": correct / n if n else math.nan,
                     "low": low, "high": high})
    return pd.DataFrame(rows, columns=["step", "angle", "angle_label", "images", "correct", "acc", "low", "high"])


TABLE_COLUMNS = ["run", "steps", "time left", "test loss", "± 95%", "test accuracy", "status", "started",
                 "architecture", "angles", "notes", "folder"]
NOTES_SHOWN = 40  # characters of a run's notes the table shows; the Runs page shows them whole


def short_names(records: Iterable[RunRecord]) -> dict[str, str]:
    """Run id -> what a chart calls the run: its name (its folder when it has
    none), with the folder added only where two runs share a name."""
    records = list(records)
    names = {rec.run_id: rec.name or rec.run_id for rec in records}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {run_id: name if counts[name] == 1 else f"{name} ({run_id})" for run_id, name in names.items()}


def angles_text(config: RunConfig) -> str:
    angles = config.angle_list()
    if config.angles is None and len(angles) > 2:
        return f"0–{angles[-1]:g}° by {config.angle_step:g}°"
    return ", ".join(f"{a:g}°" for a in angles)


def _num(value):
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def short_date(stamp: float, now: float | None = None) -> str:
    """'24 Nov 13:37' (the year only when it is not this year's): fits a
    narrow column."""
    try:
        when = time.localtime(stamp)
        this_year = time.localtime(time.time() if now is None else now).tm_year
    except (OSError, OverflowError, ValueError):
        return ""
    return time.strftime("%d %b %H:%M" if when.tm_year == this_year else "%d %b %Y", when).lstrip("0")


def time_left_text(seconds: float | None) -> str:
    """'about 3 min', rounded as a person would say it; '—' while unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 45:
        return "under 1 min"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


def notes_preview(notes: str, limit: int = NOTES_SHOWN) -> str:
    """The notes' first line, cut at a word with '…' when longer than ``limit``."""
    lines = notes.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) <= limit and len(lines) <= 1:
        return first
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return first + " …"


def run_row(r: RunRecord) -> dict:
    """One run as listings give it (``msr runs --json``, ``msr.runs()``): id, path, status, kind, model, step,
    total, the last test loss and accuracy, and its worker."""
    if r.damaged:
        return {"id": r.run_id, "path": str(r.path), "status": "damaged", "damaged": r.damaged, "kind": None,
                "arch": None, "model": None, "step": None, "total": None, "test_loss": None, "test_acc": None}
    last = r.last
    return {"id": r.run_id, "path": str(r.path), "status": r.state, "kind": r.kind.name,
            "arch": getattr(r.config, "arch", None) or getattr(r.config, "model", None),
            "model": r.kind.model_name(r.config),
            "step": r.step, "total": r.total,
            "test_loss": last.get(r.kind.loss_key), "test_acc": last.get("test_acc"),
            "pid": r.status.get("pid"), "host": r.status.get("host"), "message": r.status.get("message")}


def runs_frame(records: list[RunRecord], now: float | None = None) -> pd.DataFrame:
    """One row per run folder: its name, steps done of steps asked for, the
    time left while it trains, its last test numbers, and when it started. A
    damaged folder keeps its row, says why, and leaves the rest empty. Reads
    only each run's summary (status.json), never its whole metrics file."""
    now = time.time() if now is None else now
    rows = []
    for rec in records:
        date = short_date(rec.created, now)
        if rec.damaged or rec.config is None:
            rows.append({"run": rec.run_id, "steps": "", "time left": "", "test loss": None, "± 95%": None,
                         "test accuracy": None, "status": f"damaged: {rec.damaged}", "started": date,
                         "architecture": "", "angles": "", "notes": "", "folder": rec.run_id})
            continue
        last, kind = rec.last, rec.kind
        progress = progress_of(rec, now)
        angles = kind.angles(rec.config)
        rows.append({
            "run": rec.name or rec.run_id,
            "steps": f"{progress.step:,} / {progress.total:,}",
            "time left": time_left_text(progress.seconds_left) if rec.active else "",
            "test loss": _num(last.get(kind.loss_key)),
            "± 95%": _num(last.get("test_err")),
            "test accuracy": _num(last.get("test_acc")) if kind.has_accuracy else None,
            "status": rec.state, "started": date,
            "architecture": kind.describe(rec.config),
            "angles": "–" if angles is None else angles_text(rec.config),
            "notes": notes_preview(rec.annotations.notes), "folder": rec.run_id,
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


# how config_diff names the fields whose form label does not fit a comparison
SETTING_NAMES = {"angles": "Angles (degrees)", "name": "Name"}


def setting_name(field: str) -> str:
    """A config field as the Train form labels it."""
    spec = specs(RunConfig).get(field)
    return SETTING_NAMES.get(field) or (spec.label if spec else field.replace("_", " "))


def setting_text(value) -> str:
    """A config value as a person reads it (never 'None' or 'True')."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_diff(configs: dict[str, RunConfig]) -> pd.DataFrame:
    """Only the fields whose values differ among the runs: one row per field
    (``field`` its name in the config, ``setting`` its label), one column of
    values as text per run."""
    comparable = {label: _comparable(cfg) for label, cfg in configs.items()}
    if len(comparable) < 2:
        return pd.DataFrame(columns=["field", "setting", *comparable])
    names = list(next(iter(comparable.values())))
    rows = []
    for name in names:
        values = [c.get(name) for c in comparable.values()]
        if any(v != values[0] for v in values[1:]):
            rows.append({"field": name, "setting": setting_name(name),
                         **{label: setting_text(v) for label, v in zip(comparable, values)}})
    return pd.DataFrame(rows, columns=["field", "setting", *comparable])


SCALARS = ("step", "train_loss", "train_acc", "test_loss", "test_err", "test_acc", "test_acc_err",
           "steps_per_sec", "steps_per_sec_overall", "train_seconds", "cpu_percent", "rss_mb", "gpu_mb")


LR_PREFIX = "inner_lr:"


def _number(value):
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def metrics_frame(records: Iterable[Mapping]) -> pd.DataFrame:
    """One row per evaluation: the scalar metrics, then one ``inner_lr:<param>``
    column per adapted tensor. Missing values are NaN, never dropped rows."""
    rows = []
    for rec in records:
        row = {k: _number(rec.get(k)) for k in SCALARS}
        for name, value in (rec.get("inner_lrs") or {}).items():
            row[LR_PREFIX + name] = _number(value)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(SCALARS))
    for k in SCALARS:
        if k not in frame:
            frame[k] = math.nan
    lr_cols = sorted(c for c in frame.columns if c.startswith(LR_PREFIX))
    frame = frame[list(SCALARS) + lr_cols]
    if len(frame):
        frame["step"] = frame["step"].astype(int)
    return frame.reset_index(drop=True)


def equivariance_frame(report: LensReport) -> pd.DataFrame:
    """Long form (step, angle, layer, error): 'applied' is the layer the model
    uses, 'generated by U' what its symmetry matrices let v reach."""
    rows = []
    for s in report.steps:
        for layer, values in (("applied", s.equivariance), ("generated by U", s.u_equivariance)):
            for angle, err in (values or {}).items():
                rows.append({"step": s.step, "angle": float(angle), "layer": layer, "error": err})
    return pd.DataFrame(rows, columns=["step", "angle", "layer", "error"])


def reference_frame(report: LensReport) -> pd.DataFrame:
    """(reference, angle, error, orbit_score) for the two reference layers."""
    names = {"group_conv": "exact group conv", "random_conv": "random conv"}
    return pd.DataFrame([{"reference": names[k], "angle": float(a), "error": e, "orbit_score": m["orbit_score"]}
                         for k, m in report.reference.items() for a, e in m["equivariance"].items()],
                        columns=["reference", "angle", "error", "orbit_score"])


def orbit_frame(report: LensReport) -> pd.DataFrame:
    """(step, layer, orbit_score) over training."""
    rows = [{"step": s.step, "layer": "applied", "orbit_score": s.orbit_score} for s in report.steps]
    rows += [{"step": s.step, "layer": "generated by U", "orbit_score": s.u_orbit_score}
             for s in report.steps if s.u_orbit_score is not None]
    return pd.DataFrame(rows, columns=["step", "layer", "orbit_score"])


INVARIANCE_COLUMNS = ["step", "angle", "unchanged", "chance", "kappa", "accuracy"]


def invariance_frame(report: LensReport) -> pd.DataFrame:
    """(step, angle, unchanged, chance, kappa, accuracy): per query angle, the
    share of predictions unchanged from 0°, the share chance agreement
    reaches, the chance-corrected agreement, and the accuracy there (0° has
    an accuracy only)."""
    rows = []
    for s in report.steps:
        shares = s.invariance or {}
        angles = list(s.accuracy or {}) or list(shares)
        for a in angles:
            rows.append({"step": s.step, "angle": float(a), "unchanged": shares.get(a, math.nan),
                         "chance": (s.invariance_chance or {}).get(a, math.nan),
                         "kappa": (s.invariance_kappa or {}).get(a, math.nan),
                         "accuracy": (s.accuracy or {}).get(a, math.nan)})
    return pd.DataFrame(rows, columns=INVARIANCE_COLUMNS)


def results_frame(summaries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per run from ``SyntheticResult.summary()`` dicts, with the 95 %
    interval's ends (lo is clipped at 0: an MSE cannot be negative)."""
    rows = []
    for s in summaries:
        mse, err = s.get("test_mse"), s.get("test_err")
        half = err if err is not None and math.isfinite(err) else 0.0
        rows.append({"problem": s.get("problem"), "model": s.get("model"), "label": model_label(s.get("model")),
                     "latent": s.get("latent"), "steps": s.get("steps"), "test_mse": mse, "test_err": err,
                     "lo": None if mse is None else max(mse - half, 0.0),
                     "hi": None if mse is None else mse + half,
                     "conv_score": s.get("conv_score"), "equiv_error": s.get("equiv_error"),
                     "orbit_score": s.get("orbit_score"), "u_equiv_error": s.get("u_equiv_error"),
                     "u_orbit_score": s.get("u_orbit_score"), "seconds": s.get("seconds")})
    cols = ["problem", "model", "label", "latent", "steps", "test_mse", "test_err", "lo", "hi", "conv_score",
            "equiv_error", "orbit_score", "u_equiv_error", "u_orbit_score", "seconds"]
    return pd.DataFrame(rows, columns=cols)


def history_frame(histories: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Long format: one row per (model, evaluation step)."""
    rows = []
    for model, records in histories.items():
        for r in records:
            rows.append({"model": model, "label": model_label(model), "step": r["step"], "test_mse": r["test_mse"],
                         "test_err": r["test_err"], "train_mse": r.get("train_mse"),
                         "conv_score": r.get("conv_score"), "u_conv_score": r.get("u_conv_score")})
    cols = ["model", "label", "step", "test_mse", "test_err", "train_mse", "conv_score", "u_conv_score"]
    return pd.DataFrame(rows, columns=cols)


# Column of lens_frame -> (what it measures, header shown on the page).
LENS_COLUMNS: dict[str, str] = {
    "equiv_90": "equivariance error, 90°",
    "equiv_45": "equivariance error, 45°",
    "orbit_C4": "orbit score (90°)",
    "orbit_C8": "orbit score (45°)",
    "u_equiv_90": "U: equivariance error, 90°",
    "u_orbit": "U: orbit score (90°)",
}


def _lens_values(record: Mapping) -> dict:
    """A record's lens numbers under the names of LENS_COLUMNS (None: not measured)."""
    errors = record.get("equiv_errors") or {}
    orbits = record.get("orbit_scores") or {}
    return {"equiv_90": errors.get("90", record.get("equiv_error")), "equiv_45": errors.get("45"),
            "orbit_C4": orbits.get("C4", record.get("orbit_score")), "orbit_C8": orbits.get("C8"),
            "u_equiv_90": record.get("u_equiv_error"), "u_orbit": record.get("u_orbit_score")}


def lens_frame(histories: Mapping[str, list[dict]]) -> pd.DataFrame:
    """One row per model from its last evaluation: test MSE and the lens numbers
    (columns that no model measured are left out)."""
    rows = []
    for model, records in histories.items():
        if not records:
            continue
        last = records[-1]
        rows.append({"model": model, "label": model_label(model), "step": last.get("step"),
                     "test_mse": last.get("test_mse"), "test_err": last.get("test_err"), **_lens_values(last)})
    frame = pd.DataFrame(rows, columns=["model", "label", "step", "test_mse", "test_err", *LENS_COLUMNS])
    frame = frame.sort_values("label", key=lambda c: c.map(_label_rank), kind="stable", ignore_index=True)
    empty = [c for c in LENS_COLUMNS if frame[c].isna().all()]
    return frame.drop(columns=empty)


def _label_rank(label: str) -> int:
    labels = [model_label(m) for m in MODEL_ORDER]
    return labels.index(label) if label in labels else len(labels)


def lens_history_frame(histories: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Long format: one row per (model, step, measure, layer read) with a value."""
    series = {"equiv_90": ("equiv", "adapted · 90°"), "equiv_45": ("equiv", "adapted · 45°"),
              "u_equiv_90": ("equiv", "from U · 90°"), "orbit_C4": ("orbit", "adapted · 90°"),
              "orbit_C8": ("orbit", "adapted · 45°"), "u_orbit": ("orbit", "from U · 90°")}
    rows = []
    for model, records in histories.items():
        for r in records:
            for key, value in _lens_values(r).items():
                if value is None or not math.isfinite(value):
                    continue
                measure, read = series[key]
                rows.append({"model": model, "label": model_label(model), "step": r["step"], "measure": measure,
                             "layer": read, "value": float(value)})
    return pd.DataFrame(rows, columns=["model", "label", "step", "measure", "layer", "value"])
