"""Run folders read back strictly: a run's records, its config, and the run lists.

Everything read back is checked for shape and type: a folder that fails is
reported as damaged, with its reason, and never hides the other runs.
Records are appended by the worker; a torn last line (a worker killed
mid-write) is skipped with a warning.
"""
from __future__ import annotations

import json
import math
import os
import stat
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .. import kinds
from ..core.errors import ConfigError
from ..core.kind import RunKind
from .annotations import Annotations, fallback_color, read_annotations
from .checkpoints import checkpoint_steps
from .files import Damaged, NotRegular, is_number, is_whole, open_file, read_json
from .layout import INTERRUPTED, LIVE, METRICS, run_files
from .liveness import effective_status
from .status import check_status


# ------------------------------------------------------------------ metrics
def check_record(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise Damaged(f"{where} is not a record (it holds {type(data).__name__})")
    if not is_whole(data.get("step")):
        raise Damaged(f"{where} has no whole-number 'step'")
    return data


MAX_LINE = 2 ** 20  # a record or loss line longer than this is damage, not a record


def _lines(fh, what: str) -> Iterator[bytes]:
    """The file's lines, one at a time (each ending in a newline, but for an
    unfinished last one); Damaged for a line longer than MAX_LINE."""
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise Damaged(f"{what} has a line longer than {MAX_LINE // 2 ** 20} MiB")
        yield line


def read_metrics(path: str | Path) -> tuple[list[dict], str | None]:
    """(records, warning), read line by line. A torn or bad *last* line is
    skipped with a warning (a worker killed mid-write); a bad line before it
    is damage, as is a link or a special file."""
    file = run_files(path).metrics
    try:
        fh = open_file(file)
    except FileNotFoundError:
        return [], None
    except NotRegular as exc:
        raise Damaged(exc.strerror) from None
    except OSError as exc:
        raise Damaged(f"metrics.jsonl cannot be read ({exc.__class__.__name__})") from None
    with fh:
        try:
            records, warning, _ = parse_metrics(_lines(fh, METRICS), file)
        except OSError as exc:
            raise Damaged(f"metrics.jsonl cannot be read ({exc.__class__.__name__})") from None
    return records, warning


BATCH_LINES = 4096  # lines parsed as one JSON array when they are all good (a long run loads fast)


def parse_metrics(lines: Iterable[bytes], file: Path) -> tuple[list[dict], str | None, int]:
    """(records, warning, bytes of the complete lines) from metrics.jsonl's
    lines: a bad line is damage unless it is the last complete one (a
    worker killed mid-write), and an unfinished last line is skipped."""
    records: list[dict] = []
    bad: dict = {}  # the first bad line: {"line": i, "why": ...}

    def one(i: int, text: bytes) -> None:
        if bad:
            raise Damaged(bad["why"])  # the bad line was not the last
        try:
            records.append(check_record(json.loads(text), f"metrics.jsonl line {i}"))
        except Damaged as exc:
            bad.update(line=i, why=str(exc))
        except (ValueError, RecursionError):
            bad.update(line=i, why=f"metrics.jsonl line {i} is not valid JSON")

    def flush(batch: list[tuple[int, bytes]]) -> None:
        if not bad and batch:
            try:  # all good, the common case: one parse for the whole batch
                parsed = json.loads(b"[" + b",".join(text for _, text in batch) + b"]")
                if len(parsed) == len(batch):
                    records.extend([check_record(r, f"metrics.jsonl line {i}") for (i, _), r in zip(batch, parsed)])
                    return
            except (ValueError, RecursionError):  # Damaged included: the lines one by one say which
                pass
        for i, text in batch:
            one(i, text)

    batch: list[tuple[int, bytes]] = []
    used = last = 0
    tail = False
    for i, raw in enumerate(lines, 1):
        if not raw.endswith(b"\n"):  # unfinished: a worker is writing it, or was killed while it did
            tail = bool(raw.strip())
            break
        used, last = used + len(raw), i
        if text := raw.strip():
            batch.append((i, text))
        if len(batch) >= BATCH_LINES:
            flush(batch)
            batch = []
    flush(batch)
    warning = f"skipped an unfinished last line of {file}" if tail else None
    if bad:
        if bad["line"] != last or tail:
            raise Damaged(bad["why"])
        warning = f"skipped a damaged last line of {file} ({bad['why']})"
    steps = [r["step"] for r in records]
    if steps != sorted(steps):
        raise Damaged("metrics.jsonl records are not in step order")
    return records, warning, used


class MetricsCache:
    """Records of growing metrics files, read incrementally: a page that
    redraws a live run every two seconds parses only the new lines."""

    def __init__(self):
        self._entries: dict[str, tuple[int, int, list[dict]]] = {}  # file -> (inode, bytes parsed, records)
        self._lock = threading.Lock()

    def read(self, path: str | Path) -> list[dict]:
        """The records (none for a damaged, linked or special file)."""
        file = run_files(path).metrics
        try:
            st = os.lstat(file)
        except OSError:
            return []
        if not stat.S_ISREG(st.st_mode):
            return []
        key = str(file)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == st.st_ino and entry[1] == st.st_size:
            return list(entry[2])
        start = entry is not None and entry[0] == st.st_ino and entry[1] < st.st_size
        try:
            with open_file(file) as fh:
                if start:
                    fh.seek(entry[1])
                    new, _, used = parse_metrics(_lines(fh, METRICS), file)
                    if new and entry[2] and new[0]["step"] < entry[2][-1]["step"]:
                        raise Damaged("metrics.jsonl records are not in step order")
                    records, offset = entry[2] + new, entry[1] + used
                else:
                    records, _, offset = parse_metrics(_lines(fh, METRICS), file)
        except (OSError, Damaged):
            return []
        with self._lock:  # a torn last line is read again next time
            self._entries[key] = (st.st_ino, offset, records)
        return list(records)


METRICS_CACHE = MetricsCache()


def read_loss_lines(file: Path) -> Iterator[tuple[int, str]]:
    """(step, loss text) of every well-formed line of losses.csv, read line by
    line; a damaged line (random bytes, an unfinished last line) is skipped.
    Nothing for a missing, linked or special file."""
    try:
        fh = open_file(file)
    except OSError:
        return
    with fh:
        while True:
            try:
                line = fh.readline(MAX_LINE + 1)
            except OSError:
                return
            if not line:
                return
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                continue
            parsed = _loss_line(line)
            if parsed is not None:
                yield parsed


def _loss_line(line: bytes) -> tuple[int, str] | None:
    parts = line.rstrip(b"\n").split(b",")
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    try:
        text = parts[1].decode("ascii")
        if text:
            float(text)
    except ValueError:  # UnicodeDecodeError included
        return None
    return int(parts[0]), text


def read_losses(path: str | Path, keep: int | None = 5000) -> list[tuple[int, float]]:
    """The per-step training losses, the last ``keep`` of them (read from
    the end of the file, so a long run costs no more than a short one)."""
    file = run_files(path).losses
    if keep is None:
        pairs = read_loss_lines(file)
    else:
        try:
            with open_file(file) as fh:
                fh.seek(0, os.SEEK_END)
                offset = max(0, fh.tell() - 40 * keep)
                fh.seek(offset)
                lines = fh.read(40 * keep).split(b"\n")[:-1]  # what follows the last newline is unfinished
        except OSError:
            return []
        if offset > 0:
            lines = lines[1:]  # the first line may be cut
        pairs = (p for line in lines if (p := _loss_line(line)) is not None)
    out = []
    for step, text in pairs:
        if text and math.isfinite(value := float(text)):
            out.append((step, value))
    return out[-keep:] if keep is not None else out


def parse_config(data) -> tuple[RunKind, Any]:
    """(kind, config object) from config.json's content; Damaged if it does
    not describe a run."""
    if not isinstance(data, dict):
        raise Damaged(f"config.json is not an object (it holds {type(data).__name__})")
    data = dict(data)
    try:
        kind = kinds.recorded(data)
    except ConfigError:
        raise Damaged(f"config.json: unknown kind {data.get('kind')!r}") from None
    data.pop("kind", None)
    try:
        cfg = kind.parse(data)
    except (ConfigError, TypeError, ValueError) as exc:
        raise Damaged(f"config.json does not describe a run ({exc})") from None
    return kind, cfg


# ------------------------------------------------------------------ records
@dataclass
class RunRecord:
    """A run folder as read back; ``damaged`` says why it cannot be used.

    ``metrics`` is read on first use, so listing many runs reads only their
    small config and status files."""
    path: Path
    kind: RunKind | None = None  # None: the folder is damaged before its kind could be read
    config: Any = None
    status: dict = field(default_factory=dict)
    damaged: str | None = None
    state: str = "unknown"  # the effective status
    _metrics: list[dict] | None = field(default=None, repr=False)
    warning: str | None = None
    _annotations: Annotations | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def annotations(self) -> Annotations:
        """What a user said of the run (read on first use)."""
        if self._annotations is None:
            self._annotations = read_annotations(self.path)
        return self._annotations

    @property
    def name(self) -> str:
        """The name a person gave it: renamed, else the config's name, else ''."""
        return self.annotations.name or (getattr(self.config, "name", "") or "" if self.config is not None else "")

    @property
    def color(self) -> str:
        return self.annotations.color or fallback_color(self.run_id)

    @property
    def metrics(self) -> list[dict]:
        if self._metrics is None:
            try:
                self._metrics, self.warning = read_metrics(self.path)
            except Damaged as exc:
                self._metrics = []
                self.damaged = self.damaged or str(exc)
            if self.warning:
                warnings.warn(self.warning, stacklevel=2)
        return self._metrics

    @property
    def last(self) -> dict:
        if self._metrics is None and isinstance(self.status.get("last"), dict):
            return self.status["last"]
        return self.metrics[-1] if self.metrics else {}

    @property
    def step(self) -> int:
        return int(self.status.get("step") or self.last.get("step") or 0)

    @property
    def total(self) -> int | None:
        if self.status.get("total") is not None:
            return int(self.status["total"])
        return getattr(self.config, "steps", None)

    @property
    def created(self) -> float:
        value = self.status.get("created")
        if is_number(value):
            return float(value)
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    @property
    def active(self) -> bool:
        return self.state in LIVE

    @property
    def resume_step(self) -> int | None:
        """The step Resume continues from: that of the state it saved (None:
        nothing saved, so Resume starts the run again)."""
        step = self.status.get("resume_step")
        if not is_whole(step) or not os.path.lexists(run_files(self.path).resume):
            return None
        return step

    def resume_text(self) -> str:
        """Where Resume takes the run, in words."""
        step = self.resume_step
        return f"Resume continues from step {step}" if step is not None else "Resume starts it again from step 0"

    @property
    def resumable(self) -> bool:
        return not self.damaged and self.state in ("stopped", INTERRUPTED, "failed")

    def checkpoint_steps(self) -> list[int]:
        return checkpoint_steps(self.path)


def load_run(path: str | Path, with_metrics: bool = True) -> RunRecord:
    """Read and check a run folder. Never raises for a bad folder: the
    record says what is wrong in ``damaged``."""
    path = Path(path)
    record = RunRecord(path)
    try:
        if path.is_symlink() or not path.is_dir():
            raise Damaged("not a folder")
        unsafe = run_files(path).unsafe()
        if unsafe:
            raise Damaged(unsafe)
        kind, record.config = parse_config(read_json(run_files(path).config))
        record.kind = kind
        record.status = check_status(read_json(run_files(path).status))
        record.state = effective_status(path, record.status)
        if with_metrics:
            record.metrics  # noqa: B018 - read and check now
    except Damaged as exc:
        record.damaged = str(exc)
        record.state = "damaged"
        record._metrics = record._metrics or []
    return record


def list_runs(root: str | Path = "runs", include_damaged: bool = False,
              kind: RunKind | None = None) -> list[RunRecord]:
    """Runs under root, newest first, reading only each run's config and
    status. Damaged or foreign folders are skipped with a warning (or
    returned marked, with include_damaged)."""
    root = Path(root)
    try:
        children = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    out = []
    for child in children:
        if child.name.startswith(".") or not child.is_dir():
            continue
        rec = load_run(child, with_metrics=False)
        if rec.damaged and not include_damaged:
            warnings.warn(f"skipping run folder '{child}': {rec.damaged}", stacklevel=2)
            continue
        if kind is not None and not rec.damaged and rec.kind is not kind:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: r.created, reverse=True)


def active_runs(root: str | Path = "runs") -> list[RunRecord]:
    return [r for r in list_runs(root, include_damaged=True) if r.active]
