"""Runs: every saved run, their curves side by side, stop, resume, downloads, deletion."""
from pathlib import Path

import streamlit as st

from msr import layout
from msr.config import ConfigError
from msr.runs import RunFolderError, check_run_file, delete_run, list_runs, progress_of, read_run_file
from msr.tables import config_diff, metrics_frame, run_label, runs_frame
from msr.viz.export import frame_csv
from msr.viz.training import METRICS, overlay_chart
from msr.worker import resume_run
from ui.live import live
from ui.run_picker import runs_dir
from ui.run_view import progress_text, stop_controls

CONFIRM_KEY = "runs.confirm_delete"
NOTICE_KEY = "runs.notice"

st.title("Runs")
folder = runs_dir()
head = st.columns([6, 1], vertical_alignment="bottom")
head[0].caption(f"Saved runs in `{folder}/`, newest first.")
head[1].button("Refresh", key="runs.refresh", help="Read the runs folder again (a live run keeps adding records).")

if NOTICE_KEY in st.session_state:
    st.success(st.session_state.pop(NOTICE_KEY))

records = list_runs(folder, include_damaged=True)
if not records:
    st.info("No runs yet. Start one on the **Train** page.")
    st.stop()


shown = {"records": records}  # what the table last drew, so the live check reads the folder once a tick


def table() -> None:
    shown["records"] = list_runs(folder, include_damaged=True)
    draw_table(shown["records"])


def still_training() -> bool:
    return any(r.active for r in shown["records"])


def draw_table(records) -> None:
    st.dataframe(
        runs_frame(records), hide_index=True, width="stretch",
        column_config={
            # pixel widths that fit a laptop screen beside the sidebar
            "run": st.column_config.TextColumn(width=250, help="The run's name, if it has one, and its folder."),
            "architecture": st.column_config.TextColumn(width=80),
            "angles": st.column_config.TextColumn(width=90),
            "steps": st.column_config.TextColumn(width=65, help="Steps done / steps asked for."),
            "test loss": st.column_config.NumberColumn(format="%.4f", width=70,
                                                       help="Mean query loss at the last evaluation."),
            "± 95%": st.column_config.NumberColumn(format="%.4f", width=60),
            "test accuracy": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0,
                                                             width=95),
            "status": st.column_config.TextColumn(width=100),
            "date": st.column_config.TextColumn(width=115),
        },
    )


# The table refreshes itself while a run trains (a full rerun once none does).
training = any(r.active for r in records)
live(table, 3.0 if training else None, still_active=still_training if training else None)
damaged = [r for r in records if r.damaged]
if damaged:
    st.caption("Left out of the charts, as they cannot be read as runs (you may delete them below): "
               + "; ".join(f"`{r.run_id}`: {r.damaged}" for r in damaged) + ".")

valid = [r for r in records if not r.damaged and r.kind == "mnist"]
by_path = {str(r.path): r for r in records}

# ------------------------------------------------------------------ compare
if valid:
    st.subheader("Compare")
    preferred = st.session_state.get("last_run_path")
    default = [preferred] if preferred in {str(r.path) for r in valid} else [str(valid[0].path)]
    chosen = st.multiselect("Runs to overlay", [str(r.path) for r in valid], default=default, key="runs.overlay",
                            format_func=lambda p: run_label(by_path[p]))
    metric = st.segmented_control("Metric", list(METRICS), default="test_loss", key="runs.metric",
                                  format_func=lambda m: METRICS[m][0], required=True) or "test_loss"
    if chosen:
        picked = [by_path[p] for p in chosen]
        st.altair_chart(overlay_chart({run_label(r): r.metrics for r in picked}, metric), width="stretch")
        if len(picked) > 1:
            diff = config_diff({run_label(r): r.config for r in picked})
            if diff.empty:
                st.caption("The selected runs have the same settings.")
            else:
                st.markdown("**How their settings differ**")
                st.dataframe(diff, hide_index=True, width="stretch")
    else:
        st.caption("Pick one or more runs to see their curves.")

# --------------------------------------------------------------- one run
st.subheader("Stop, resume, download or delete")
paths = [str(r.path) for r in records]
preferred = st.session_state.get("last_run_path")
if preferred not in paths:
    preferred = str(valid[0].path) if valid else paths[0]
rec = by_path[st.selectbox("Run", paths, index=paths.index(preferred),
                           key="runs.one", format_func=lambda p: run_label(by_path[p])
                           + (" · damaged" if by_path[p].damaged else f" · {by_path[p].state}"))]
path = Path(rec.path)
if rec.damaged:
    st.warning(f"This folder is damaged: {rec.damaged}.")

if rec.active:
    p = progress_of(rec)
    bar, side = st.columns([6, 1], vertical_alignment="bottom")
    bar.progress(p.fraction, text=progress_text(p))
    with side:
        stop_controls(str(path), p, key=f"runs.{rec.run_id}")
elif rec.resumable:
    why = {"stopped": "It was stopped", "interrupted": "Its worker process is gone (killed, or the machine "
           "restarted)", "failed": f"It failed ({rec.status.get('message') or 'unknown error'})"}[rec.state]
    st.info(f"{why} at step {rec.step} of {rec.total}. Resume continues it from its last evaluation to its "
            "planned steps; the records after that evaluation are replaced.")
    if st.button("Resume", key="runs.resume", icon=":material/play_arrow:", type="primary"):
        try:
            resume_run(path)
        except (ConfigError, OSError) as exc:  # a memory refusal too
            st.error(f"Cannot resume: {exc}")
        else:
            st.session_state["last_run_path"] = str(path)
            st.session_state[NOTICE_KEY] = f"Resumed {rec.run_id}; it trains in the background (see the sidebar)."
            st.rerun()


def download(label: str, relative: str, file_name: str, mime: str, key: str) -> None:
    """Only the run's own regular files are offered, read when clicked."""
    try:
        check_run_file(path, relative)
    except RunFolderError:
        row.caption(f"No {label}.")
        return
    row.download_button(label, lambda: read_run_file(path, relative), file_name=file_name, mime=mime, key=key,
                        icon=":material/download:")


row = st.container(horizontal=True)
download(layout.CONFIG, layout.CONFIG, f"{rec.run_id}-config.json", "application/json", "runs.dl.config")
if not rec.damaged and rec.kind == "mnist" and rec.metrics:
    row.download_button("Metrics (CSV)", frame_csv(metrics_frame(rec.metrics)),
                        file_name=f"{rec.run_id}-metrics.csv", mime="text/csv", key="runs.dl.metrics",
                        icon=":material/download:")
download(layout.METRICS, layout.METRICS, f"{rec.run_id}-metrics.jsonl", "application/json", "runs.dl.jsonl")
steps = rec.checkpoint_steps()
if steps:
    download(f"Checkpoint, step {steps[-1]} (.pt)", f"{layout.CHECKPOINTS}/{layout.checkpoint_name(steps[-1])}",
             f"{rec.run_id}-{layout.checkpoint_name(steps[-1])}", "application/octet-stream", "runs.dl.checkpoint")
else:
    row.caption("No checkpoint saved.")

if rec.active:
    st.info("This run is still training; stop it before deleting it.")
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
            if st.session_state.get("last_run_path") == str(path):
                st.session_state.pop("last_run_path")
            st.session_state[NOTICE_KEY] = f"Deleted {rec.run_id}."
            st.rerun()
    if no.button("Cancel", key="runs.delete.no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()
elif st.button("Delete this run…", key="runs.delete"):
    st.session_state[CONFIRM_KEY] = str(path)
    st.rerun()
