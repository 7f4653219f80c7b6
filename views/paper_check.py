"""Paper check: the MSR paper's synthetic problems, run live.

Composes msr.synthetic (the runs, in a background thread) and
msr.viz.synthetic (the charts); holds no model logic.
"""
import streamlit as st

from msr.config import ConfigError
from msr.synthetic import (DEFAULT_CACHE, MODELS, PAPER_LATENT, PROBLEMS, SyntheticConfig, SyntheticJob,
                           conv_score)
from msr.viz.export import chart_png, figure_png, frame_csv
from msr.viz.synthetic import (history_chart, history_frame, matrix_frame, mse_bar_chart, results_frame,
                               symmetry_figure, symmetry_frame, weight_figure)

JOB_KEY = "paper_check_job"
SEEN_KEY = "paper_check_seen_status"
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

job: SyntheticJob | None = st.session_state.get(JOB_KEY)
busy = job is not None and job.state().status == "running"

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
    if busy:
        st.warning("A run is still going; stop it first.")
    else:
        try:
            job = SyntheticJob(problem, models, steps=int(steps), tasks_per_step=int(tasks_per_step),
                               eval_interval=int(eval_interval), test_tasks=int(test_tasks), seed=int(seed),
                               latent=int(latent) or None, inner_lr=float(inner_lr), outer_lr=float(outer_lr),
                               shots=int(shots), queries=20 - int(shots), n_tasks=int(n_tasks),
                               data_seed=int(data_seed), cache_dir=cache_dir.strip() or None, threads=1)
        except ConfigError as exc:
            st.error(str(exc))
        else:
            job.start()
            st.session_state[JOB_KEY] = job

if job is None:
    st.info("Pick a problem and the models, then **Run**. The models run one after another in the background; "
            "this page keeps responding and updates every second.")
    st.stop()


def latest_summaries(state) -> list[dict]:
    """The last evaluation of every model so far (final for finished ones)."""
    out = []
    for m, records in state.histories.items():
        if not records:
            continue
        r = records[-1]
        if m in state.results:
            out.append(state.results[m].summary())
        else:
            out.append({"problem": job.problem, "model": m, "latent": job.configs[m].resolved_latent(),
                        "steps": r["step"], "test_mse": r["test_mse"], "test_err": r["test_err"],
                        "conv_score": r["conv_score"], "seconds": r["seconds"]})
    return out


# The status this full run saw: the fragment reruns the whole page once when it changes.
status_seen = job.state().status
busy = status_seen == "running"
st.session_state[SEEN_KEY] = status_seen


@st.fragment(run_every=1.0 if busy else None)
def live_view() -> None:
    state = job.state()
    if state.status == "running":
        idx = job.models.index(state.current) + 1 if state.current in job.models else 0
        label = MODELS[state.current].label if state.current in MODELS else "loading the dataset"
        st.progress(min(state.step / max(state.total, 1), 1.0),
                    text=f"{label}: step {state.step} of {state.total} (model {idx} of {len(job.models)})")
        if st.button("Stop", key="paper_check_stop"):
            job.stop()
    elif state.status == "done":
        st.success(f"Finished {len(state.results)} model(s) on {job.problem}.")
    elif state.status == "stopped":
        st.warning("Stopped; the numbers below are from the last evaluation of each model.")
    elif state.status == "failed":
        st.error(state.message or "the run failed")

    summaries = latest_summaries(state)
    if summaries:
        frame = results_frame(summaries)
        bars = mse_bar_chart(frame, title=f"{job.problem}: test MSE after adaptation (95% interval)")
        st.altair_chart(bars)
        st.dataframe(frame[["label", "latent", "steps", "test_mse", "test_err", "conv_score", "seconds"]],
                     hide_index=True)
        hist = history_frame({m: h for m, h in state.histories.items() if h})
        left, right = st.columns(2)
        mse_chart, score_chart = history_chart(hist, "test_mse"), history_chart(hist, "conv_score")
        left.altair_chart(mse_chart)
        right.altair_chart(score_chart)
        d1, d2, d3, d4 = st.columns(4)
        d1.download_button("Results (CSV)", frame_csv(frame), f"paper_check_{job.problem}.csv", "text/csv")
        d2.download_button("History (CSV)", frame_csv(hist), f"paper_check_{job.problem}_history.csv", "text/csv")
        d3.download_button("Bar chart (PNG)", lambda: chart_png(bars), f"paper_check_{job.problem}_mse.png",
                           "image/png")
        d4.download_button("Conv score chart (PNG)", lambda: chart_png(score_chart),
                           f"paper_check_{job.problem}_conv_score.png", "image/png")
    if state.finished and st.session_state.get(SEEN_KEY) == "running":
        st.session_state[SEEN_KEY] = state.status
        st.rerun()  # once, so the weights view below shows the final state


live_view()

st.subheader("What the weights look like")
state = job.state()
have = [m for m in job.models if state.snapshots.get(m)]
if not have:
    st.caption("Weights appear here after the first evaluation.")
    st.stop()
default = "msr-fc" if "msr-fc" in have else have[0]
w1, w2 = st.columns([1, 2])
model = w1.selectbox("Model", have, index=have.index(default), format_func=lambda m: MODELS[m].label)
snaps = state.snapshots[model]
steps_seen = [s.step for s in snaps]
step = w2.select_slider("Evaluation step", options=steps_seen, value=steps_seen[-1]) if len(steps_seen) > 1 \
    else steps_seen[0]
snap = snaps[steps_seen.index(step)]
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
