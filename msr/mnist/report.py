"""How a Rotated MNIST run is reported on the command line: its progress line, its --json object, its outcome."""
from __future__ import annotations

from ..core.text import num


def progress_line(rec: dict) -> str:
    """One evaluation record in the student project's format."""
    sps = rec.get("steps_per_sec")
    return (f"Step: {rec['step']}. Steps/sec: {sps:.2f}. " if sps else f"Step: {rec['step']}. ") + \
        f"Val Loss: {num(rec.get('test_loss'))}. Val Acc: {num(rec.get('test_acc'), '.3f')}"


def _angle_key(a: float) -> str:
    return f"{a:g}"


def summary(result) -> dict:
    """The command line's --json object of a run (a msr.core.loop.RunResult)."""
    last = result.metrics[-1] if result.metrics else {}
    angles = result.config.angle_list()
    test = last.get("per_angle", {}).get("test", {})
    per_angle = {}
    for i, a in enumerate(angles):
        count = test.get("counts", [0] * len(angles))[i]
        errors = test.get("errors", [0] * len(angles))[i]
        per_angle[_angle_key(a)] = {"count": count, "errors": errors,
                                    "acc": (count - errors) / count if count else None}
    return {"run_dir": result.run_dir, "status": result.status, "steps": result.steps,
            "steps_per_sec": last.get("steps_per_sec_overall"), "train_loss": last.get("train_loss"),
            "test_loss": last.get("test_loss"), "test_err": last.get("test_err"),
            "test_acc": last.get("test_acc"), "per_angle": per_angle, "message": result.message}


def outcome_line(result, summary_: dict) -> str:
    return (f"{result.status}: {result.steps} steps, test loss {num(summary_.get('test_loss'))}, "
            f"test acc {num(summary_.get('test_acc'), '.3f')}, run saved in {result.run_dir}")
