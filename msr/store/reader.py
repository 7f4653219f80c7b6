"""Run folders on disk: the whole truth about a run.

``runs/<run-id>/`` holds

- ``.msr-run``: the mark that this app made the folder (delete touches nothing else);
- ``config.json``: the run's settings and its kind (``mnist`` or ``synthetic``);
- ``status.json``: the small summary a run list reads: status, step, total,
  the last evaluation's numbers, and the worker's pid, host and heartbeat;
- ``metrics.jsonl``: one evaluation record per line, appended;
- ``losses.csv``: the training loss of every step, appended;
- ``checkpoints/step_NNNNNN.pt``: weights at every evaluation (thinned under a cap);
- ``resume.pt``: everything needed to continue (optimizer, generators, counters);
- ``worker.lock``: held (flock) by the live worker, so a dead worker is seen at once;
- ``stop``: a stop request;
- ``annotations.json``: a display name, notes and the run's colour (msr.annotations).

Whole-file writes go to a temporary file renamed over the target, so a killed
process leaves the old file or the new one. Records are appended and flushed;
a torn last line is skipped on reading. Everything read back is checked for
shape and type: a folder that fails is reported as damaged, with its reason,
and never hides the other runs.
"""
from __future__ import annotations

import errno
import fcntl
import io
import json
import math
import os
import secrets
import shutil
import socket
import stat
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .annotations import Annotations, fallback_color, least_used_color, read_annotations, write_annotations
from .config import ConfigError
from .layout import MARKER, MARKER_TEXT, run_files

KINDS = ("mnist", "synthetic")
ACTIVE = ("starting", "running")
FINISHED = ("completed", "stopped", "failed")
INTERRUPTED = "interrupted"
STATUSES = ACTIVE + FINISHED
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0  # a worker on another host is gone after this long without a heartbeat
START_GRACE_SECONDS = 120.0  # a launched worker may take this long to claim its run
MIN_FREE_BYTES = 64 * 2 ** 20


class RunFolderError(ConfigError):
    """A run folder (or the runs folder) cannot be used; str() is one line."""


class CheckpointError(RunFolderError):
    """A checkpoint that cannot be read."""


HOST = socket.gethostname()


# ------------------------------------------------------------------- writes
def json_safe(value: Any) -> Any:
    """NaN and ±Infinity become null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kw) -> str:
    return json.dumps(json_safe(value), allow_nan=False, **kw)


def atomic_write_bytes(path: Path, data: bytes, sync: bool = True) -> None:
    """Write to a temporary file beside ``path`` and rename it over. The
    folder must exist: a deleted run is never brought back by a late write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync)


def new_run_id(label: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"


def describe_os_error(exc: OSError, where: str | Path) -> str:
    """One line for an environment problem with a runs folder."""
    if exc.errno == errno.ENOSPC:
        return f"the disk holding '{where}' is full; free some space or choose another runs folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write in runs folder '{where}': permission denied; choose another runs folder"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"runs folder '{where}' is a file, not a folder; choose another runs folder"
    return f"cannot use runs folder '{where}': {exc.strerror or exc}"


def prepare_root(root: str | Path) -> Path:
    """The runs folder, made if missing, checked to be a writable folder with
    room for a run; RunFolderError (one line) otherwise."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise RunFolderError(f"runs folder '{root}' is a file, not a folder; choose another runs folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise RunFolderError(describe_os_error(exc, root)) from None
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise RunFolderError(f"the disk holding '{root}' has {free / 2 ** 20:.0f} MiB free, less than the "
                             f"{MIN_FREE_BYTES / 2 ** 20:.0f} MiB a run needs; free some space or choose another "
                             "runs folder")
    return root


def create_run_folder(root: str | Path, kind: str, config: dict, label: str, total: int) -> Path:
    """A new run folder, complete before it appears under its name."""
    root = prepare_root(root)
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".new-"))
        atomic_write_text(run_files(staging).marker, MARKER_TEXT)
        atomic_write_text(run_files(staging).config, dumps({"kind": kind, **config}, indent=2))
        atomic_write_text(run_files(staging).status, dumps({"status": "starting", "kind": kind, "created": time.time(),
                                                    "step": 0, "total": total}))
        atomic_write_text(run_files(staging).metrics, "")
        write_annotations(staging, color=least_used_color(root))
        run_files(staging).checkpoints.mkdir()
        final = root / new_run_id(label)
        os.rename(staging, final)
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise RunFolderError(describe_os_error(exc, root)) from None
    return final


def _serialize(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class RunWriter:
    """The worker's side of a run folder: it holds the lock while it lives."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files = run_files(self.path)
        self.status: dict = {}
        self._lock_fd: int | None = None
        self._metrics_fh = None
        self._losses_fh = None

    # ------------------------------------------------------------ claiming
    def claim(self, wait: float = 5.0) -> "RunWriter":
        """Take the run's lock; RunFolderError if another worker holds it."""
        if not self.files.marker.is_file():
            raise RunFolderError(f"'{self.path}' is not a run folder")
        fd = os.open(self.files.lock, os.O_RDWR | os.O_CREAT, 0o644)
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    os.close(fd)
                    raise RunFolderError(f"run '{self.path.name}' is already being trained by another process") from None
                time.sleep(0.05)
        self._lock_fd = fd
        current = read_status(self.path)
        self.status = current if isinstance(current, dict) else {}
        # A stop request left from an earlier worker is stale; one made since
        # this worker was launched (while it was starting) still counts. Only
        # a worker the app launched (its pid is the one recorded) has a launch
        # time; a command-line worker starts now.
        launched = self.status.get("launched") if self.status.get("pid") == os.getpid() else None
        try:
            if self.files.stop.stat().st_mtime < (launched if _number(launched) else time.time()):
                self.files.stop.unlink()
        except OSError:
            pass
        return self

    def release(self) -> None:
        for fh in (self._metrics_fh, self._losses_fh):
            if fh is not None:
                try:
                    fh.close()
                except OSError:
                    pass
        self._metrics_fh = self._losses_fh = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    @property
    def run_id(self) -> str:
        return self.path.name

    # ------------------------------------------------------------- records
    def reset_records(self, keep_through: int | None) -> list[dict]:
        """Keep the records up to step ``keep_through`` (None: none) and
        rewrite the files once; a resumed run continues after them."""
        records = read_metrics(self.path)[0] if keep_through is not None else []
        records = [r for r in records if r["step"] <= keep_through] if keep_through is not None else []
        atomic_write_text(self.files.metrics, "".join(dumps(r) + "\n" for r in records))
        kept = []
        if keep_through is not None:
            try:
                lines = self.files.losses.read_text(encoding="utf-8").split("\n")[:-1]
            except OSError:
                lines = []
            for line in lines:  # by step only: a step whose loss was not read back keeps its empty value
                head = line.split(",", 1)[0]
                if head.isdigit() and int(head) <= keep_through:
                    kept.append(line + "\n")
        atomic_write_text(self.files.losses, "".join(kept))
        for step in checkpoint_steps(self.path):  # weights of a timeline that resuming abandons
            if keep_through is None or step > keep_through:
                self.files.checkpoint(step).unlink(missing_ok=True)
        return records

    def append_metrics(self, record: dict) -> None:
        """One line, flushed and synced: O(1) however long the run."""
        if self._metrics_fh is None:
            self._metrics_fh = open(self.files.metrics, "a", encoding="utf-8")
        self._metrics_fh.write(dumps(record) + "\n")
        self._metrics_fh.flush()
        os.fsync(self._metrics_fh.fileno())

    def append_loss(self, step: int, loss: float | None) -> None:
        """Buffered; ``flush_losses`` makes them visible (about once a second)."""
        if self._losses_fh is None:
            self._losses_fh = open(self.files.losses, "a", encoding="utf-8")
        value = repr(float(loss)) if loss is not None and math.isfinite(loss) else ""
        self._losses_fh.write(f"{step},{value}\n")

    def flush_losses(self, sync: bool = False) -> None:
        if self._losses_fh is not None:
            self._losses_fh.flush()
            if sync:
                os.fsync(self._losses_fh.fileno())

    def write_status(self, sync: bool = False, **fields) -> None:
        self.status.update(fields)
        self.status["updated"] = time.time()
        atomic_write_text(self.files.status, dumps(self.status), sync=sync)

    # --------------------------------------------------------- checkpoints
    def save_checkpoint(self, step: int, state: dict, config: dict, budget_mb: float) -> Path:
        target = self.files.checkpoint(step)
        atomic_write_bytes(target, _serialize({**state, "step": step, "config": config}))
        enforce_budget(self.files.checkpoints, budget_mb * 1e6)
        return target

    def save_resume(self, state: dict) -> None:
        atomic_write_bytes(self.files.resume, _serialize(state))


def checkpoint_steps(run_path: str | Path) -> list[int]:
    return run_files(run_path).checkpoint_steps()


def enforce_budget(folder: Path, budget_bytes: float) -> list[int]:
    """Thin checkpoints until they fit the budget. The first and last always
    stay, and the survivors are the steps nearest to evenly spaced targets, so
    the step slider still covers the whole run."""
    layout = run_files(folder.parent)
    files = {s: layout.checkpoint(s) for s in layout.checkpoint_steps()}
    sizes = {s: f.stat().st_size for s, f in files.items()}
    if sum(sizes.values()) <= budget_bytes or len(files) <= 2:
        return []
    steps = sorted(files)
    keep_count = max(2, int(budget_bytes // (sum(sizes.values()) / len(steps))))
    while True:
        span = steps[-1] - steps[0]
        targets = [steps[0] + span * i / (keep_count - 1) for i in range(keep_count)]
        keep = {min(steps, key=lambda s: (abs(s - t), s)) for t in targets}
        if sum(sizes[s] for s in keep) <= budget_bytes or keep_count == 2:
            break
        keep_count -= 1
    removed = [s for s in steps if s not in keep]
    for s in removed:
        files[s].unlink(missing_ok=True)
    return removed


def _torch_load(path: Path, what: str, run_path: Path) -> dict:
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{what} of run '{run_path.name}' is missing") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{what} of run '{run_path.name}' cannot be read ({type(exc).__name__}); "
                              "the file is damaged or was not written by this app") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{what} of run '{run_path.name}' does not hold a checkpoint")
    return blob


def load_checkpoint(run_path: str | Path, step: int | None = None) -> dict:
    """A checkpoint's state dicts (the latest when step is None, else the
    nearest kept one). CheckpointError, one line, when it cannot be read."""
    run_path = Path(run_path)
    steps = checkpoint_steps(run_path)
    if not steps:
        raise CheckpointError(f"run '{run_path.name}' has no checkpoint yet")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        step = min(steps, key=lambda s: abs(s - step))
    return _torch_load(run_files(run_path).checkpoint(step), f"the checkpoint of step {step}", run_path)


def checkpoint_mtime(run_path: str | Path, step: int) -> float:
    """Part of a cache key: a checkpoint rewritten under the same step is a new one."""
    try:
        return run_files(run_path).checkpoint(step).stat().st_mtime
    except OSError:
        return 0.0


RESUME_KEYS = ("step", "model", "inner_lrs", "optimizer", "generators")


def load_resume_state(run_path: str | Path) -> dict | None:
    """What a resumed run continues from (None: it has nothing saved yet)."""
    run_path = Path(run_path)
    if not run_files(run_path).resume.exists():
        return None
    state = _torch_load(run_files(run_path).resume, "the resume state", run_path)
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing or not _whole(state.get("step")):
        raise CheckpointError(f"the resume state of run '{run_path.name}' is incomplete "
                              f"({', '.join(missing) or 'step'}); the file is damaged")
    return state


# -------------------------------------------------------------------- reads
class Damaged(ValueError):
    """A file of a run folder has the wrong shape; str() says which and why."""


def _read_json_file(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(f"no {path.name}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Damaged(f"{path.name} cannot be read ({exc.__class__.__name__})") from None
    except ValueError:
        raise Damaged(f"{path.name} is not valid JSON") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


STATUS_FIELDS = {  # field -> (check, what it must be)
    "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
    "kind": (lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
    "created": (_number, "a number"), "updated": (_number, "a number"), "heartbeat": (_number, "a number"),
    "started": (_number, "a number"), "launched": (_number, "a number"),
    "step": (_whole, "a whole number ≥ 0"), "total": (_whole, "a whole number ≥ 0"),
    "steps": (_whole, "a whole number ≥ 0"), "pid": (_whole, "a whole number ≥ 0"),
    "host": (lambda v: isinstance(v, str), "text"),
    "message": (lambda v: isinstance(v, str), "text"),
    "last": (lambda v: isinstance(v, dict) and all(x is None or _number(x) for x in v.values())
             and (v.get("step") is None or _whole(v.get("step"))), "an object of numbers"),
    "steps_per_sec": (_number, "a number"), "wall_seconds": (_number, "a number"),
    "stop_requested": (_number, "a number"),
    "train_seconds": (_number, "a number"), "eval_seconds": (_number, "a number"),
    "evals": (_whole, "a whole number ≥ 0"), "first_eval_seconds": (_number, "a number"),
}


def check_status(data) -> dict:
    if not isinstance(data, dict):
        raise Damaged(f"status.json is not an object (it holds {type(data).__name__})")
    if "status" not in data:
        raise Damaged("status.json has no 'status'")
    for key, value in data.items():
        if key in STATUS_FIELDS and value is not None:
            check, what = STATUS_FIELDS[key]
            if not check(value):
                raise Damaged(f"status.json: '{key}' must be {what}, got {value!r:.40}")
    return data


def read_status(path: str | Path) -> dict | None:
    try:
        return check_status(_read_json_file(run_files(path).status))
    except Damaged:
        return None


def check_record(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise Damaged(f"{where} is not a record (it holds {type(data).__name__})")
    if not _whole(data.get("step")):
        raise Damaged(f"{where} has no whole-number 'step'")
    return data


def read_metrics(path: str | Path) -> tuple[list[dict], str | None]:
    """(records, warning). A torn or bad *last* line is skipped with a
    warning (a worker killed mid-write); a bad line before it is damage."""
    file = run_files(path).metrics
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as exc:
        raise Damaged(f"metrics.jsonl cannot be read ({exc.__class__.__name__})") from None
    return parse_metrics(text, file)


def parse_metrics(text: str, file: Path) -> tuple[list[dict], str | None]:
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is unfinished
    tail = lines[-1]
    records, warning = [], None
    for i, line in enumerate(complete):
        if not line.strip():
            continue
        try:
            records.append(check_record(json.loads(line), f"metrics.jsonl line {i + 1}"))
        except (ValueError, Damaged) as exc:
            if i == len(complete) - 1 and not tail.strip():
                warning = f"skipped a damaged last line of {file} ({exc})"
                break
            raise Damaged(str(exc) if isinstance(exc, Damaged) else f"metrics.jsonl line {i + 1} is not valid JSON") from None
    if tail.strip():
        warning = f"skipped an unfinished last line of {file}"
    steps = [r["step"] for r in records]
    if steps != sorted(steps):
        raise Damaged("metrics.jsonl records are not in step order")
    return records, warning


class MetricsCache:
    """Records of growing metrics files, read incrementally: a page that
    redraws a live run every two seconds parses only the new lines."""

    def __init__(self):
        self._entries: dict[str, tuple[int, int, list[dict]]] = {}
        self._lock = threading.Lock()

    def read(self, path: str | Path) -> list[dict]:
        file = run_files(path).metrics
        try:
            st = file.stat()
        except OSError:
            return []
        key = str(file)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == st.st_ino and entry[1] == st.st_size:
            return list(entry[2])
        if entry is not None and entry[0] == st.st_ino and entry[1] < st.st_size:
            try:
                with open(file, "rb") as fh:
                    fh.seek(entry[1])
                    chunk = fh.read()
                cut = chunk.rfind(b"\n") + 1
                new = [check_record(json.loads(line), "metrics.jsonl") for line in chunk[:cut].decode().splitlines()
                       if line.strip()]
                records = entry[2] + new
                with self._lock:
                    self._entries[key] = (st.st_ino, entry[1] + cut, records)
                return list(records)
            except (OSError, ValueError, Damaged):
                pass
        try:
            with open(file, "rb") as fh:
                data = fh.read()
            records, _ = parse_metrics(data.decode("utf-8"), file)
        except (OSError, UnicodeDecodeError):
            return []
        cut = data.rfind(b"\n") + 1  # a torn last line is read again next time
        with self._lock:
            self._entries[key] = (st.st_ino, cut, records)
        return list(records)


METRICS_CACHE = MetricsCache()


def read_losses(path: str | Path, keep: int | None = 5000) -> list[tuple[int, float]]:
    """The per-step training losses, the last ``keep`` of them (read from
    the end of the file, so a long run costs no more than a short one)."""
    file = run_files(path).losses
    offset = 0
    try:
        with open(file, "rb") as fh:
            if keep is not None:
                fh.seek(0, os.SEEK_END)
                offset = max(0, fh.tell() - 40 * keep)
                fh.seek(offset)
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = data.split("\n")[:-1]  # what follows the last newline is unfinished
    if offset > 0:
        lines = lines[1:]  # the first line may be cut
    out = []
    for line in lines:
        parts = line.split(",")
        if len(parts) != 2 or not parts[1]:
            continue
        try:
            step, value = int(parts[0]), float(parts[1])
        except ValueError:
            continue
        if math.isfinite(value):
            out.append((step, value))
    return out[-keep:] if keep is not None else out


def run_kind(config_data: dict) -> str:
    return config_data.get("kind", "synthetic" if "problem" in config_data else "mnist")


def parse_config(data) -> tuple[str, Any]:
    """(kind, config object) from config.json's content; Damaged if it does
    not describe a run."""
    if not isinstance(data, dict):
        raise Damaged(f"config.json is not an object (it holds {type(data).__name__})")
    data = dict(data)
    kind = run_kind(data)
    data.pop("kind", None)
    if kind not in KINDS:
        raise Damaged(f"config.json: unknown kind {kind!r}")
    try:
        if kind == "mnist":
            from .config import RunConfig
            cfg = RunConfig.from_dict(data).validate(cuda_available=True, check_resources=False)
        else:
            from .synthetic.config import SyntheticConfig
            cfg = SyntheticConfig.from_dict(data).validate(check_device=False)
    except (ConfigError, TypeError, ValueError) as exc:
        raise Damaged(f"config.json does not describe a run ({exc})") from None
    return kind, cfg


# ----------------------------------------------------------------- liveness
def _lock_held(path: Path) -> bool:
    return lock_held(run_files(path).lock)


def lock_held(lock_file: Path) -> bool:
    """Whether a live process holds this flock (a dead one's lock is released by the kernel)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def pid_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def worker_alive(path: str | Path, status: dict) -> bool:
    """Whether a worker is training this run right now. On this host the
    worker's lock answers exactly (it is dropped when the process dies, even
    by kill -9); a worker that was launched but has not claimed the run yet
    counts while its process lives. Elsewhere, a fresh heartbeat counts."""
    path = Path(path)
    if status.get("status") not in ACTIVE:
        return False
    host = status.get("host")
    if host in (None, HOST):
        if _lock_held(path):
            return True
        pid, launched = status.get("pid"), status.get("launched")
        return (status.get("status") == "starting" and isinstance(pid, int) and _number(launched)
                and time.time() - launched < START_GRACE_SECONDS and pid_running(pid))
    beat = status.get("heartbeat") or status.get("updated")
    return _number(beat) and time.time() - beat < STALE_SECONDS


def effective_status(path: str | Path, status: dict) -> str:
    """The status to show: a run whose worker is gone is interrupted, never running."""
    recorded = status.get("status", "unknown")
    if recorded in ACTIVE and not worker_alive(path, status):
        return INTERRUPTED
    return recorded


# ------------------------------------------------------------------ records
@dataclass
class RunRecord:
    """A run folder as read back; ``damaged`` says why it cannot be used.

    ``metrics`` is read on first use, so listing many runs reads only their
    small config and status files."""
    path: Path
    kind: str = "mnist"
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
        if _number(value):
            return float(value)
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

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
        kind, record.config = parse_config(_read_json_file(run_files(path).config))
        record.kind = kind
        record.status = check_status(_read_json_file(run_files(path).status))
        record.state = effective_status(path, record.status)
        if with_metrics:
            record.metrics  # noqa: B018 - read and check now
    except Damaged as exc:
        record.damaged = str(exc)
        record.state = "damaged"
        record._metrics = record._metrics or []
    return record


def list_runs(root: str | Path = "runs", include_damaged: bool = False, kind: str | None = None) -> list[RunRecord]:
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
        if kind is not None and not rec.damaged and rec.kind != kind:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: r.created, reverse=True)


def active_runs(root: str | Path = "runs") -> list[RunRecord]:
    return [r for r in list_runs(root, include_damaged=True) if r.active]


# -------------------------------------------------- confined file access
def is_marked_run(path: str | Path) -> bool:
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    marker = run_files(path).marker
    return marker.is_file() and not marker.is_symlink()


def delete_run(path: str | Path) -> None:
    """Delete a run folder: only one this app made, never through a
    symlink, never while its worker lives. RunFolderError otherwise."""
    path = Path(path)
    if path.is_symlink():
        raise RunFolderError(f"'{path}' is a symbolic link; only run folders themselves are deleted")
    if not path.is_dir():
        raise RunFolderError(f"no run folder at '{path}'")
    if not is_marked_run(path):
        raise RunFolderError(f"'{path}' was not made by this app (no {MARKER} mark); delete it by hand if you must")
    status = read_status(path) or {}
    if _lock_held(path) or worker_alive(path, status):
        raise RunFolderError(f"run '{path.name}' is still training; stop it before deleting it")
    # Rename first, so the folder is gone from the list at once and a late
    # writer cannot bring half of it back under the old name.
    trash = path.parent / f".deleting-{path.name}-{secrets.token_hex(2)}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def check_run_file(run_path: str | Path, relative: str) -> Path:
    """The path of a regular file inside the run folder, checked without
    reading it (no symlink at any level, no '..'); RunFolderError otherwise."""
    run_path = Path(run_path)
    parts = Path(relative).parts
    if not parts or any(p in ("..", "") or p.startswith("/") for p in parts) or Path(relative).is_absolute():
        raise RunFolderError(f"'{relative}' is not a file of run '{run_path.name}'")
    if not is_marked_run(run_path):
        raise RunFolderError(f"'{run_path}' is not a run folder")
    current = run_path
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            raise RunFolderError(f"'{relative}' is not a file of run '{run_path.name}'")
    target = current / parts[-1]
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        raise RunFolderError(f"'{relative}' is not a readable file of run '{run_path.name}'") from None
    if not stat.S_ISREG(mode):
        raise RunFolderError(f"'{relative}' is not a regular file of run '{run_path.name}'")
    return target


def read_run_file(run_path: str | Path, relative: str) -> bytes:
    """The bytes of a regular file inside the run folder (see
    check_run_file), opened without following a link. For downloads."""
    run_path = Path(run_path)
    target = check_run_file(run_path, relative)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise RunFolderError(f"'{relative}' is not a readable file of run '{run_path.name}'") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise RunFolderError(f"'{relative}' is not a regular file of run '{run_path.name}'")
        return fh.read()


def request_stop(path: str | Path) -> bool:
    """Ask a run's worker to stop after its current step (a stop file, and
    SIGTERM when the worker is on this host). False when nothing is running."""
    path = Path(path)
    status = read_status(path) or {}
    if not worker_alive(path, status):
        return False
    if run_files(path).stop.exists():
        return True  # already asked: a second signal would end the worker at once, without its final evaluation
    try:
        atomic_write_text(run_files(path).stop, str(time.time()))
    except OSError:
        pass
    pid = status.get("pid")
    # A signal only once the worker has claimed the run (it then stops on
    # SIGTERM); one still starting reads the stop file as soon as it claims.
    if (status.get("host") in (None, HOST) and isinstance(pid, int) and pid > 0 and pid != os.getpid()
            and _lock_held(path)):
        try:
            os.kill(pid, 15)
        except OSError:
            pass
    return True


def force_stop(path: str | Path) -> bool:
    """End a worker that does not stop (SIGKILL). The run becomes
    interrupted and can be resumed from its last checkpoint."""
    path = Path(path)
    status = read_status(path) or {}
    pid = status.get("pid")
    if status.get("host") not in (None, HOST) or not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    if not _lock_held(path):  # only the worker that holds the run (whose pid it wrote) is ended
        return False
    try:
        os.kill(pid, 9)
    except OSError:
        return False
    return True


def stop_requested(path: str | Path) -> bool:
    return run_files(path).stop.exists()


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress bar: wall-clock rate and time left
    measured since this worker started (evaluations included)."""
    state: str
    step: int
    total: int
    steps_per_sec: float | None
    seconds_left: float | None
    elapsed: float | None
    message: str | None
    stopping: bool
    stop_age: float | None = None  # seconds since the stop request, while it is pending

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


def progress_of(rec: RunRecord, now: float | None = None) -> Progress:
    now = time.time() if now is None else now
    st_ = rec.status
    step, total = rec.step, rec.total or 0
    started = st_.get("started")
    start_step = st_.get("start_step") if _whole(st_.get("start_step")) else 0
    elapsed = rate = left = None
    if _number(started):
        end = st_.get("updated") if rec.state not in ACTIVE and _number(st_.get("updated")) else now
        elapsed = max(0.0, end - started)
        done = step - start_step
        if done > 0 and elapsed > 0:
            rate = done / elapsed
        if rec.state in ACTIVE:
            left = time_left(st_, step, total, getattr(rec.config, "eval_interval", None))
    stop_age = None
    if rec.state in ACTIVE:
        try:
            stop_age = max(0.0, now - run_files(rec.path).stop.stat().st_mtime)
        except OSError:
            stop_age = None
    return Progress(rec.state, step, total, rate, left, elapsed, st_.get("message"), stop_age is not None, stop_age)


ESTIMATE_AFTER_STEPS = 5  # the first steps warm caches up: no estimate from fewer


def time_left(status: dict, step: int, total: int, eval_interval: int | None) -> float | None:
    """Seconds to the end: the steps left at this worker's time per step, plus
    the evaluations left at its time per evaluation. Measured apart, as the
    evaluation at step 0 comes before any step and carries the warm-up; it
    is left out of the time per evaluation once a later one is timed. None
    until ESTIMATE_AFTER_STEPS steps are timed, or from a worker that does
    not record these times."""
    start_step = status.get("start_step") if _whole(status.get("start_step")) else 0
    done, train_seconds = step - start_step, status.get("train_seconds")
    if done < ESTIMATE_AFTER_STEPS or not _number(train_seconds) or train_seconds <= 0:
        return None
    left = (total - step) * train_seconds / done
    evals, eval_seconds, first = status.get("evals"), status.get("eval_seconds"), status.get("first_eval_seconds")
    if eval_interval and _whole(evals) and evals > 0 and _number(eval_seconds):
        # this worker's evaluations: at step 0 (a fresh run), every eval_interval, and at the last step
        planned = (start_step == 0) + total // eval_interval - start_step // eval_interval + bool(total % eval_interval)
        if evals > 1 and start_step == 0 and _number(first):
            per_eval = (eval_seconds - first) / (evals - 1)
        else:
            per_eval = eval_seconds / evals
        left += max(0, planned - evals) * per_eval
    return max(0.0, left)
