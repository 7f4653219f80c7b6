"""The one driver of a run folder: a run trained in this process, from its folder to its outcome.

The command line trains in its own process (``python -m msr train``); the app
launches ``python -m msr worker RUN`` detached (msr.runner.launch); sweeps
launch workers or Ray tasks. All of them train through :func:`execute`, for
every kind of run, and :func:`train` runs a config the same way in this
process (with or without a folder), for tests, benchmarks and the Python API.
The training itself is msr.core.loop.drive; this module keeps its folder.

While it lives, a worker holds the run's lock and its writer
(msr.store.writer) writes a heartbeat into status.json every couple of
seconds. SIGTERM, Ctrl-C and a stop file all end the run the same way: after
the current step, with a final evaluation and the status ``stopped``; a stop
file and the SIGTERM that came with it are one request. A second signal ends
it at once; it can then be resumed from its last saved state, whose step the
outcome's message names.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

from .. import kinds
from ..core.errors import ConfigError, MachineError
from ..core.loop import HANDED_OVER, Event, Recorder, RunResult, drive
from ..core.runtime import PROCESS_STARTED, continuation_environment, hand_over, wait_policy
from ..store.checkpoints import load_resume_state, restore
from ..store.files import RunFolderError, describe_os_error
from ..store.folders import create_run_folder, prepare_root
from ..store.layout import run_files
from ..store.liveness import HOST, stop_requested
from ..store.progress import recent_step_seconds
from ..store.reader import load_run
from ..store.writer import RunWriter
from .admission import admit
from .process import SignalsWait, StopSignals, block_stop_signals, main_thread, replace_process
from .trackers import Trackers
from .usage import ProcessUsage


def create_run(config) -> Path:
    """A new run folder for a validated config (StorageError when the runs
    folder cannot take it)."""
    kind = kinds.of(config)
    return create_run_folder(config.runs_dir, kind.name, config.to_dict(), kind.label(config), config.steps)


class FolderRecorder(Recorder):
    """Keeps a run in its folder as the driver goes: losses, records,
    checkpoints, the state to resume from, and the progress."""

    def __init__(self, writer: RunWriter, trainer, kind, config, trackers: Trackers | None = None):
        self.writer, self.trainer, self.kind, self.config = writer, trainer, kind, config
        self.trackers = trackers
        self.usage = ProcessUsage(getattr(trainer, "device", "cpu"))

    def stepped(self, step: int, loss: float | None, seconds: float) -> None:
        self.writer.stepped(step, loss, seconds)

    def before_stop(self, step: int) -> None:
        self._save_resume(step)

    def evaluated(self, step: int, record: dict, stopping: bool, began: float) -> None:
        record = {**record, **self.usage.figures()}  # the folder's record also says what the worker used
        self.writer.append_metrics(record)
        self.writer.save_checkpoint(step, {**self.trainer.state(), "kind": self.kind.name}, self.config.to_dict(),
                                    getattr(self.config, "checkpoint_budget_mb", 200.0))
        if not stopping:
            self._save_resume(step)
        self.writer.evaluated(step, record, began)
        if self.trackers is not None:
            self.trackers.evaluated(step, record, getattr(getattr(self.trainer, "learner", None), "model", None))

    def _save_resume(self, step: int) -> None:
        self.writer.save_resume({**self.trainer.resume_state(), "step": step})


def execute(run_dir: str | Path, *, resume: bool = False, on_event: Callable[[Event], None] | None = None,
            should_stop: Callable[[], bool] | None = None, trainer=None, data=None,
            continue_as: Callable[[Path], list[str]] | None = None) -> RunResult:
    """Train the run in ``run_dir`` in this process until it completes, is
    stopped or fails; return what happened. ``resume`` continues from the
    run's saved state (from the start if it has none). ``continue_as(run_dir)``:
    the msr command that goes on with the run (a ``resume``), for a process
    that may hand its run over (msr.core.runtime.hand_over); this process
    then becomes that command and never returns."""
    emit = on_event or (lambda event: None)
    external_stop = should_stop or (lambda: False)
    run_dir = Path(run_dir)
    stop_flag = threading.Event()
    # From here on SIGTERM and Ctrl-C stop the run cleanly; the writer holds the run's lock while it lives.
    with StopSignals(stop_flag) as signals, RunWriter(run_dir).claim() as writer:
        if stop_requested(run_dir):  # asked while this worker was starting
            stop_flag.set()
        try:
            result = _train(writer, run_dir, resume, emit, lambda: stop_flag.is_set() or external_stop(), stop_flag,
                            signals, trainer, data, continue_as)
        except BaseException as exc:
            writer.fail(_reason(exc))
            raise
        emit(result.done())
        return result


def _train(writer: RunWriter, run_dir: Path, resume: bool, emit, stop_now, stop_flag: threading.Event,
           signals: StopSignals, trainer, data, continue_as) -> RunResult:
    rec = load_run(run_dir, with_metrics=False)
    if rec.damaged:
        raise RunFolderError(f"run '{run_dir.name}' cannot be trained: {rec.damaged}")
    kind, cfg = rec.kind, rec.config
    writer.write_status(status="starting", pid=os.getpid(), host=HOST, heartbeat=time.time(),
                        **({} if writer.continued else {"message": None}))  # (a hand-over's says why it restarts)
    try:
        trainer = trainer or kind.trainer(cfg, data)
    except BaseException as exc:
        writer.write_status(sync=True, status="failed", message=_reason(exc))
        raise
    start, records, resumed_state, since = 0, [], False, 0
    if resume:
        state = load_resume_state(run_dir)
        if state is not None:
            resumed_state = True
            restore(lambda: trainer.load_resume_state(state), "the resume state", run_dir)
            start = int(state["step"])
            since = int(getattr(trainer, "steps_since_eval", 0)) if start else 0
        records = writer.reset_records(start if state is not None else None)
    else:
        writer.reset_records(None)
    if not resumed_state:
        writer.status.pop("resume_step", None)  # nothing saved yet in this timeline
    result = RunResult(cfg, "running", start, metrics=list(records), run_dir=str(run_dir),
                       learner=getattr(trainer, "learner", None), kind=kind)
    trackers = Trackers(run_dir, cfg, kind)  # TensorBoard, W&B: what the config's log_to asks for
    handover = hand_over() if continue_as is not None and main_thread() else None
    due = threading.Event()

    def on_beat() -> None:
        if stop_requested(run_dir):
            stop_flag.set()
        elif handover is not None and not due.is_set() and handover.due(_seconds_left(writer.progress)):
            due.set()

    writer.begin(start, cfg.steps, on_beat=on_beat, process_started=PROCESS_STARTED, idle_threads=wait_policy())
    try:
        drive(trainer, result, recorder=FolderRecorder(writer, trainer, kind, cfg, trackers), on_event=emit,
              should_stop=stop_now, start=start, since_eval=since, evaluated_at_start=resumed_state,
              hand_over=due.is_set if handover is not None else None)
    except KeyboardInterrupt:
        result.status = "stopped"
        saved = writer.status.get("resume_step")
        result.message = (f"stopped at once by a second signal at step {result.steps}; "
                          + (f"resume continues from step {saved}" if saved is not None else "resume starts it again"))
    finally:
        trackers.close()
    if result.status == HANDED_OVER:
        _hand_over(writer, run_dir, result, continue_as(run_dir), handover.to, stop_flag)  # returns if it could not
    signals.restore()  # the run is over: a late signal must not rewrite its outcome
    with SignalsWait():  # while the outcome is written, SIGTERM and Ctrl-C wait
        writer.finish(result.status, result.message, result.steps)
    return result


def _seconds_left(progress: dict) -> float | None:
    """The training time left at the worker's recent speed (its evaluations left out: a lower bound)."""
    per_step = recent_step_seconds(progress)
    return None if per_step is None else per_step * max(0, progress["total"] - progress["step"])


HAND_OVER_WHY = {"sleep": "other work started", "spin": "the machine is idle"}


def _hand_over(writer: RunWriter, run_dir: Path, result: RunResult, argv: list[str], to: str, stop_flag) -> None:
    """Go on with the run in a fresh program of this process whose idle
    threads do ``to`` (sleep, or spin; OpenMP reads its wait policy only when
    it starts): the state to resume from is saved, the lock is handed on, and
    a stop asked meanwhile is passed on as the run's stop file. If the
    program cannot start, the run ends here as stopped, resumable from that
    state."""
    block_stop_signals()
    if stop_flag.is_set():  # a signal came after the last step: the next program stops at once
        try:
            run_files(run_dir).stop.touch()
        except OSError:
            pass
    step = result.steps
    fd = writer.hand_over(step, f"{HAND_OVER_WHY[to]}: going on from step {step} in a process whose idle "
                                f"threads {to}")
    error = replace_process(argv, continuation_environment(os.environ, to), fd)
    result.status = "stopped"
    result.message = (f"stopped at step {step}: could not go on in a new process ({error}); "
                      f"resume continues from step {step}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return describe_os_error(exc, "the run folder")
    if isinstance(exc, (ConfigError, MachineError, RunFolderError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def train(config, on_event: Callable[[Event], None] | None = None, should_stop: Callable[[], bool] | None = None,
          *, save: bool = True, data=None, continue_as: Callable[[Path], list[str]] | None = None) -> RunResult:
    """Train a config in this process through the one driver. Raises
    ConfigError/DataError on bad input and MachineError when the machine
    cannot take the run, before anything is written; a NaN loss ends the run
    as 'failed', keeping its records. With ``save`` the run gets a folder,
    written as any worker writes it (``continue_as``: see execute); without,
    it is kept in memory only."""
    kind = kinds.of(config)
    admit(config.validate())
    if save:  # the runs folder can take the run before anything is written (a dataset cache included)
        prepare_root(config.runs_dir)
    trainer = kind.trainer(config, data)
    if save:
        return execute(create_run(trainer.config), on_event=on_event, should_stop=should_stop, trainer=trainer,
                       continue_as=continue_as)
    result = RunResult(trainer.config, "running", 0, learner=getattr(trainer, "learner", None), kind=kind)
    drive(trainer, result, on_event=on_event, should_stop=should_stop)
    (on_event or (lambda event: None))(result.done())
    return result
