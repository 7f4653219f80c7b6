"""status.json, read back strictly: the small summary of a run that every listing reads."""
from __future__ import annotations

from pathlib import Path

from .files import Damaged, is_number, is_whole, read_json
from .layout import STATUSES, run_files

def _is_kind(value) -> bool:
    """A kind the registry knows (read when a status names one, so asking a run to stop loads no kind)."""
    from ..kinds import KINDS

    return value in KINDS


STATUS_FIELDS = {  # field -> (check, what it must be)
    "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
    "kind": (_is_kind, "a known run kind"),
    "created": (is_number, "a number"), "updated": (is_number, "a number"), "heartbeat": (is_number, "a number"),
    "started": (is_number, "a number"), "launched": (is_number, "a number"),
    "step": (is_whole, "a whole number ≥ 0"), "total": (is_whole, "a whole number ≥ 0"),
    "steps": (is_whole, "a whole number ≥ 0"), "pid": (is_whole, "a whole number ≥ 0"),
    "host": (lambda v: isinstance(v, str), "text"),
    "message": (lambda v: isinstance(v, str), "text"),
    "last": (lambda v: isinstance(v, dict) and all(x is None or is_number(x) for x in v.values())
             and (v.get("step") is None or is_whole(v.get("step"))), "an object of numbers"),
    "steps_per_sec": (is_number, "a number"), "wall_seconds": (is_number, "a number"),
    "stop_requested": (is_number, "a number"),
    "train_seconds": (is_number, "a number"), "eval_seconds": (is_number, "a number"),
    "evals": (is_whole, "a whole number ≥ 0"), "first_eval_seconds": (is_number, "a number"),
    "recent_steps": (is_whole, "a whole number ≥ 0"), "recent_seconds": (is_number, "a number"),
    "process_started": (is_number, "a number"),
    "idle_threads": (lambda v: v in ("spin", "sleep"), "spin or sleep"),
    "resume_step": (is_whole, "a whole number ≥ 0"),
    "handing_over": (is_whole, "a whole number ≥ 0"), "handed_over_at": (is_whole, "a whole number ≥ 0"),
}


MAX_MESSAGE = 2000  # characters of a status message shown; a longer one is cut


def check_status(data) -> dict:
    if not isinstance(data, dict):
        raise Damaged(f"status.json is not an object (it holds {type(data).__name__})")
    if "status" not in data:
        raise Damaged("status.json has no 'status'")
    if isinstance(data.get("message"), str) and len(data["message"]) > MAX_MESSAGE:
        data["message"] = data["message"][:MAX_MESSAGE] + "…"
    for key, value in data.items():
        if key in STATUS_FIELDS and value is not None:
            check, what = STATUS_FIELDS[key]
            if not check(value):
                raise Damaged(f"status.json: '{key}' must be {what}, got {value!r:.40}")
    return data


def read_status(path: str | Path) -> dict | None:
    """The run's status.json, checked; None when it is missing or damaged."""
    try:
        return check_status(read_json(run_files(path).status))
    except Damaged:
        return None
