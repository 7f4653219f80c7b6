"""Synthetic runs by the group they were launched in (the Paper check page shows one group)."""
from __future__ import annotations

import secrets
import time

from .config import SyntheticConfig
from .models import MODEL_ORDER


def new_group_id() -> str:
    """A name for the runs launched together (their config's ``group``)."""
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def run_groups(records: list) -> dict[str, list]:
    """The synthetic runs among ``records`` (msr.store.reader.RunRecord) by the
    group they were launched in, newest group first; a run launched alone is
    a group of its own. Each group's runs in model order."""
    groups: dict[str, list] = {}
    for rec in records:
        if rec.damaged or not isinstance(rec.config, SyntheticConfig):
            continue
        groups.setdefault(rec.config.group or rec.run_id, []).append(rec)
    order = MODEL_ORDER
    for runs in groups.values():
        runs.sort(key=lambda r: order.index(r.config.model) if r.config.model in order else len(order))
    return dict(sorted(groups.items(), key=lambda kv: -max(r.created for r in kv[1])))
