"""How a synthetic run is reported: its progress line, its summary (the command line's --json object), its outcome."""
from __future__ import annotations

from ..core.text import num
from .models import model_label


def progress_line(record: dict) -> str:
    """One evaluation record as the command line prints it."""
    seconds = record.get("seconds")
    sps = record["step"] / seconds if seconds else None
    head = f"Step: {record['step']}. " + (f"Steps/sec: {sps:.2f}. " if sps else "")
    mse, err, score = record.get("test_mse"), record.get("test_err"), record.get("conv_score")
    if "orbit_score" in record:
        line = head + (f"Test MSE: {num(mse, '.4f')} ± {num(err, '.4f')}. Equivariance error (90°): "
                       f"{num(record.get('equiv_error'), '.3f')}. Orbit score: {num(record.get('orbit_score'), '.2f')}")
        if record.get("u_orbit_score") is not None:
            line += f" (U: {record['u_orbit_score']:.2f})"
        return line
    line = head + f"Test MSE: {num(mse, '.4f')} ± {num(err, '.4f')}. Conv score: {num(score, '.3f')}"
    if record.get("u_conv_score") is not None:
        line += f" (U: {record['u_conv_score']:.3f})"
    return line


def summarize(cfg, status: str, steps: int, history: list[dict], message: str | None = None) -> dict:
    """The command line's --json object for a synthetic run."""
    last = history[-1] if history else {}
    seconds = last.get("seconds") or 0.0
    return {"problem": cfg.problem, "model": cfg.model, "latent": cfg.resolved_latent(),
            "status": status, "steps": steps, "test_mse": last.get("test_mse"),
            "test_err": last.get("test_err"), "conv_score": last.get("conv_score"),
            "u_conv_score": last.get("u_conv_score"),
            "conv_score_start": history[0].get("conv_score") if history else None,
            "equiv_error": last.get("equiv_error"), "orbit_score": last.get("orbit_score"),
            "u_equiv_error": last.get("u_equiv_error"), "u_orbit_score": last.get("u_orbit_score"),
            "seconds": round(seconds, 3), "steps_per_sec": last.get("step", 0) / seconds if seconds > 0 else None,
            "seed": cfg.seed, "data_seed": cfg.data_seed, "message": message}


def summary(result) -> dict:
    """A run's --json object (a msr.core.loop.RunResult), its folder first."""
    return {"run_dir": result.run_dir, **summarize(result.config, result.status, result.steps, result.metrics,
                                                   result.message)}


def outcome_line(result, summary_: dict) -> str:
    cfg = result.config
    if cfg.is_rotation:
        score = (f"equivariance error at 90° {num(summary_.get('equiv_error'), '.3f')}, "
                 f"orbit score {num(summary_.get('orbit_score'), '.2f')}")
    else:
        score = (f"conv score {num(summary_.get('conv_score_start'), '.3f')} → "
                 f"{num(summary_.get('conv_score'), '.3f')}")
    return (f"{result.status}: {model_label(cfg.model)} on {cfg.problem}, {result.steps} steps, "
            f"test MSE {num(summary_.get('test_mse'))} ± {num(summary_.get('test_err'))}, "
            f"{score}, run saved in {result.run_dir}")
