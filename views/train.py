"""Train: fill in a run's settings, start it, watch it learn, stop it."""
import streamlit as st

from msr.config import ConfigError
from msr.runs import active_runs, load_run
from msr.worker import start_run
from ui import run_view, train_form
from ui.run_picker import runs_dir

st.title("Train")
st.caption("Meta-train a model on Rotated MNIST. The run trains in a process of its own: you may switch pages, "
           "reload, close the tab or restart the app, and it still finishes and is saved.")

live_slot = st.container()  # the run being followed goes above the form, where a viewer looks first
train_form.render_presets()
form = train_form.render_form()
training = active_runs(runs_dir())

if form.submitted:
    try:
        config = train_form.build_config(form.values, runs_dir())
        with st.spinner("Checking the data…"):
            train_form.load_data(config)
        path = start_run(config)
    except ConfigError as exc:  # every bad field, tagged; or the run's own check (memory, runs folder)
        general = [msg for field, msg in exc.errors.items() if field not in form.slots]
        for field, msg in exc.errors.items():
            if field in form.slots:
                form.slots[field].error(msg, icon="⚠️")
        marked = len(exc.errors) - len(general)
        if marked:
            general.append(f"Nothing was started: fix the field{'s' if marked > 1 else ''} marked above.")
        else:
            general = [f"Nothing was started: {' '.join(general)}"]
        form.general.error("\n\n".join(general), icon="⚠️")
    else:
        st.session_state["last_run_path"] = str(path)
        st.rerun()
elif training:
    form.general.caption(f"{len(training)} run(s) training on this machine now; a new one shares the CPU with them.")

st.caption(f"Runs are saved under `{runs_dir()}/`.")
followed = st.session_state.get("last_run_path")
if followed and load_run(followed, with_metrics=False).damaged:
    followed = None
if not followed and training:
    followed = str(training[0].path)
if followed:
    with live_slot:
        run_view.show_run(followed, key="train.run")
        others = [r for r in training if str(r.path) != followed]
        if others:
            st.caption("Also training: " + ", ".join(f"`{r.run_id}`" for r in others)
                       + " (see the sidebar, or open them on the Runs page).")
        st.divider()
