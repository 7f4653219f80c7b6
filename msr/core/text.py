"""Numbers as one line of text shows them."""
from __future__ import annotations


def num(value, spec: str = ".4f") -> str:
    """``value`` in ``spec``; "-" when it is not a number (a missing or undefined value)."""
    return format(value, spec) if isinstance(value, (int, float)) else "-"
