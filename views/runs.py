"""Runs: every saved run, their curves side by side, names and notes, stop, resume, downloads, deletion."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from msr.analysis.tables import config_diff, metrics_frame, runs_frame, short_names
from msr.core.errors import ConfigError, MachineError
from msr.kinds import MNIST
from msr.runner.launch import resume_run
from msr.store import layout
from msr.store.access import check_run_file, delete_run, read_run_file
from msr.store.annotations import MAX_NAME, MAX_NOTES, distinct_colors, write_annotations
from msr.store.files import Damaged, RunFolderError
from msr.store.progress import progress_of
from msr.store.reader import METRICS_CACHE, RunRecord, list_runs, load_run
from msr.viz.export import frame_csv
from msr.viz.training import METRICS, overlay_chart
from ui import present, train_form
from ui.downloads import download
from ui.live import live, run_training
from ui.run_picker import CHOSEN_KEY, FOLLOWED_KEY, RUN_PARAM, follow, runs_dir
from ui.run_view import progress_text, stop_controls

CONFIRM_KEY = "runs.confirm_delete"
NOTICE_KEY = "runs.notice"
PICK_KEY = "runs.one"
TABLE_REFRESH_SECONDS = 3.0  # while a run trains: its step and time left move
WATCH_SECONDS = 6.0  # otherwise: how soon a run started elsewhere (command line, another tab) shows up
CHART_REFRESH_SECONDS = 10.0  # redrawing charts costs the browser most; the run shares the CPU with it
COMPARED = MNIST  # the kind whose runs overlay and compare here, and that the Train form starts again

TABLE_CONFIG = {
    "run": st.column_config.TextColumn("Run", help="The run's name (rename it below), else its folder."),
    # widths fixed where a value grows while the table is on screen (a step count, the time left)
    "steps": st.column_config.TextColumn("Steps", width=105, help="Steps done / steps asked for."),
    "time left": st.column_config.TextColumn("Time left", width=135, help="While it trains, from its speed so far."),
    "test loss": st.column_config.NumberColumn("Test loss", format="%.4f",
                                               help="Mean query loss at the last evaluation."),
    "± 95%": st.column_config.NumberColumn("± 95%", format="%.4f", help="Half-width of the test loss's 95% "
                                                                         "interval."),
    "test accuracy": st.column_config.ProgressColumn("Test accuracy", format="percent", min_value=0.0,
                                                     max_value=1.0, width=110),
    "status": st.column_config.TextColumn("Status"),
    "started": st.column_config.TextColumn("Started"),
    "architecture": st.column_config.TextColumn("Architecture"),
    "angles": st.column_config.TextColumn("Angles"),
    "notes": st.column_config.TextColumn("Notes", width=300,
                                         help="The start of the run's notes (choose the run below to read or edit "
                                              "them)."),
    "folder": st.column_config.TextColumn("Folder", width=230),
}


@dataclass
class Listed:
    """The runs folder as this draw read it."""
    records: list[RunRecord]

    def __post_init__(self):
        self.compared = [r for r in self.records if not r.damaged and r.kind is COMPARED]
        self.by_path = {str(r.path): r for r in self.records}
        self.names = short_names(self.records)
        self.paths = [str(r.path) for r in self.records]

    def default_path(self) -> str:
        return str(self.compared[0].path) if self.compared else self.paths[0]


def training_ids(recs) -> set[str]:
    return {r.run_id for r in recs if r.active}


def draw_table(recs) -> None:
    """The time left only while something trains: a column of blanks otherwise."""
    frame = runs_frame(recs)
    shown_columns = [c for c in frame.columns if c != "time left" or any(r.active for r in recs)]
    present.table(frame, hide_index=True, width="stretch", column_config=TABLE_CONFIG, column_order=shown_columns,
                  placeholder="–")


def run_table(folder: str, records: list[RunRecord]) -> None:
    """The table of runs, redrawn while runs train; once a run starts or ends, the whole page reruns, so its
    choices and buttons follow."""
    shown = {"records": records}  # what the last tick read, so the check below reads the folder once a tick
    training_at_draw = training_ids(records)

    def same_runs_training() -> bool:
        return training_ids(shown["records"]) == training_at_draw

    def read_folder() -> None:
        shown["records"] = list_runs(folder, include_damaged=True)

    def table() -> None:
        read_folder()
        draw_table(shown["records"])

    if training_at_draw:
        live(table, TABLE_REFRESH_SECONDS, still_active=same_runs_training)
    else:
        draw_table(records)
        live(read_folder, WATCH_SECONDS, still_active=same_runs_training)  # draws nothing until a run starts


def pick_default(listed: Listed) -> None:
    """The one run the links and buttons act on: on the first draw a link's ?run= wins, then the run this
    session used last; a run deleted meanwhile gives way to the newest."""
    if PICK_KEY not in st.session_state:
        linked = next((str(r.path) for r in listed.records if r.run_id == st.query_params.get(RUN_PARAM)), None)
        preferred = linked or st.session_state.get(CHOSEN_KEY) or st.session_state.get(FOLLOWED_KEY)
        st.session_state[PICK_KEY] = preferred if preferred in listed.paths else listed.default_path()
    elif st.session_state[PICK_KEY] not in listed.paths:
        st.session_state[PICK_KEY] = listed.default_path()


def compare(listed: Listed) -> None:
    """Curves of several runs overlaid, and how their settings differ."""
    valid, by_path, names = listed.compared, listed.by_path, listed.names
    st.subheader("Compare")
    picked_path = st.session_state[PICK_KEY]
    default = [picked_path] if picked_path in {str(r.path) for r in valid} else [str(valid[0].path)]
    chosen = st.multiselect("Runs to overlay", [str(r.path) for r in valid], default=default, key="runs.overlay",
                            format_func=lambda p: names[by_path[p].run_id])
    metric = st.segmented_control("Metric", list(METRICS), default="test_loss", key="runs.metric",
                                  format_func=lambda m: METRICS[m][0].capitalize(), required=True) or "test_loss"
    controls = st.columns([3, 2], vertical_alignment="bottom", gap="large")
    smoothing = controls[0].slider(
        "Smoothing", 0.0, 0.99, 0.0, 0.01, key="runs.smoothing",
        help="A moving average whose weights fall with the steps between evaluations (as W&B smooths by "
             "default): 0 draws the evaluations as they are; near 1 smooths the most. The raw curve stays faint "
             "underneath.")
    axes = controls[1].container(horizontal=True, gap="medium")
    log_y = metric.endswith("loss") and axes.toggle("Log scale", key="runs.log_y", persist_state="page",
                                                    help="A logarithmic loss axis: the late, small changes show "
                                                         "as well as the first drop.")
    log_x = axes.toggle("Log steps", key="runs.log_x",
                        help="A logarithmic step axis, to see the first steps in detail (step 0 is left out).")
    if not chosen:
        st.caption("Pick one or more runs to see their curves.")
        return
    picked = [by_path[p] for p in chosen]

    def overlay() -> None:
        try:
            curves = {names[r.run_id]: METRICS_CACHE.read(r.path) for r in picked}
        except Damaged as exc:
            st.error(f"A run's records cannot be read: {exc}.")
            return
        colors = dict(zip((names[r.run_id] for r in picked), distinct_colors([r.color for r in picked])))
        st.caption("Point at the chart to read every run's value at the nearest step.")
        present.chart(overlay_chart(curves, metric, colors=colors, smoothing=smoothing, log_y=log_y,
                                    log_x=log_x))

    live(overlay, CHART_REFRESH_SECONDS if any(r.active for r in picked) else None)
    if len(picked) > 1:
        diff = config_diff({names[r.run_id]: r.config for r in picked})
        if diff.empty:
            st.caption("The selected runs have the same settings.")
        else:
            st.markdown("**How their settings differ**")
            present.table(diff.drop(columns="field"), hide_index=True, width="stretch",
                          column_config={"setting": st.column_config.TextColumn("Setting")})


def annotations(rec: RunRecord, path: Path) -> None:
    """The run's notes, and a form to rename it or write them."""
    if rec.annotations.notes.strip():
        with st.container(border=True):
            st.markdown(rec.annotations.notes.replace("\n", "  \n"))  # their own words, line breaks kept
    with st.expander("Rename, or write notes"):
        with st.form(f"runs.annotate.{rec.run_id}", border=False):
            new_name = st.text_input("Name", rec.name, max_chars=MAX_NAME, key=f"runs.name.{rec.run_id}",
                                     help="Shown in tables, legends and run lists instead of the folder name.")
            new_notes = st.text_area("Notes", rec.annotations.notes, max_chars=MAX_NOTES, height=120,
                                     key=f"runs.notes.{rec.run_id}",
                                     placeholder="What this run tries, what it showed…")
            if st.form_submit_button("Save", icon=":material/save:", key="runs.save"):
                try:
                    write_annotations(path, name=new_name, notes=new_notes)
                except OSError as exc:
                    st.error(f"Name and notes not saved: {exc.strerror or exc}. Your text is still in the form.")
                else:
                    st.session_state[NOTICE_KEY] = f"Saved the name and notes of {rec.run_id}."
                    st.rerun()


def controls(rec: RunRecord, path: Path) -> None:
    """Stop while it trains; Resume when it stopped, was interrupted or failed; New run from its settings."""
    if rec.active:
        def progress() -> None:
            current = progress_of(load_run(path, with_metrics=False))
            bar, side = st.columns([6, 1], vertical_alignment="bottom")
            bar.progress(current.fraction, text=progress_text(current))
            with side:
                stop_controls(str(path), current, key=f"runs.{rec.run_id}")

        live(progress, TABLE_REFRESH_SECONDS, still_active=run_training(path))
    elif rec.resumable:
        why = {"stopped": "It was stopped", "interrupted": "Its worker process is gone (killed, or the machine "
               "restarted)", "failed": f"It failed ({rec.status.get('message') or 'unknown error'})"}[rec.state]
        st.info(f"{why} at step {rec.step} of {rec.total}. {rec.resume_text()} to its planned steps; the records "
                "after that step are replaced.")
        if st.button("Resume", key="runs.resume", icon=":material/play_arrow:", type="primary"):
            try:
                resume_run(path)
            except (ConfigError, MachineError, RunFolderError, OSError) as exc:  # a memory refusal too
                st.error(f"Cannot resume: {exc}")
            else:
                follow(path)
                st.session_state[NOTICE_KEY] = f"Resumed {rec.run_id}; it trains in the background (see the sidebar)."
                st.rerun()
    if not rec.damaged and rec.kind is COMPARED and rec.config is not None:
        if st.button("New run from these settings", key="runs.again", icon=":material/content_copy:",
                     help="Open the Train page with its form filled with this run's settings, ready to change one."):
            train_form.request_prefill(rec.config)
            st.switch_page("views/train.py")


def downloads(rec: RunRecord, path: Path) -> None:
    """Only the run's own regular files are offered, read when clicked."""
    row = st.container(horizontal=True)

    def run_file(label: str, relative: str, file_name: str, mime: str, key: str) -> None:
        try:
            check_run_file(path, relative)
        except RunFolderError:
            row.caption(f"No {label.lower()}.")
            return
        download(label, lambda: read_run_file(path, relative), f"{rec.run_id}-{file_name}", mime, key=key,
                 where=row)

    run_file("Settings (JSON)", layout.CONFIG, "config.json", "application/json", "runs.dl.config")
    if not rec.damaged and rec.kind is COMPARED and rec.metrics:
        download("Metrics (CSV)", lambda: frame_csv(metrics_frame(rec.metrics)), f"{rec.run_id}-metrics.csv",
                 "text/csv", key="runs.dl.metrics", where=row)
    run_file("Metrics (JSON lines)", layout.METRICS, "metrics.jsonl", "application/json", "runs.dl.jsonl")
    steps = rec.checkpoint_steps()
    if steps:
        run_file(f"Checkpoint, step {steps[-1]} (.pt)", f"{layout.CHECKPOINTS}/{layout.checkpoint_name(steps[-1])}",
                 layout.checkpoint_name(steps[-1]), "application/octet-stream", "runs.dl.checkpoint")
    else:
        row.caption("No checkpoint saved.")


def deletion(rec: RunRecord, path: Path) -> None:
    """Delete, after a confirmation; never while it trains."""
    if rec.active:
        st.caption("This run is still training; stop it before deleting it.")
    elif st.session_state.get(CONFIRM_KEY) == str(path):
        st.warning(f"Delete `{rec.run_id}` and everything in it? This cannot be undone.")
        yes, no, _ = st.columns([1, 1, 6])
        if yes.button("Yes, delete", type="primary", key="runs.delete.yes"):
            st.session_state.pop(CONFIRM_KEY, None)
            try:
                delete_run(path)
            except (RunFolderError, OSError) as exc:
                st.error(f"Not deleted: {exc}")
            else:
                for key in (FOLLOWED_KEY, CHOSEN_KEY):  # a deleted run is followed no more
                    if st.session_state.get(key) == str(path):
                        st.session_state.pop(key)
                st.session_state[NOTICE_KEY] = f"Deleted {rec.run_id}."
                st.rerun()
        if no.button("Cancel", key="runs.delete.no"):
            st.session_state.pop(CONFIRM_KEY, None)
            st.rerun()
    elif st.button("Delete this run…", key="runs.delete"):
        st.session_state[CONFIRM_KEY] = str(path)
        st.rerun()


def one_run(listed: Listed) -> None:
    """The one run picked: its notes, controls, downloads and deletion."""
    by_path, names = listed.by_path, listed.names
    st.subheader("One run")
    rec = by_path[st.selectbox("Run", listed.paths, key=PICK_KEY, format_func=lambda p: names[by_path[p].run_id]
                               + (" · damaged" if by_path[p].damaged else f" · {by_path[p].state}"))]
    st.query_params[RUN_PARAM] = rec.run_id
    if not rec.damaged:
        st.session_state[CHOSEN_KEY] = str(rec.path)  # the run the next page opens on
    path = Path(rec.path)
    if rec.damaged:
        st.warning(f"This folder is damaged: {rec.damaged}.")
    else:
        annotations(rec, path)
    controls(rec, path)
    downloads(rec, path)
    deletion(rec, path)


def page() -> None:
    st.title("Runs")
    folder = runs_dir()
    # Refresh on the left: on the right the table's own toolbar (search, download, full screen) would cover it.
    head = st.columns([1, 7], vertical_alignment="center")
    head[0].button("Refresh", key="runs.refresh", help="Read the runs folder again.", icon=":material/refresh:")
    head[1].caption(f"Saved runs in `{folder}/`, newest first. Steps and time left refresh on their own while a "
                    "run trains.")
    if NOTICE_KEY in st.session_state:
        st.success(st.session_state.pop(NOTICE_KEY))
    records = list_runs(folder, include_damaged=True)
    if not records:
        st.info("No runs yet. Start one on the **Train** page.")
        st.stop()
    run_table(folder, records)
    damaged = [r for r in records if r.damaged]
    if damaged:
        st.caption("Left out of the charts, as they cannot be read as runs (you may delete them below): "
                   + "; ".join(f"`{r.run_id}`: {r.damaged}" for r in damaged) + ".")
    listed = Listed(records)
    pick_default(listed)
    if listed.compared:
        compare(listed)
    one_run(listed)


page()
