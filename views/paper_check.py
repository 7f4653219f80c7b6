"""Paper check: the MSR paper's synthetic problems, run live.

Each model is an ordinary run (a worker process and a run folder, listed on
the Runs page); the models launched together form a group, which this page
shows. The weight pictures follow training as it goes and can be played
through, one saved evaluation a second (ui.step_player). Composes
msr.synthetic and msr.viz.synthetic; holds no model logic.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from msr.analysis.tables import LENS_COLUMNS, history_frame, lens_frame, lens_history_frame, results_frame
from msr.core.errors import ConfigError, MachineError
from msr.core.settings import spec
from msr.kinds import SYNTHETIC
from msr.runner.launch import start_runs
from msr.store.checkpoints import CheckpointError, checkpoint_mtime
from msr.store.liveness import request_stop
from msr.store.progress import progress_of
from msr.store.reader import list_runs, load_run
from msr.synthetic.config import SyntheticConfig, make_config
from msr.synthetic.data import ALL_PROBLEMS, EXAMPLES_PER_TASK, default_tasks
from msr.synthetic.models import MODEL_ORDER, model_label, models_for, paper_latent
from msr.synthetic.report import summarize
from msr.synthetic.rotation import FIELDS, ROTATION_PROBLEMS
from msr.synthetic.run_groups import new_group_id, run_groups
from msr.synthetic.score import conv_score
from msr.viz.export import chart_png, figure_png, frame_csv
from msr.viz.synthetic import (ARRANGEMENTS, filter_bank_figure, filter_rotation, filters_frame, history_chart,
                               lens_chart, matrix_frame, mse_bar_chart, symmetry_figure, symmetry_frame,
                               weight_figure)
from ui.downloads import download
from ui.live import live
from ui.page_cache import synthetic_snapshot
from ui import present
from ui.present import chart
from ui.run_picker import RUN_PARAM, runs_dir
from ui.run_view import REFRESH_SECONDS
from ui.step_player import PLAY_SECONDS, STEP_PARAM, playing, step_player, stop_playing

GROUP_KEY = "paper_check.group"
PROBLEM_KEY = "paper_check.problem"
SHOWN_KEY = "paper_check.shown"
PICTURE_DPI = 150
W_PICTURE_PX = 820  # at most: wider, on a big screen, its text would outgrow the page's own
DEFAULTS = SyntheticConfig()
# Short enough that the select and its open list show every option whole at 1280 px.
PROBLEM_TEXT = {
    "rank1": "rank1 · one 3-tap convolution per task",
    "rank2": "rank2 · locally connected, 2 filters mixed",
    "rank5": "rank5 · locally connected, 5 filters mixed",
    "rot4": "rot4 · C4 lifting conv, 3 filters × 4 rotations",
    "rot8": "rot8 · C8 lifting conv, 3 filters × 8 rotations",
    "rot8_flip": "rot8_flip · D8: rot8 plus mirror images",
}
# Filter pictures side by side per row, by group order: narrower columns would shrink their labels.
PICTURES_PER_ROW = {4: 3, 8: 2}
# U's columns fill one row of the picture up to this many; a choice of how many only helps beyond.
U_COLUMNS_IN_A_ROW = 4
# Short table headers (the full wording is each column's help), so the table fits at 1280 px.
LENS_HEADERS = {"equiv_90": "equiv. 90°", "equiv_45": "equiv. 45°", "orbit_C4": "orbit 90°",
                "orbit_C8": "orbit 45°", "u_equiv_90": "U: equiv. 90°", "u_orbit": "U: orbit 90°"}
number = st.column_config.NumberColumn
RESULT_COLUMNS = {
    "label": st.column_config.TextColumn("model"),
    "latent": st.column_config.TextColumn("latent size", help="Size of v, the latent of U: MSR models only."),
    "steps": number("steps", help="Outer steps trained."),
    "test_mse": number("test MSE", format="%.4f", help="Mean squared error on the query examples after "
                                                       "adaptation, over the test tasks."),
    "test_err": number("± 95%", format="%.4f", help="Half-width of the 95% Student-t interval of the test MSE."),
    "conv_score": number("convolution score", format="%.3f",
                         help="Fraction of the adapted weight's energy in its best 3-tap convolution (1 = exactly)."),
    "seconds": number("time (s)", format="%.1f", help="Training time, evaluations left out."),
}

LEAD_1D = ("Every task is a 70→68 linear map; on **rank1** it is a convolution. **MSR-FC** builds its weight as "
           "`W = U v` and meta-learns `U`: if `U` turns into bands of shifted diagonals, it has discovered "
           "convolution from the data alone.")
LEAD_2D = ("Every task is a 3×3 convolution made by a group convolution (rotations). Does **MSR-Conv** learn "
           "this rotation sharing from the data alone, as MSR-FC learned convolution on rank1?")

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
    """MSR-FC and the other 1-D models, then MAML-Conv, MSR-Conv, dense MSR-Conv: the order of every chart."""
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    return sorted(runs, key=lambda r: rank.get(r.config.model, len(rank)))


def read_groups() -> dict[str, list]:
    """Every group of synthetic runs in the runs folder, newest first, each in model order."""
    return {k: in_model_order(v) for k, v in run_groups(list_runs(runs_dir(), kind=SYNTHETIC)).items()}


def step_key(group: str) -> str:
    """The step player of a group's pictures (ui.step_player)."""
    return f"paper_check.step.{group}"


def group_problem(groups: dict, key: str | None) -> str | None:
    return groups[key][0].config.problem if key in groups else None


def linked_group(groups: dict) -> str | None:
    """The group of the run a link names (``?run=<run folder>``)."""
    wanted = st.query_params.get(RUN_PARAM)
    return next((k for k, runs in groups.items() if any(r.run_id == wanted for r in runs)), None)


def forget_linked_step() -> None:
    """Another group is shown: its pictures open on its own newest step, not the old group's."""
    if STEP_PARAM in st.query_params:
        del st.query_params[STEP_PARAM]


def show_group(group: str | None) -> None:
    """Show another group: the pictures of the one shown so far stop playing."""
    previous = st.session_state.get(GROUP_KEY)
    if previous is not None:
        stop_playing(step_key(previous))
    st.session_state[GROUP_KEY] = group
    forget_linked_step()


def problem_changed(groups: dict) -> None:
    """Show the newest group of the newly chosen problem, if there is one."""
    newest = next((k for k in groups if group_problem(groups, k) == st.session_state[PROBLEM_KEY]), None)
    if newest is not None and newest != st.session_state.get(GROUP_KEY):
        show_group(newest)


def shown_changed(groups: dict) -> None:
    """The problem select (and the explanation) follow the group picked to be shown."""
    show_group(st.session_state.get(SHOWN_KEY))
    problem_ = group_problem(groups, st.session_state.get(SHOWN_KEY))
    if problem_ in ALL_PROBLEMS:
        st.session_state[PROBLEM_KEY] = problem_


def open_on(groups: dict) -> str:
    """The problem the page shows. A link names a run: the page opens on its group; a fresh page opens on the
    problem of the group it shows (the linked one, the newest, or the one last launched)."""
    if GROUP_KEY not in st.session_state and linked_group(groups) is not None:
        st.session_state[GROUP_KEY] = linked_group(groups)
    if st.session_state.get(PROBLEM_KEY) not in ALL_PROBLEMS:
        st.session_state.pop(PROBLEM_KEY, None)
        start = st.session_state.get(GROUP_KEY)
        start = start if start in groups else next(iter(groups), None)
        if group_problem(groups, start) in ALL_PROBLEMS:
            st.session_state[PROBLEM_KEY] = group_problem(groups, start)
    return st.session_state.get(PROBLEM_KEY, ALL_PROBLEMS[0])


def title_and_intro(problem: str, have_groups: bool, training: bool):
    """The question the page answers and what it is about. Once there are runs to watch, the long
    explanation folds away; while the group shown trains, the lead folds away too and the settings sit
    beside it, so the live pictures come close to the top. Returns where the settings go."""
    rotation_problem = problem in ROTATION_PROBLEMS
    if rotation_problem:
        st.title("Paper check: does MSR-Conv learn rotation sharing?")
    else:
        st.title("Paper check: does MSR-FC learn convolution?")
    lead, intro = (LEAD_2D, INTRO_2D) if rotation_problem else (LEAD_1D, INTRO_1D)
    if training:
        about, setup = st.columns(2)
        with about.expander("About this experiment"):
            st.markdown(lead + "\n\n" + intro)
        return setup.expander("New group of runs: problem, models, steps", icon=":material/add:")
    if have_groups:
        st.markdown(lead)
        with st.expander("About this experiment"):
            st.markdown(intro)
    else:
        st.markdown(intro)
    return st.container()


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


def settings_and_launch(groups: dict) -> None:
    """The problem, the models and their settings; Run starts one worker per model."""
    # Outside the form: the models on offer follow the problem at once.
    problem = st.columns([3, 2])[0].selectbox("Problem", list(ALL_PROBLEMS), key=PROBLEM_KEY,
                                              on_change=problem_changed, args=(groups,),
                                              format_func=lambda p: PROBLEM_TEXT.get(p, p))
    kinds = models_for(problem)
    with st.form("paper_check_form"):
        # Run beside the models rather than under the protocol: the live view starts within a projector's screen.
        c2, c3, c4 = st.columns([3.4, 0.8, 0.6], vertical_alignment="bottom")
        # One selection per problem, so switching problems never leaves another problem's models selected.
        models = c2.multiselect("Models", list(kinds), default=list(kinds), format_func=lambda m: kinds[m].label,
                                key=f"paper_check.models.{problem}",
                                help="Each model trains in a worker process of its own, all at once, the first "
                                     "listed (the model the problem asks about) launched first.")
        steps = field_input(c3, "steps", max_value=100_000, step=100)
        submitted = c4.form_submit_button("Run", type="primary", width="stretch")
        with st.expander("Protocol (defaults are the authors')"):
            p1, p2, p3, p4 = st.columns(4)
            tasks_per_step = field_input(p1, "tasks_per_step", min_value=1)
            eval_interval = field_input(p2, "eval_interval")
            test_tasks = field_input(p3, "test_tasks", min_value=2)
            seed = field_input(p4, "seed")
            q1, q2, q3, q4 = st.columns(4)
            latent = field_input(q1, "latent", label="Latent (0 = default)", min_value=0, value=0,
                                 help=LATENT_HELP)
            inner_lr = field_input(q2, "inner_lr", min_value=0.0, format="%.4f")
            outer_lr = field_input(q3, "outer_lr", min_value=0.0, format="%.5f")
            shots = field_input(q4, "shots", max_value=EXAMPLES_PER_TASK - 1)
            r1, r2, r3 = st.columns([1, 1, 2])
            n_tasks = field_input(r1, "n_tasks", value=None, step=1000, placeholder=f"{default_tasks(problem):,}",
                                  help=f"Blank: the authors' dataset size for {problem}, "
                                       f"{default_tasks(problem):,} tasks.")
            data_seed = field_input(r2, "data_seed")
            cache_dir = r3.text_input(spec(SyntheticConfig, "cache_dir").label, value=DEFAULTS.cache_dir,
                                      help=spec(SyntheticConfig, "cache_dir").tooltip)

    if submitted:
        group = new_group_id()
        try:
            # In the problem's model order, whatever order they were picked in: the model asked about starts first.
            models = [m for m in kinds if m in models]
            if not models:
                allowed = ", ".join(k.label for k in kinds.values())
                raise ConfigError(f"pick at least one model; allowed: {allowed}")
            # Every model's settings are checked before any run starts.
            configs = [make_config(problem, m, drop_latent=True, steps=int(steps),
                                   tasks_per_step=int(tasks_per_step), eval_interval=int(eval_interval),
                                   test_tasks=int(test_tasks), seed=int(seed),
                                   latent=int(latent) or None, inner_lr=float(inner_lr), outer_lr=float(outer_lr),
                                   shots=int(shots), queries=EXAMPLES_PER_TASK - int(shots),
                                   n_tasks=None if n_tasks is None else int(n_tasks),
                                   data_seed=int(data_seed), cache_dir=cache_dir.strip() or None, threads=1,
                                   runs_dir=runs_dir(), group=group)
                       for m in models]
            start_runs(configs)  # the machine is asked for every one before any starts
        except (ConfigError, MachineError) as exc:
            st.error(f"Nothing was started: {exc}")
        else:
            show_group(group)
            st.rerun()


def group_label(groups: dict, key: str) -> str:
    runs = groups[key]
    first = runs[0]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.created))
    names = ", ".join(model_label(r.config.model) for r in runs)
    return f"{first.config.problem}: {names} · {when}"  # its state is shown below, where it is kept up to date


@dataclass(frozen=True)
class Shown:
    """The group of runs on screen: its key, its runs' folders, and whether any of them trains."""
    key: str
    paths: tuple[str, ...]
    busy: bool

    def load(self, with_metrics: bool = True) -> list:
        """The group's runs as their folders say now (one deleted meanwhile is left out)."""
        return in_model_order([r for r in (load_run(p, with_metrics) for p in self.paths) if not r.damaged])

    def still_training(self) -> bool:
        """While a run of the group trains. A group whose runs were all deleted
        meanwhile counts too, so its warning stays up."""
        runs_ = [r for r in (load_run(p, with_metrics=False) for p in self.paths) if not r.damaged]
        return not runs_ or any(r.active for r in runs_)


def pick_group(groups: dict) -> Shown:
    """The select of the groups; the one picked, kept in the address by one of its runs."""
    keys = list(groups)
    wanted = st.session_state.get(GROUP_KEY)
    wanted = wanted if wanted in keys else keys[0]
    # The select's own state is set, not its index: a keyed select keeps its value when only the index changes,
    # so a group just launched (or chosen through the problem) would not be shown.
    if st.session_state.get(SHOWN_KEY) != wanted:
        st.session_state[SHOWN_KEY] = wanted
    chosen = st.selectbox("Runs shown", keys, format_func=lambda k: group_label(groups, k), key=SHOWN_KEY,
                          on_change=shown_changed, args=(groups,))
    st.session_state[GROUP_KEY] = chosen
    st.query_params[RUN_PARAM] = groups[chosen][0].run_id
    return Shown(chosen, tuple(str(r.path) for r in groups[chosen]), any(r.active for r in groups[chosen]))


def results_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The 1-D results as the page shows them: a model without a latent says so instead of None."""
    shown = frame[["label", "latent", "steps", "test_mse", "test_err", "conv_score", "seconds"]].copy()
    shown["latent"] = [f"{int(v)}" if pd.notna(v) else "—" for v in shown["latent"]]
    return shown


def convolution_results(runs: list, summaries: list[dict], problem_: str) -> None:
    """Test MSE and the convolution score of a 1-D group, last evaluation and over training."""
    frame = results_frame(summaries)
    bars = mse_bar_chart(frame, title=f"{problem_}: test MSE after adaptation (95% interval)")
    chart(bars)
    hist = history_frame({r.config.model: r.metrics for r in runs if r.metrics})
    left, right = st.columns(2)
    mse_chart, score_chart = history_chart(hist, "test_mse"), history_chart(hist, "conv_score")
    chart(mse_chart, left)
    chart(score_chart, right)
    present.table(results_table(frame), hide_index=True, column_config=RESULT_COLUMNS)
    d1, d2, d3, d4 = st.columns(4)
    download("Results (CSV)", frame_csv(frame), f"paper_check_{problem_}.csv", "text/csv", key="pc.results",
             where=d1)
    download("History (CSV)", frame_csv(hist), f"paper_check_{problem_}_history.csv", "text/csv", key="pc.hist",
             where=d2)
    download("Bar chart (PNG)", lambda: chart_png(bars), f"paper_check_{problem_}_mse.png", "image/png",
             key="pc.bars", where=d3)
    download("Score chart (PNG)", lambda: chart_png(score_chart), f"paper_check_{problem_}_conv_score.png",
             "image/png", key="pc.score", where=d4)


def rotation_results(runs: list, summaries: list[dict], problem_: str) -> None:
    """Test MSE and the lens numbers of a 2-D group, last evaluation and over training."""
    frame = results_frame(summaries)
    histories = {r.config.model: r.metrics for r in runs if r.metrics}
    hist = history_frame(histories)
    lens_hist = lens_history_frame(histories)
    bars = mse_bar_chart(frame, title=f"{problem_}: test MSE (95% interval)")
    mse_chart = history_chart(hist, "test_mse")
    equiv_chart, orbit_chart = lens_chart(lens_hist, "equiv"), lens_chart(lens_hist, "orbit")
    top_left, top_right = st.columns(2)
    chart(bars, top_left)
    chart(mse_chart, top_right)
    lens = lens_frame(histories).merge(frame[["model", "latent", "seconds"]], on="model", how="left")
    # The latent size stays in the CSV: one more column would not fit at 1280 px on D8.
    shown = ["label", "step", "test_mse", "test_err", *[c for c in LENS_COLUMNS if c in lens], "seconds"]
    table = lens[shown].copy()
    for c in LENS_COLUMNS:  # a number the model has not got (U's, for MAML-Conv) reads as a dash, not None
        if c in table:
            table[c] = [f"{v:.3f}" if pd.notna(v) else "—" for v in table[c]]
    present.table(table, hide_index=True, column_config={
        **RESULT_COLUMNS, "step": number("step", help="Outer step of the last evaluation."),
        **{c: st.column_config.TextColumn(LENS_HEADERS[c], help=LENS_COLUMNS[c]) for c in LENS_COLUMNS}})
    left, right = st.columns(2)
    chart(equiv_chart, left)
    chart(orbit_chart, right)
    d1, d2, d3, d4 = st.columns(4)
    download("Results (CSV)", frame_csv(lens), f"paper_check_{problem_}.csv", "text/csv", key="pc.results",
             where=d1)
    download("Lens history (CSV)", frame_csv(lens_hist), f"paper_check_{problem_}_lens_history.csv", "text/csv",
             key="pc.lens", where=d2)
    download("Bar chart (PNG)", lambda: chart_png(bars), f"paper_check_{problem_}_mse.png", "image/png",
             key="pc.bars", where=d3)
    download("Equivariance (PNG)", lambda: chart_png(equiv_chart), f"paper_check_{problem_}_equivariance.png",
             "image/png", key="pc.equiv", where=d4)


def progress_view(runs: list) -> None:
    """A bar per model in training, up to four to a row, and one Stop for all beside them: one row of
    bars on a projector, so the pictures below stay in the first screen."""
    active = [r for r in runs if r.active]
    progress = [progress_of(r) for r in active]
    bars, button = st.columns([6, 1], vertical_alignment="center")
    cols = bars.columns(min(len(active), 4) or 1)
    for i, (r, p) in enumerate(zip(active, progress)):
        cols[i % len(cols)].progress(p.fraction, text=f"{model_label(r.config.model)}: {p.step} / {p.total}"
                                     + (" (stopping…)" if p.stopping else ""))
    stopping = all(p.stopping for p in progress)
    if button.button("Stopping…" if stopping else "Stop all", key="paper_check_stop", disabled=stopping,
                     icon=":material/stop_circle:", width="stretch",
                     help="Stop every run of this group after its current step and a final evaluation."):
        for r in active:
            request_stop(r.path)


def status_view(shown: Shown) -> None:
    """The group's progress (Stop while it trains), or its outcome."""
    runs = shown.load(with_metrics=False)
    if not runs:
        st.warning("The runs of this group are gone (deleted or damaged); see the Runs page.")
        return
    if any(r.active for r in runs):
        progress_view(runs)
        return
    states = [r.state for r in runs]
    if all(s == "completed" for s in states):
        st.success(f"Finished {len(runs)} model(s) on {runs[0].config.problem}.")
    else:
        notes = "; ".join(f"{model_label(r.config.model)}: {r.state}"
                          + (f" ({r.status.get('message')})" if r.state == "failed" else "") for r in runs)
        (st.error if "failed" in states else st.warning)(
            f"{notes}. The numbers below are from each model's last evaluation; stopped or interrupted "
            "runs can be resumed from the Runs page.")


def results_view(shown: Shown) -> None:
    """The group's numbers: test MSE, and the convolution score or the lens, last and over training."""
    runs = shown.load()
    summaries = [summarize(r.config, r.state, r.step, r.metrics) for r in runs if r.metrics]
    if not summaries:
        st.caption("The numbers appear after the first evaluation.")
    elif runs[0].config.problem in ROTATION_PROBLEMS:
        rotation_results(runs, summaries, runs[0].config.problem)
    else:
        convolution_results(runs, summaries, runs[0].config.problem)


# ----------------------------------------------------------- the pictures
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


# ---------------------------------------------------- pictures, drawn once per (run, step)
# The mtime argument is part of each key: a checkpoint rewritten under the same step is drawn again.
@st.cache_data(show_spinner=False, max_entries=256)
def u_picture(path: str, step: int, mtime: float, columns: int) -> bytes:
    return figure_png(symmetry_figure(synthetic_snapshot(path, step).u, step, max_columns=columns), PICTURE_DPI)


@st.cache_data(show_spinner=False, max_entries=256)
def w_picture(path: str, step: int, mtime: float, adapted: bool, title: str) -> bytes:
    snap = synthetic_snapshot(path, step)
    return figure_png(weight_figure(snap.w_task if adapted else snap.w_init, title), PICTURE_DPI)


@st.cache_data(show_spinner=False, max_entries=512)
def bank_picture(path: str, step: int, mtime: float, layer: str, problem_: str, arrange: str, title: str) -> bytes:
    snap = synthetic_snapshot(path, step)
    bank = {"u": snap.u[0] if snap.u is not None else None, "adapted": snap.w_task, "initial": snap.w_init}[layer]
    return figure_png(filter_bank_figure(bank, problem_, arrange, title), PICTURE_DPI)


def pictures_step(steps: list[int], shown: Shown, training: bool, play_col, slider_col) -> int:
    """Play / Pause and the step slider (only with more than one step to show);
    the step shown, which the address keeps (``?step=``)."""
    return step_player("Evaluation step", steps, step_key(shown.key), play_col=play_col, slider_col=slider_col,
                       help="At the newest step the pictures follow training as each evaluation arrives; move the "
                            "slider back to hold a step." if training else None)


def convolution_weights(shown: Shown) -> None:
    """U of MSR-FC and any model's W at one evaluation step, following training
    or played through."""
    runs = [r for r in shown.load(with_metrics=False) if r.checkpoint_steps()]
    if not runs:
        st.caption("The pictures appear after the first evaluation.")
        return
    lead = next((r for r in runs if r.config.model == "msr-fc"), runs[0])
    n_columns = lead.config.resolved_latent() or 0
    choose_columns = n_columns > U_COLUMNS_IN_A_ROW
    play_col, slider_col, *columns_col = st.columns([1, 5, 1.5] if choose_columns else [1, 6.5],
                                                    vertical_alignment="bottom")
    step = pictures_step(lead.checkpoint_steps(), shown, any(r.active for r in runs), play_col, slider_col)
    shown_columns = columns_col[0].number_input(
        "Columns of U", min_value=1, max_value=n_columns, value=min(n_columns, 12),
        key=f"paper_check.u_columns.{shown.key}", help="How many of U's columns to draw.") if choose_columns else n_columns
    u_snap = nearest_snapshot(lead, step)
    if u_snap is not None and u_snap.u is not None:
        u_step = u_snap.step
        png = u_picture(str(lead.path), u_step, checkpoint_mtime(lead.path, u_step), int(shown_columns))
        st.image(png, width="stretch")
        # Under the picture, so the controls and U fit on one projector screen together.
        st.markdown(f"**U of MSR-FC at step {u_step}**: each column of U reshaped to 68×70, the weight one unit "
                    f"of v adds. On rank1 each column turns into a band of shifted diagonals as training goes. "
                    f"Convolution score of U: {conv_score(u_snap.u):.3f}.")
        e1, e2, _ = st.columns([1, 1, 2])
        download("U (PNG)", png, f"msr_fc_U_step{u_step}.png", "image/png", key="pc.u_png", where=e1)
        download("U (CSV)", lambda: frame_csv(symmetry_frame(u_snap.u)), f"msr_fc_U_step{u_step}.csv", "text/csv",
                 key="pc.u_csv", where=e2)

    by_model = {r.config.model: r for r in runs}
    m1, m2 = st.columns([1, 2], vertical_alignment="bottom")
    model = m1.selectbox("Weight W of", list(by_model), format_func=model_label, key="paper_check.w_model")
    which = m2.radio("Weight", ["adapted", "initial"], horizontal=True, key="paper_check.w_which",
                     label_visibility="collapsed",
                     format_func={"adapted": "adapted to the first test task",
                                  "initial": "meta-learned initial weight"}.get)
    rec = by_model[model]
    w_snap = nearest_snapshot(rec, step)
    if w_snap is None:
        st.caption("This checkpoint holds no weight pictures.")
        return
    w_step = w_snap.step
    png = w_picture(str(rec.path), w_step, checkpoint_mtime(rec.path, w_step), which == "adapted",
                    f"{model_label(model)} W, step {w_step}")
    st.image(png, width=W_PICTURE_PX)
    f1, f2, _ = st.columns([1, 1, 2])
    download("W (PNG)", png, f"{model}_W_step{w_step}.png", "image/png", key="pc.w_png", where=f1)
    w = w_snap.w_task if which == "adapted" else w_snap.w_init
    download("W (CSV)", lambda: frame_csv(matrix_frame(w)), f"{model}_W_step{w_step}.csv", "text/csv",
             key="pc.w_csv", where=f2)


def show_pictures(pictures: list[bytes], order: int) -> None:
    """Filter pictures in rows of columns, as many per row as stay legible."""
    per_row = PICTURES_PER_ROW.get(order, 1)
    for start in range(0, len(pictures), per_row):
        cols = st.columns(per_row)
        for col, png in zip(cols, pictures[start:start + per_row]):
            col.image(png, width="stretch")


def rotation_filters(shown: Shown) -> None:
    """The filters of a 2-D group at one evaluation, following training or played through."""
    runs_ = [r for r in shown.load(with_metrics=False) if r.checkpoint_steps()]
    if not runs_:
        st.caption("Filters appear here after the first evaluation.")
        return
    problem_ = runs_[0].config.problem
    group = ROTATION_PROBLEMS[problem_]
    all_steps = sorted(set().union(*(r.checkpoint_steps() for r in runs_)))
    # One row of controls, then the pictures: on a projector the filters are in the first screen.
    play_col, slider_col, arrange_col, layer_col = st.columns([1, 3.5, 2.2, 2.2], vertical_alignment="bottom")
    arrange = arrange_col.selectbox("Arrange the filters by", list(ARRANGEMENTS), format_func=ARRANGEMENTS.get,
                                    key="paper_check.arrange")
    layer = layer_col.selectbox("Layer of every model", ["adapted", "initial"], key="paper_check.layer",
                                format_func={"adapted": "adapted to a task", "initial": "meta-learned start"}.get,
                                help="Adapted: after one inner step on the first test task. Meta-learned start: "
                                     "the initial filters the outer loop learned.")
    step = pictures_step(all_steps, shown, any(r.active for r in runs_), play_col, slider_col)
    snaps = [(r, nearest_snapshot(r, step)) for r in runs_]
    snaps = [(r, s_) for r, s_ in snaps if s_ is not None]
    if not snaps:
        st.caption("No weights could be read at this step.")
        return

    banks: dict[str, object] = {}
    generated = [(r, s_) for r, s_ in snaps if s_.u is not None]
    if generated:
        st.markdown("**What U generates** from one random v" + (", by group element" if arrange == "elements"
                                                               else ", by matched rotation"))
        pictures = []
        for r, s_ in generated:
            label = model_label(r.config.model)
            banks[f"{label}: from U"] = s_.u[0]
            pictures.append(bank_picture(str(r.path), s_.step, checkpoint_mtime(r.path, s_.step), "u", problem_,
                                         arrange, f"{label} · step {s_.step}"))
        show_pictures(pictures, group.order)
        if arrange == "elements":
            st.caption(f"Rows are the {FIELDS} fields, columns the {group.order} elements of {group.name}, as the "
                       "data are made. For a U that has learned the data's sharing each row is one filter in every "
                       "rotation" + (" and mirror image" if group.flips else "") + "; U may also have put the "
                       "copies in other channels, which the arrangement by matched rotation shows.")
        else:
            turns = filter_rotation(problem_)
            st.caption(f"Each row starts with a filter and continues with the filters that best match it turned by "
                       f"{360 // turns.order}°, {2 * 360 // turns.order}°, …, wherever U put them. For a U that has "
                       f"learned the data's sharing every row is a full orbit of {turns.order} rotated copies "
                       f"({group.channels // turns.order} rows); a longer chain wraps onto a row marked …")
    what = "adapted to the first test task" if layer == "adapted" else "meta-learned initial filters"
    st.markdown(f"**Every model's filters, {what}**, in the same layout.")
    pictures = []
    for r, s_ in snaps:
        label = model_label(r.config.model)
        banks[f"{label}: {layer}"] = s_.w_task if layer == "adapted" else s_.w_init
        pictures.append(bank_picture(str(r.path), s_.step, checkpoint_mtime(r.path, s_.step), layer, problem_,
                                     arrange, f"{label} · step {s_.step}"))
    show_pictures(pictures, group.order)
    st.caption("Red taps are positive, blue negative; each picture is scaled to its largest tap. The orbit score "
               "in each title is that of the filters shown.")
    download("Filters (CSV)", lambda: frame_csv(filters_frame(banks, problem_)),
             f"paper_check_{problem_}_filters_step{step}.csv", "text/csv", key="pc.filters")


def page() -> None:
    groups = read_groups()
    # While the group shown trains, the settings fold away beside the explanation, so the live view is what a
    # room sees (as on Train).
    shown_now = st.session_state.get(GROUP_KEY) if st.session_state.get(GROUP_KEY) in groups else \
        next(iter(groups), None)
    shown_training = shown_now is not None and any(r.active for r in groups[shown_now])
    setup = title_and_intro(open_on(groups), bool(groups), shown_training)
    with setup:
        settings_and_launch(groups)
    if not groups:
        st.info("Pick a problem and the models, then **Run**. Each model trains in a process of its own; this page "
                "keeps responding, updates every couple of seconds, and finds the runs again after a reload.")
        st.stop()
    shown = pick_group(groups)
    # While the group trains: its progress, then what the models learn, then the numbers. Progress and numbers
    # redraw every couple of seconds; once the group stops, a full rerun shows the final state.
    live(lambda: status_view(shown), REFRESH_SECONDS if shown.busy else None,
         still_active=shown.still_training if shown.busy else None)
    # The pictures redraw once a second while played through, with the progress while training, else on demand.
    pictures_refresh = PLAY_SECONDS if playing(step_key(shown.key)) else REFRESH_SECONDS if shown.busy else None
    if groups[shown.key][0].config.problem in ROTATION_PROBLEMS:
        live(lambda: rotation_filters(shown), pictures_refresh)
    else:
        live(lambda: convolution_weights(shown), pictures_refresh)
    st.subheader("Results")
    live(lambda: results_view(shown), REFRESH_SECONDS if shown.busy else None)

page()
