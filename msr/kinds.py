"""The run-kind registry: every kind of run there is, by the name its run folders record.

A kind (msr.core.kind.RunKind) says everything the rest of the package needs
to know about its runs: their settings, trainer, labels, command-line report,
memory estimate and what the symmetry lens reads. Nothing outside a kind's own
package branches on which kind a run is; it asks the run's kind.

Adding a kind: write its package (settings, trainer, report, memory, and a
``kind`` module that builds its RunKind), import it here and add it to KINDS.
"""
from __future__ import annotations

from .core.errors import ConfigError
from .core.kind import RunKind
from .mnist.kind import KIND as MNIST
from .synthetic.kind import KIND as SYNTHETIC

KINDS: dict[str, RunKind] = {kind.name: kind for kind in (MNIST, SYNTHETIC)}


def get(name: str) -> RunKind:
    """The kind of this name; ConfigError naming the known ones otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown run kind {name!r}; allowed: {', '.join(KINDS)}") from None


def of(config) -> RunKind:
    """The kind whose settings ``config`` is."""
    for kind in KINDS.values():
        if isinstance(config, kind.config):
            return kind
    raise TypeError(f"{type(config).__name__} is not the config of any run kind")


def recorded(config_data: dict) -> RunKind:
    """The kind of a run from its config.json: its "kind"; for a folder
    written before the kind was recorded, the first kind whose settings have
    every field it holds."""
    if "kind" in config_data:
        return get(config_data["kind"])
    fields = set(config_data)
    return next((k for k in KINDS.values() if fields <= set(k.config.__dataclass_fields__)), MNIST)
