"""Train: fill in a run's settings, start it, watch it learn, stop it.

While a run is followed, the page is that run: the form folds away after
Start, so the live view is what a room sees, and comes back with "New run".
"""
from __future__ import annotations

import streamlit as st

from msr.core.errors import ConfigError
from msr.kinds import MNIST
from msr.store.progress import run_estimate
from msr.store.reader import active_runs, list_runs, load_run
from ui import run_view, train_form
from ui.run_view import duration
from ui.run_picker import FOLLOWED_KEY, RUN_PARAM, runs_dir



def followed_run(training: list) -> str | None:
    """The run the page follows: a linked one (``?run=``) on a first visit,
    the one this session started, else the first Rotated MNIST run training
    (Paper check's runs are shown there)."""
    wanted = st.query_params.get(RUN_PARAM)
    linked = next((r for r in list_runs(runs_dir(), kind=MNIST) if r.run_id == wanted), None) if wanted else None
    if linked is not None and FOLLOWED_KEY not in st.session_state:
        st.session_state[FOLLOWED_KEY] = str(linked.path)  # a link to a run opens on it
    followed = st.session_state.get(FOLLOWED_KEY)
    if followed:
        shown = load_run(followed, with_metrics=False)
        if shown.damaged or shown.kind is not MNIST:
            followed = None
    if not followed and training:
        followed = str(training[0].path)
    return followed


def show_form() -> None:
    st.session_state[train_form.SHOW_FORM_KEY] = True


def follow_only() -> None:
    st.session_state[train_form.SHOW_FORM_KEY] = False


def new_run_from(path: str) -> None:
    train_form.request_prefill(load_run(path, with_metrics=False).config)


def run_page(followed: str, training: list) -> None:
    """The followed run, with New run and links into it (no page title: the run's name is one)."""
    rec = load_run(followed, with_metrics=False)
    st.query_params[RUN_PARAM] = rec.run_id  # before the run is drawn: the address names it as soon as it shows
    run_view.show_run(followed, key="train.run")
    buttons = st.container(horizontal=True)
    buttons.button("New run", icon=":material/add:", on_click=show_form, key="train.new",
                   type="secondary" if rec.active else "primary",
                   help="Show the settings form for another run; this one keeps training.")
    if rec.kind is MNIST and rec.config is not None:
        buttons.button("New run from these settings", icon=":material/content_copy:", key="train.again",
                       on_click=new_run_from, args=(followed,),
                       help="The form, filled with this run's settings, ready to change one and start.")
        for page_file, title in (("views/errors.py", "Errors"), ("views/weights.py", "Weights")):
            buttons.page_link(page_file, label=f"Look inside: {title}", icon=":material/visibility:",
                              query_params={RUN_PARAM: rec.run_id})
    others = [r for r in training if str(r.path) != followed]
    if others:
        st.caption("Also training: " + ", ".join(f"`{r.name or r.run_id}`" for r in others)
                   + " (see the sidebar, or the Runs page).")


LONG_RUN_SECONDS = 180  # a run expected to take longer is started only once the person confirms it
PENDING_KEY = "train.long_run"  # the values of a long run waiting for that confirmation


def estimate_line(values: dict) -> tuple[str | None, float | None]:
    """What the settings would take here, and the seconds (None: not known yet)."""
    try:
        config = train_form.build_config(values, runs_dir())
    except ConfigError:
        return None, None
    est = run_estimate(config, list_runs(runs_dir(), kind=MNIST))
    if est is None:
        return (f"No completed {config.model_label()} run here yet, so no time estimate.", None)
    start = f", {est.startup:.0f} s of it to start" if est.startup is not None else ""
    return (f"About **{duration(est.seconds)}** here{start} (from the speed of {est.runs} completed "
            f"{config.model_label()} run{'s' if est.runs > 1 else ''} here, scaled to these settings' work per "
            "step; other work on the machine slows it).", est.seconds)


def start(values: dict, form) -> None:
    """Launch the run and show it, or say in the form what is wrong."""
    try:
        train_form.launch(values, runs_dir())  # the form folds away: the page is the new run now
    except ConfigError as exc:  # every bad field, tagged; or what the machine lacks (memory, GPU, disk)
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
        st.session_state.pop(PENDING_KEY, None)
        st.rerun()


def form_page(followed: str | None, training: list) -> None:
    """The settings form; Start launches a run and the page becomes it (a long one once confirmed)."""
    if RUN_PARAM in st.query_params:
        del st.query_params[RUN_PARAM]
    st.title("Train")
    st.caption("Meta-train a model on Rotated MNIST. The run trains in a process of its own: switch pages, reload or "
               "restart the app, and it still finishes and is saved.")
    if followed:
        st.button("Back to the run", icon=":material/arrow_back:", on_click=follow_only, key="train.back")
    train_form.render_presets()
    form = train_form.render_form()
    line, seconds = estimate_line(form.values)
    pending = st.session_state.get(PENDING_KEY)
    if form.submitted and seconds is not None and seconds > LONG_RUN_SECONDS and pending != form.values:
        st.session_state[PENDING_KEY] = dict(form.values)  # asked once; Start anyway (or Start again) goes on
        pending = form.values
    elif form.submitted:
        start(form.values, form)
    if pending is not None and pending == form.values and seconds is not None and seconds > LONG_RUN_SECONDS:
        form.general.warning(f"This run would take about {duration(seconds)} here, and Stop waits for the step "
                             "under way. Start it anyway, or make it smaller (fewer steps, tasks, angles or "
                             "channels).", icon=":material/schedule:")
        if st.button("Start anyway", key="train.start_anyway", type="primary", icon=":material/play_arrow:"):
            start(pending, form)
    elif line and not form.submitted:
        form.general.caption(line + (f" {len(training)} run(s) training on this machine now; a new one shares "
                                     "the CPU with them." if training else ""))
    st.caption(f"Runs are saved under `{runs_dir()}/`.")


def page() -> None:
    training = [r for r in active_runs(runs_dir()) if r.kind is MNIST]  # Paper check's runs are shown there
    followed = followed_run(training)
    if followed and not st.session_state.get(train_form.SHOW_FORM_KEY):
        run_page(followed, training)
    else:
        form_page(followed, training)


page()
