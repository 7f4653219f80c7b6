"""Runs: every saved run, their curves side by side, downloads, deletion."""
from pathlib import Path

import streamlit as st

from msr.jobs import REGISTRY
from msr.runs import delete_run, list_runs
from msr.viz.export import frame_csv
from msr.viz.training import METRICS, metrics_frame, overlay_chart
from ui.run_picker import runs_dir
from ui.run_table import config_diff, run_label, runs_frame

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
damaged = [r for r in records if r.damaged]
if damaged:
    st.caption("Left out of the charts, as they cannot be read as runs (you may delete them below): "
               + "; ".join(f"`{r.run_id}`: {r.damaged}" for r in damaged) + ".")

valid = [r for r in records if not r.damaged]
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
st.subheader("Download or delete")
paths = [str(r.path) for r in records]
preferred = st.session_state.get("last_run_path")
if preferred not in paths:
    preferred = str(valid[0].path) if valid else paths[0]
rec = by_path[st.selectbox("Run", paths, index=paths.index(preferred),
                           key="runs.one", format_func=lambda p: run_label(by_path[p])
                           + (" · damaged" if by_path[p].damaged else ""))]
path = Path(rec.path)
if rec.damaged:
    st.warning(f"This folder is damaged: {rec.damaged}.")

row = st.container(horizontal=True)
config_file = path / "config.json"
if config_file.is_file():
    row.download_button("config.json", config_file.read_bytes(), file_name=f"{rec.run_id}-config.json",
                            mime="application/json", key="runs.dl.config", icon=":material/download:")
else:
    row.caption("No config.json.")
if rec.metrics:
    row.download_button("Metrics (CSV)", frame_csv(metrics_frame(rec.metrics)),
                            file_name=f"{rec.run_id}-metrics.csv", mime="text/csv", key="runs.dl.metrics",
                            icon=":material/download:")
else:
    row.caption("No metrics recorded.")
steps = rec.checkpoint_steps()
if steps:
    latest = path / "checkpoints" / f"step_{steps[-1]:06d}.pt"
    # read when clicked, not on every rerun
    row.download_button(f"Checkpoint, step {steps[-1]} (.pt)", lambda: latest.read_bytes(),
                            file_name=f"{rec.run_id}-step_{steps[-1]:06d}.pt",
                            mime="application/octet-stream", key="runs.dl.checkpoint", icon=":material/download:")
else:
    row.caption("No checkpoint saved.")

owner = REGISTRY.owner_of(path)
if owner is not None:
    st.info("This run is still training; stop it on the Train page before deleting it.")
elif st.session_state.get(CONFIRM_KEY) == str(path):
    st.warning(f"Delete `{rec.run_id}` and everything in it? This cannot be undone.")
    yes, no, _ = st.columns([1, 1, 6])
    if yes.button("Yes, delete", type="primary", key="runs.delete.yes"):
        delete_run(path)
        st.session_state.pop(CONFIRM_KEY, None)
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
