"""Paper check: the MSR paper's synthetic problems, run live.

Each model is an ordinary run (a worker process and a run folder, listed on
the Runs page); the models launched together form a group, which this page
shows. Composes msr.synthetic and msr.viz.synthetic; holds no model logic.
"""
import secrets
import time

import streamlit as st

from msr.config import ConfigError
from msr.runs import CheckpointError, list_runs, load_checkpoint, load_run, progress_of, request_stop
from msr.synthetic import (DEFAULT_CACHE, MODELS, PAPER_LATENT, PROBLEMS, SyntheticConfig, conv_score,
                           make_config, run_groups, snapshot_from_checkpoint, summarize)
from msr.worker import start_run
from ui.run_picker import runs_dir
from ui.run_view import REFRESH_SECONDS
from msr.viz.export import chart_png, figure_png, frame_csv
from msr.viz.synthetic import (history_chart, history_frame, matrix_frame, mse_bar_chart, results_frame,
                               symmetry_figure, symmetry_frame, weight_figure)

GROUP_KEY = "paper_check.group"
DEFAULTS = SyntheticConfig()
PROBLEM_TEXT = {
    "rank1": "rank1: every task is one random 3-tap convolution",
    "rank2": "rank2: locally connected, each position mixes 2 task filters",
    "rank5": "rank5: locally connected, each position mixes 5 task filters",
}

st.title("Paper check: does MSR-FC learn convolution?")
st.markdown(
    """
The paper's first experiment (Zhou, Knowles & Finn, ICLR 2021, §5.1). Each task maps 70 inputs to 68 outputs
with a bias-free linear map; a learner sees **one** support example, takes one SGD step and is scored by the
mean squared error on 19 queries. On **rank1** every task is a convolution with its own random 3-tap filter.
MAML-Conv has that structure built in; MAML-FC and MAML-LC do not. **MSR-FC** is a fully connected layer whose
weight is `W = U v`: if meta-learning works, `U` discovers the convolution's sharing pattern, a band of shifted
diagonals, and MSR-FC does as well as MAML-Conv.

The **convolution score** is the fraction of a weight's energy in its best-fitting 3-tap banded Toeplitz
matrix (1 = exactly a convolution, a random 68×70 matrix ≈ 0.0006). It is measured on the weight each model
applies to every test task after adaptation; for MSR-FC, the score of `U` itself (what it lets any `v`
reach) is shown too.
"""
)

with st.form("paper_check_form"):
    c1, c2, c3 = st.columns([1.2, 2, 0.8])
    problem = c1.selectbox("Problem", list(PROBLEMS), format_func=lambda p: PROBLEM_TEXT.get(p, p))
    models = c2.multiselect("Models", list(MODELS), default=list(MODELS), format_func=lambda m: MODELS[m].label)
    steps = c3.number_input("Outer steps", min_value=1, max_value=100_000, value=DEFAULTS.steps, step=100)
    with st.expander("Protocol (defaults are the authors')"):
        p1, p2, p3, p4 = st.columns(4)
        tasks_per_step = p1.number_input("Tasks per step", min_value=1, value=DEFAULTS.tasks_per_step)
        eval_interval = p2.number_input("Evaluate every", min_value=1, value=DEFAULTS.eval_interval)
        test_tasks = p3.number_input("Test tasks", min_value=2, value=DEFAULTS.test_tasks)
        seed = p4.number_input("Seed", min_value=0, value=DEFAULTS.seed)
        q1, q2, q3, q4 = st.columns(4)
        latent = q1.number_input("MSR-FC latent (0 = paper's)", min_value=0, value=0,
                                 help="The paper uses " + ", ".join(f"{k}: {v}" for k, v in PAPER_LATENT.items()))
        inner_lr = q2.number_input("Inner lr (initial)", min_value=0.0, value=DEFAULTS.inner_lr, format="%.4f")
        outer_lr = q3.number_input("Outer lr (Adam)", min_value=0.0, value=DEFAULTS.outer_lr, format="%.5f")
        shots = q4.number_input("Support examples", min_value=1, max_value=19, value=DEFAULTS.shots)
        r1, r2, r3 = st.columns([1, 1, 2])
        n_tasks = r1.number_input("Tasks in the dataset", min_value=10, value=DEFAULTS.n_tasks, step=1000)
        data_seed = r2.number_input("Dataset seed", min_value=0, value=DEFAULTS.data_seed)
        cache_dir = r3.text_input("Dataset cache folder", value=str(DEFAULT_CACHE))
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    group = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    try:
        if not models:
            raise ConfigError(f"pick at least one model; allowed: {', '.join(m.label for m in MODELS.values())}")
        # Every model's settings are checked before any run starts.
        configs = [make_config(problem, m, drop_latent=True, steps=int(steps), tasks_per_step=int(tasks_per_step),
                               eval_interval=int(eval_interval), test_tasks=int(test_tasks), seed=int(seed),
                               latent=int(latent) or None, inner_lr=float(inner_lr), outer_lr=float(outer_lr),
                               shots=int(shots), queries=20 - int(shots), n_tasks=int(n_tasks),
                               data_seed=int(data_seed), cache_dir=cache_dir.strip() or None, threads=1,
                               runs_dir=runs_dir(), group=group)
                   for m in models]
        for cfg in configs:
            start_run(cfg, "synthetic")
    except ConfigError as exc:
        st.error(f"Nothing was started: {exc}")
    else:
        st.session_state[GROUP_KEY] = group
        st.rerun()

groups = run_groups(list_runs(runs_dir(), kind="synthetic"))
if not groups:
    st.info("Pick a problem and the models, then **Run**. Each model trains in a process of its own; this page "
            "keeps responding, updates every couple of seconds, and finds the runs again after a reload.")
    st.stop()


def group_label(key: str) -> str:
    runs = groups[key]
    first = runs[0]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.created))
    states = {r.state for r in runs}
    state = "training" if states & {"starting", "running"} else " / ".join(sorted(states))
    names = ", ".join(MODELS[r.config.model].label for r in runs if r.config.model in MODELS)
    return f"{first.config.problem}: {names} · {when} · {state}"


keys = list(groups)
wanted = st.session_state.get(GROUP_KEY)
chosen = st.selectbox("Runs shown", keys, index=keys.index(wanted) if wanted in keys else 0,
                      format_func=group_label, key="paper_check.shown")
st.session_state[GROUP_KEY] = chosen
paths = [str(r.path) for r in groups[chosen]]
busy = any(r.active for r in groups[chosen])


def load_group():
    """The group's runs as their folders say now (one deleted meanwhile is left out)."""
    return [r for r in (load_run(p) for p in paths) if not r.damaged]


@st.fragment(run_every=REFRESH_SECONDS if busy else None)
def live_view() -> None:
    runs = load_group()
    if not runs:
        st.warning("The runs of this group are gone (deleted or damaged); see the Runs page.")
        return
    problem_ = runs[0].config.problem
    active = [r for r in runs if r.active]
    if active:
        progress = [progress_of(r) for r in active]
        for r, p in zip(active, progress):
            st.progress(p.fraction, text=f"{MODELS[r.config.model].label}: step {p.step} of {p.total}"
                        + (" (stopping…)" if p.stopping else ""))
        stopping = all(p.stopping for p in progress)
        if st.button("Stopping…" if stopping else "Stop these runs", key="paper_check_stop", disabled=stopping,
                     icon=":material/stop_circle:"):
            for r in active:
                request_stop(r.path)
    else:
        states = [r.state for r in runs]
        if all(s == "completed" for s in states):
            st.success(f"Finished {len(runs)} model(s) on {problem_}.")
        else:
            notes = "; ".join(f"{MODELS[r.config.model].label}: {r.state}"
                              + (f" ({r.status.get('message')})" if r.state == "failed" else "") for r in runs)
            (st.error if "failed" in states else st.warning)(
                f"{notes}. The numbers below are from each model's last evaluation; stopped or interrupted "
                "runs can be resumed from the Runs page.")

    summaries = [summarize(r.config, r.state, r.step, r.metrics) for r in runs if r.metrics]
    if summaries:
        frame = results_frame(summaries)
        bars = mse_bar_chart(frame, title=f"{problem_}: test MSE after adaptation (95% interval)")
        st.altair_chart(bars)
        st.dataframe(frame[["label", "latent", "steps", "test_mse", "test_err", "conv_score", "seconds"]],
                     hide_index=True)
        hist = history_frame({r.config.model: r.metrics for r in runs if r.metrics})
        left, right = st.columns(2)
        mse_chart, score_chart = history_chart(hist, "test_mse"), history_chart(hist, "conv_score")
        left.altair_chart(mse_chart)
        right.altair_chart(score_chart)
        d1, d2, d3, d4 = st.columns(4)
        d1.download_button("Results (CSV)", frame_csv(frame), f"paper_check_{problem_}.csv", "text/csv")
        d2.download_button("History (CSV)", frame_csv(hist), f"paper_check_{problem_}_history.csv", "text/csv")
        d3.download_button("Bar chart (PNG)", lambda: chart_png(bars), f"paper_check_{problem_}_mse.png",
                           "image/png")
        d4.download_button("Conv score chart (PNG)", lambda: chart_png(score_chart),
                           f"paper_check_{problem_}_conv_score.png", "image/png")
    if busy and not active:
        st.rerun()  # once, so the weights view below shows the final state


live_view()

st.subheader("What the weights look like")
runs = load_group()
have = [r for r in runs if r.checkpoint_steps()]
if not have:
    st.caption("Weights appear here after the first evaluation.")
    st.stop()
by_model = {r.config.model: r for r in have}
default = "msr-fc" if "msr-fc" in by_model else next(iter(by_model))
w1, w2 = st.columns([1, 2])
model = w1.selectbox("Model", list(by_model), index=list(by_model).index(default),
                     format_func=lambda m: MODELS[m].label)
rec = by_model[model]
steps_seen = rec.checkpoint_steps()
step = w2.select_slider("Evaluation step", options=steps_seen, value=steps_seen[-1]) if len(steps_seen) > 1 \
    else steps_seen[0]
try:
    snap = snapshot_from_checkpoint(load_checkpoint(rec.path, step))
except CheckpointError as exc:
    st.error(str(exc))
    st.stop()
if snap is None:
    st.caption("This checkpoint holds no weight pictures.")
    st.stop()
if busy:
    st.caption("Training is still going: move the slider or rerun the page to see newer steps.")

if snap.u is not None:
    n_cols = len(snap.u)
    shown = st.columns(4)[0].number_input("Columns of U to show", min_value=1, max_value=n_cols,
                                          value=min(n_cols, 12)) if n_cols > 1 else 1
    st.markdown(f"**U of MSR-FC at step {step}**: each latent column reshaped to 68×70, the weight one unit of "
                f"v adds. On rank1 each column turns into a shifted diagonal band as training goes. "
                f"Score of U: {conv_score(snap.u):.3f}.")
    u_fig = symmetry_figure(snap.u, step, max_columns=int(shown))
    st.pyplot(u_fig, clear_figure=False)
    e1, e2 = st.columns(2)
    e1.download_button("U (PNG)", lambda: figure_png(u_fig), f"msr_fc_U_step{step}.png", "image/png")
    e2.download_button("U (CSV)", lambda: frame_csv(symmetry_frame(snap.u)), f"msr_fc_U_step{step}.csv", "text/csv")

which = st.radio("Weight", ["adapted to the first test task", "meta-learned initial weight"], horizontal=True)
w = snap.w_task if which.startswith("adapted") else snap.w_init
label = MODELS[model].label
w_fig = weight_figure(w, f"{label} W, step {step}")
st.pyplot(w_fig, clear_figure=False)
f1, f2 = st.columns(2)
f1.download_button("W (PNG)", lambda: figure_png(w_fig), f"{model}_W_step{step}.png", "image/png")
f2.download_button("W (CSV)", lambda: frame_csv(matrix_frame(w)), f"{model}_W_step{step}.csv", "text/csv")
