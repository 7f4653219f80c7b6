"""The two kinds of refusal, each with its one line for the user.

- :class:`ConfigError`: bad input. What was asked for is wrong, whatever the
  machine (command line: exit code 2).
- :class:`DataError`: a data source cannot be read (bad input too: exit code 2).
- :class:`MachineError`: what was asked for is fine, but this machine cannot
  take it now: too little free memory, no GPU, a full disk, a runs folder that
  cannot be written (command line: exit code 4).
"""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad input; str(error) is the one line to show the user.

    ``errors`` maps each bad field (None: no single field) to its line, in
    the order they were found; str(error) is the first of them.
    """

    def __init__(self, message: str, *, field: str | None = None, errors: dict[str | None, str] | None = None):
        super().__init__(message)
        self.errors: dict[str | None, str] = dict(errors) if errors else {field: message}

    @classmethod
    def of(cls, errors: dict[str | None, str]) -> "ConfigError":
        return cls(next(iter(errors.values())), errors=errors)


class DataError(ValueError):
    """A data source cannot be read; the message says why and what to do."""


class MachineError(Exception):
    """The machine cannot take the run now; str(error) is the one line to show.

    ``field`` names the setting the line is about, where there is one (the
    device, when no GPU is there), so a form can show it beside that field."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
