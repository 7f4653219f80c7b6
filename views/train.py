"""Train: fill in a run's settings, start it, watch it learn, stop it."""
import streamlit as st

from msr.config import ConfigError
from msr.jobs import start_job
from ui import job_view, train_form
from ui.run_picker import runs_dir

st.title("Train")
st.caption("Meta-train a model on Rotated MNIST. The run goes on in the background: you may switch pages, "
           "or close the tab, and it still finishes and is saved.")

jobs = job_view.session_jobs()
running = [j for j in jobs if not j.done]

train_form.render_presets()
form = train_form.render_form(
    disabled_reason="A run is going; stop it or wait for it to end before starting another." if running else None)

if form.submitted and not running:
    try:
        config = train_form.build_config(form.values, runs_dir())
        with st.spinner("Loading the data…"):
            data = train_form.load_data(config)
        job = start_job(config, data)
    except train_form.FormError as exc:
        general = [msg for field, msg in exc.errors.items() if field not in form.slots]
        for field, msg in exc.errors.items():
            if field in form.slots:
                form.slots[field].error(msg, icon="⚠️")
        marked = len(exc.errors) - len(general)
        general.append("Nothing was started" + (f": fix the field{'s' if marked > 1 else ''} marked above."
                                                if marked else "."))
        form.general.error("\n\n".join(general), icon="⚠️")
    except ConfigError as exc:  # the job's own check; the form's should have caught it
        form.general.error(f"Nothing was started: {exc}", icon="⚠️")
    else:
        job.wait_started(timeout=10)
        job_view.remember(job)
        st.rerun()  # redraw with Start disabled while the run goes
elif form.submitted:
    form.general.warning("A run is already going; stop it before starting another.")

st.caption(f"Runs are saved under `{runs_dir()}/`.")
if jobs:
    job_view.show_job(jobs[-1])
    job_view.render_history(jobs[:-1])
