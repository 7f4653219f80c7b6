"""Paper check: the MSR paper's synthetic problems, run live.

Each model is an ordinary run (a worker process and a run folder, listed on
the Runs page); the models launched together form a group, which this page
shows. Composes msr.synthetic and msr.viz.synthetic; holds no model logic.
"""
import secrets
import time

import streamlit as st

from msr.config import ConfigError
from msr.runs import CheckpointError, list_runs, load_run, progress_of, request_stop
from msr.settings import spec
from msr.synthetic.config import SyntheticConfig, make_config
from msr.synthetic.data import ALL_PROBLEMS, EXAMPLES_PER_TASK, default_tasks
from msr.synthetic.models import MODEL_ORDER, model_label, models_for, paper_latent
from msr.synthetic.rotation import FIELDS, GROUPS
from msr.synthetic.run import run_groups, summarize
from msr.synthetic.score import conv_score
from msr.tables import LENS_COLUMNS, history_frame, lens_frame, lens_history_frame, results_frame
from msr.viz.export import chart_png, figure_png, frame_csv
from msr.viz.synthetic import (ARRANGEMENTS, filter_bank_figure, filter_rotation, filters_frame, history_chart,
                               lens_chart, matrix_frame, mse_bar_chart, symmetry_figure, symmetry_frame,
                               weight_figure)
from msr.worker import start_run
from ui.live import live
from ui.page_cache import synthetic_snapshot
from ui.run_picker import runs_dir
from ui.run_view import REFRESH_SECONDS

GROUP_KEY = "paper_check.group"
PROBLEM_KEY = "paper_check.problem"
SHOWN_KEY = "paper_check.shown"
DEFAULTS = SyntheticConfig()
PROBLEM_TEXT = {
    "rank1": "rank1: every task is one random 3-tap convolution",
    "rank2": "rank2: locally connected, each position mixes 2 task filters",
    "rank5": "rank5: locally connected, each position mixes 5 task filters",
    "rot4": "rot4: each task is a C4 lifting conv (3 random filters × 4 rotations)",
    "rot8": "rot8: each task is a C8 lifting conv (3 steerable filters × 8 rotations)",
    "rot8_flip": "rot8_flip: as rot8 plus mirror images (D8: 3 filters × 16)",
}
# Filter pictures side by side per row, by group order: narrower columns would shrink their labels.
PICTURES_PER_ROW = {4: 3, 8: 2}
# Short table headers (the full wording is each column's help), so the table fits at 1280 px.
LENS_HEADERS = {"equiv_90": "equiv. 90°", "equiv_45": "equiv. 45°", "orbit_C4": "orbit 90°", "orbit_C8": "orbit 45°",
                "u_equiv_90": "U: equiv. 90°", "u_orbit": "U: orbit 90°"}

INTRO_1D = """
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

INTRO_2D = """
The paper's rotation experiment (Zhou, Knowles & Finn, ICLR 2021, §5.1). Every task is one bias-free 3×3
convolution from a 32×32 image to C = 3·|G| channels: 3 random filters (*fields*), each copied under every
element of a group G (C4 on rot4, C8 on rot8, D8 with mirror images on rot8_flip), so the data are made by a group
convolution. The question: does **MSR-Conv** learn this rotation sharing from the data alone, as MSR-FC learned
convolution on rank1? MAML-Conv shares across positions but not across rotations. The authors' MSR-Conv
factors its symmetry matrix as **U = A⊗B⊗C**: one 9×9 spatial factor C is shared by every output channel, so it
cannot tie output channels together as rotated copies of one filter. A **dense U** over the whole kernel,
`vec(W) = U v`, can: by Proposition 1 of the paper it represents the group convolution's sharing exactly.

**Equivariance error** (at 90°, and 45° on rot8 / rot8_flip): rotate the input and compare with the rotated
output, channels allowed to trade places; 0 for an exact group convolution, about 0.5–0.8 for random filters
(45° is interpolated, so even an exact layer keeps a little error there). **Orbit score**: how well the filters
split into rotated copies of one another (1 = exactly, ≈0 = random). Both read the layers adapted to the first
test tasks and, for the MSR models, the layers U generates from random v (what U lets adaptation reach).
"""


def in_model_order(runs: list) -> list:
    """1-D models, then MAML-Conv, MSR-Conv, dense MSR-Conv: the order of every chart."""
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    return sorted(runs, key=lambda r: rank.get(r.config.model, len(rank)))


groups = {k: in_model_order(v) for k, v in run_groups(list_runs(runs_dir(), kind="synthetic")).items()}


def group_problem(key: str | None) -> str | None:
    return groups[key][0].config.problem if key in groups else None


def problem_changed() -> None:
    """Show the newest group of the newly chosen problem, if there is one."""
    newest = next((k for k in groups if group_problem(k) == st.session_state[PROBLEM_KEY]), None)
    if newest is not None:
        st.session_state[GROUP_KEY] = newest


def shown_changed() -> None:
    """The problem select (and the explanation) follow the group picked to be shown."""
    st.session_state[GROUP_KEY] = st.session_state.get(SHOWN_KEY)
    problem_ = group_problem(st.session_state.get(SHOWN_KEY))
    if problem_ in ALL_PROBLEMS:
        st.session_state[PROBLEM_KEY] = problem_


# A fresh page opens on the problem of the group it shows (the newest, or the one last launched).
if st.session_state.get(PROBLEM_KEY) not in ALL_PROBLEMS:
    st.session_state.pop(PROBLEM_KEY, None)
    start = st.session_state.get(GROUP_KEY)
    start = start if start in groups else next(iter(groups), None)
    if group_problem(start) in ALL_PROBLEMS:
        st.session_state[PROBLEM_KEY] = group_problem(start)
chosen_problem = st.session_state.get(PROBLEM_KEY, ALL_PROBLEMS[0])
if chosen_problem in GROUPS:
    st.title("Paper check: does MSR-Conv learn rotation sharing?")
    st.markdown(INTRO_2D)
else:
    st.title("Paper check: does MSR-FC learn convolution?")
    st.markdown(INTRO_1D)

# Outside the form: the models on offer follow the problem at once.
problem = st.columns([3, 1])[0].selectbox("Problem", list(ALL_PROBLEMS), key=PROBLEM_KEY, on_change=problem_changed,
                                          format_func=lambda p: PROBLEM_TEXT.get(p, p))
kinds = models_for(problem)
LATENT_HELP = ("Latent size of U for MSR-FC and MSR-Conv (dense U); 0 uses the default: "
               + ", ".join(f"{p} {paper_latent(p)}" for p in ALL_PROBLEMS)
               + " (the paper's for MSR-FC; the generating coefficients for the dense U).")

def field_input(col, name: str, **overrides):
    """A number input for a SyntheticConfig field: its label, tooltip, lower
    bound and default come from the field (msr.synthetic.config)."""
    s = spec(SyntheticConfig, name)
    kwargs = {"min_value": s.low, "value": getattr(DEFAULTS, name),
              "help": s.tooltip, **overrides}
    return col.number_input(overrides.pop("label", s.label), **{k: v for k, v in kwargs.items() if k != "label"})


with st.form("paper_check_form"):
    c2, c3 = st.columns([3.4, 0.8])
    # One selection per problem, so switching problems never leaves another problem's models selected.
    models = c2.multiselect("Models", list(kinds), default=list(kinds), format_func=lambda m: kinds[m].label,
                            key=f"paper_check.models.{problem}")
    steps = field_input(c3, "steps", max_value=100_000, step=100)
    with st.expander("Protocol (defaults are the authors')"):
        p1, p2, p3, p4 = st.columns(4)
        tasks_per_step = field_input(p1, "tasks_per_step", min_value=1)
        eval_interval = field_input(p2, "eval_interval")
        test_tasks = field_input(p3, "test_tasks", min_value=2)
        seed = field_input(p4, "seed")
        q1, q2, q3, q4 = st.columns(4)
        latent = field_input(q1, "latent", label="Latent (0 = default)", min_value=0, value=0, help=LATENT_HELP)
        inner_lr = field_input(q2, "inner_lr", min_value=0.0, format="%.4f")
        outer_lr = field_input(q3, "outer_lr", min_value=0.0, format="%.5f")
        shots = field_input(q4, "shots", max_value=EXAMPLES_PER_TASK - 1)
        r1, r2, r3 = st.columns([1, 1, 2])
        n_tasks = field_input(r1, "n_tasks", value=None, step=1000, placeholder=f"{default_tasks(problem):,}",
                              help=f"Blank: the authors' dataset size for {problem}, {default_tasks(problem):,} "
                                   "tasks.")
        data_seed = field_input(r2, "data_seed")
        cache_dir = r3.text_input(spec(SyntheticConfig, "cache_dir").label, value=DEFAULTS.cache_dir,
                                  help=spec(SyntheticConfig, "cache_dir").tooltip)
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    group = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    try:
        models = [m for m in models if m in kinds]
        if not models:
            raise ConfigError(f"pick at least one model; allowed: {', '.join(k.label for k in kinds.values())}")
        # Every model's settings are checked before any run starts.
        configs = [make_config(problem, m, drop_latent=True, steps=int(steps), tasks_per_step=int(tasks_per_step),
                               eval_interval=int(eval_interval), test_tasks=int(test_tasks), seed=int(seed),
                               latent=int(latent) or None, inner_lr=float(inner_lr), outer_lr=float(outer_lr),
                               shots=int(shots), queries=EXAMPLES_PER_TASK - int(shots),
                               n_tasks=None if n_tasks is None else int(n_tasks),
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
    names = ", ".join(model_label(r.config.model) for r in runs)
    return f"{first.config.problem}: {names} · {when} · {state}"


keys = list(groups)
wanted = st.session_state.get(GROUP_KEY)
wanted = wanted if wanted in keys else keys[0]
# The select's own state is set, not its index: a keyed select keeps its value when only the index changes,
# so a group just launched (or chosen through the problem) would not be shown.
if st.session_state.get(SHOWN_KEY) != wanted:
    st.session_state[SHOWN_KEY] = wanted
chosen = st.selectbox("Runs shown", keys, format_func=group_label, key=SHOWN_KEY, on_change=shown_changed)
st.session_state[GROUP_KEY] = chosen
paths = [str(r.path) for r in groups[chosen]]
busy = any(r.active for r in groups[chosen])


def load_group():
    """The group's runs as their folders say now (one deleted meanwhile is left out)."""
    return in_model_order([r for r in (load_run(p) for p in paths) if not r.damaged])


def rotation_results(runs: list, summaries: list[dict], problem_: str) -> None:
    """Test MSE and the lens numbers of a 2-D group, last evaluation and over training."""
    frame = results_frame(summaries)
    histories = {r.config.model: r.metrics for r in runs if r.metrics}
    hist = history_frame(histories)
    lens_hist = lens_history_frame(histories)
    bars = mse_bar_chart(frame, title=f"{problem_}: test MSE after adaptation (95% interval)")
    mse_chart = history_chart(hist, "test_mse")
    equiv_chart, orbit_chart = lens_chart(lens_hist, "equiv"), lens_chart(lens_hist, "orbit")
    top_left, top_right = st.columns(2)
    top_left.altair_chart(bars)
    top_right.altair_chart(mse_chart)
    lens = lens_frame(histories).merge(frame[["model", "latent", "seconds"]], on="model", how="left")
    # The latent size stays in the CSV: one more column would not fit at 1280 px on D8.
    shown = ["label", "step", "test_mse", "test_err", *[c for c in LENS_COLUMNS if c in lens], "seconds"]
    number = st.column_config.NumberColumn
    st.dataframe(lens[shown], hide_index=True, column_config={
        "label": st.column_config.TextColumn("model"), "test_mse": number("test MSE", format="%.4f"),
        "test_err": number("± 95%", format="%.4f"), "seconds": number("seconds", format="%.1f"),
        **{c: number(LENS_HEADERS[c], help=LENS_COLUMNS[c], format="%.3f") for c in LENS_COLUMNS}})
    left, right = st.columns(2)
    left.altair_chart(equiv_chart)
    right.altair_chart(orbit_chart)
    d1, d2, d3, d4 = st.columns(4)
    d1.download_button("Results (CSV)", frame_csv(lens), f"paper_check_{problem_}.csv", "text/csv")
    d2.download_button("Lens history (CSV)", frame_csv(lens_hist), f"paper_check_{problem_}_lens_history.csv",
                       "text/csv")
    d3.download_button("Bar chart (PNG)", lambda: chart_png(bars), f"paper_check_{problem_}_mse.png", "image/png")
    d4.download_button("Equivariance chart (PNG)", lambda: chart_png(equiv_chart),
                       f"paper_check_{problem_}_equivariance.png", "image/png")


def still_training() -> bool:
    """While a run of the group shown trains. A group whose runs were all
    deleted meanwhile counts too, so its warning stays up."""
    runs_ = [r for r in (load_run(p, with_metrics=False) for p in paths) if not r.damaged]
    return not runs_ or any(r.active for r in runs_)


def live_view() -> None:
    """The group's progress (Stop while it trains, the outcome after) and its results."""
    runs = load_group()
    if not runs:
        st.warning("The runs of this group are gone (deleted or damaged); see the Runs page.")
        return
    problem_ = runs[0].config.problem
    active = [r for r in runs if r.active]
    if active:
        progress = [progress_of(r) for r in active]
        for r, p in zip(active, progress):
            st.progress(p.fraction, text=f"{model_label(r.config.model)}: step {p.step} of {p.total}"
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
            notes = "; ".join(f"{model_label(r.config.model)}: {r.state}"
                              + (f" ({r.status.get('message')})" if r.state == "failed" else "") for r in runs)
            (st.error if "failed" in states else st.warning)(
                f"{notes}. The numbers below are from each model's last evaluation; stopped or interrupted "
                "runs can be resumed from the Runs page.")

    summaries = [summarize(r.config, r.state, r.step, r.metrics) for r in runs if r.metrics]
    if summaries and problem_ in GROUPS:
        rotation_results(runs, summaries, problem_)
    elif summaries:
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


def nearest_snapshot(rec, step: int):
    """The run's snapshot at its last evaluation up to ``step`` (its first one
    if it has none that early); None if it cannot be read."""
    steps_ = rec.checkpoint_steps()
    if not steps_:
        return None
    at = max((s_ for s_ in steps_ if s_ <= step), default=steps_[0])
    try:
        return synthetic_snapshot(rec.path, at)
    except CheckpointError:
        return None


def show_pictures(pictures: list[tuple[str, object]], order: int) -> None:
    """Filter pictures in rows of columns, as many per row as stay legible."""
    per_row = PICTURES_PER_ROW.get(order, 1)
    for start in range(0, len(pictures), per_row):
        cols = st.columns(per_row)
        for col, (_, fig) in zip(cols, pictures[start:start + per_row]):
            col.pyplot(fig, clear_figure=False)


def rotation_filters() -> None:
    """The filters of a 2-D group at one evaluation, redrawn while it trains."""
    runs_ = [r for r in load_group() if r.checkpoint_steps()]
    if not runs_:
        st.caption("Filters appear here after the first evaluation.")
        return
    problem_ = runs_[0].config.problem
    group = GROUPS[problem_]
    training = any(r.active for r in runs_)
    all_steps = sorted(set().union(*(r.checkpoint_steps() for r in runs_)))
    a1, a2, a3 = st.columns([1.2, 1.2, 2])
    arrange = a1.radio("Arrange the filters by", list(ARRANGEMENTS), format_func=ARRANGEMENTS.get,
                       key="paper_check.arrange")
    layer = a2.radio("Layer of every model", ["adapted", "initial"], key="paper_check.layer",
                     format_func={"adapted": "adapted to the first test task",
                                  "initial": "meta-learned initial filters"}.get)
    follow = training and a3.toggle("Follow training (newest evaluation)", value=True, key="paper_check.follow")
    if follow or len(all_steps) == 1:
        step = all_steps[-1]
        a3.caption(f"Evaluation step {step}")
    else:
        step = a3.select_slider("Evaluation step", options=all_steps, value=all_steps[-1],
                                key=f"paper_check.rot_step.{chosen}")
    snaps = [(r, nearest_snapshot(r, step)) for r in runs_]
    snaps = [(r, s_) for r, s_ in snaps if s_ is not None]
    if not snaps:
        st.caption("No weights could be read at this step.")
        return

    banks: dict[str, object] = {}
    generated = [(r, s_) for r, s_ in snaps if s_.u is not None]
    if generated:
        if arrange == "elements":
            st.markdown(f"**What U generates** from one random v: rows are the {FIELDS} fields, columns the "
                        f"{group.order} elements of {group.name}, as the data are made. For a U that has learned "
                        "the data's sharing each row is one filter in every rotation"
                        + (" and mirror image" if group.flips else "") + "; U may also have put the copies in "
                        "other channels, which the arrangement by matched rotation shows.")
        else:
            turns = filter_rotation(problem_)
            st.markdown(f"**What U generates** from one random v, arranged by matched rotation: each row starts "
                        f"with a filter and continues with the filters that best match it turned by "
                        f"{360 // turns.order}°, {2 * 360 // turns.order}°, …, wherever U put them. For a U that "
                        f"has learned the data's sharing every row is a full orbit of {turns.order} rotated copies "
                        f"({group.channels // turns.order} rows); a longer chain wraps onto a row marked …")
        pictures = []
        for r, s_ in generated:
            name = f"{model_label(r.config.model)}: from U"
            banks[name] = s_.u[0]
            pictures.append((name, filter_bank_figure(s_.u[0], problem_, arrange,
                                                      f"{model_label(r.config.model)} · step {s_.step}")))
        show_pictures(pictures, group.order)
    what = "adapted to the first test task" if layer == "adapted" else "meta-learned initial filters"
    st.markdown(f"**Every model's filters, {what}**, in the same layout.")
    pictures = []
    for r, s_ in snaps:
        w = s_.w_task if layer == "adapted" else s_.w_init
        name = f"{model_label(r.config.model)}: {layer}"
        banks[name] = w
        pictures.append((name, filter_bank_figure(w, problem_, arrange,
                                                  f"{model_label(r.config.model)} · step {s_.step}")))
    show_pictures(pictures, group.order)
    st.caption("Red taps are positive, blue negative; each picture is scaled to its largest tap. The orbit score "
               "in each title is that of the filters shown.")
    st.download_button("Filters (CSV)", frame_csv(filters_frame(banks, problem_)),
                       f"paper_check_{problem_}_filters_step{step}.csv", "text/csv")


# Redrawn while the group trains; once it stops, a full rerun (so the weights view below shows the final state).
live(live_view, REFRESH_SECONDS if busy else None, still_active=still_training if busy else None)

if groups[chosen][0].config.problem in GROUPS:
    st.subheader("What the filters look like")
    live(rotation_filters, REFRESH_SECONDS if busy else None)
    st.stop()

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
                     format_func=model_label)
rec = by_model[model]
steps_seen = rec.checkpoint_steps()
step = w2.select_slider("Evaluation step", options=steps_seen, value=steps_seen[-1]) if len(steps_seen) > 1 \
    else steps_seen[0]
try:
    snap = synthetic_snapshot(rec.path, step)
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
label = model_label(model)
w_fig = weight_figure(w, f"{label} W, step {step}")
st.pyplot(w_fig, clear_figure=False)
f1, f2 = st.columns(2)
f1.download_button("W (PNG)", lambda: figure_png(w_fig), f"{model}_W_step{step}.png", "image/png")
f2.download_button("W (CSV)", lambda: frame_csv(matrix_frame(w)), f"{model}_W_step{step}.csv", "text/csv")
