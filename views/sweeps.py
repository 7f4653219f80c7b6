"""Sweeps: launch a grid of runs over seeds, watch it, and compare its settings as means with 95% intervals."""
from __future__ import annotations

import importlib.util

import streamlit as st

from msr.analysis import ablation
from msr.core.choices import parse_angles
from msr.core.errors import ConfigError, MachineError
from msr.core.settings import specs
from msr.kinds import MNIST
from msr.mnist.config import PRESET_SUMMARIES, PRESETS, RunConfig, preset
from msr.runner.sweep.folder import (create_sweep, damaged_sweeps, driver_running, launch_driver, list_sweeps,
                                     load_sweep)
from msr.runner.sweep.results import groups, point_runs, unfinished
from msr.runner.sweep.spec import NOT_GRIDDED, SweepSpec, check, default_workers, parse_grid, parse_seeds
from msr.store.files import RunFolderError
from msr.store.progress import estimate_seconds, measured_speeds, measured_startup
from msr.store.reader import active_runs, list_runs
from msr.viz import ablation as va
from msr.viz import sweeps as vsweep
from msr.viz.export import frame_csv
from ui.downloads import download
from ui.live import live
from ui import present
from ui.present import chart
from ui.run_picker import runs_dir
from ui.run_view import duration

PICK_KEY = "sweeps.pick"
NOTICE_KEY = "sweeps.notice"
REFRESH_SECONDS = 3.0
RESULTS_REFRESH_SECONDS = 10.0
READY_NAME = ablation.NAME
GRIDDABLE = [name for name in specs(RunConfig) if name not in NOT_GRIDDED]

@st.cache_data(show_spinner=False)
def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def default_text(name: str, base: RunConfig) -> str:
    """What a grid field's input starts with: every choice, or the preset's value."""
    s = specs(RunConfig)[name]
    if s.choices is not None and name != "device":
        return ", ".join(map(str, s.choices))
    value = getattr(base, name)
    if isinstance(value, bool):
        return "false, true"
    return vsweep.value_text("", value)


def grid_values(name: str, text: str, base: dict) -> list:
    """A field's values, each checked on its own against the fixed settings
    (ConfigError naming the first bad one)."""
    values = parse_grid([f"{name}={text}"])[name]
    for value in values:
        message = RunConfig.from_dict({**base, name: value}).check().errors.get(name)
        if message:
            raise ConfigError(message, field=name)
    return values


def plan_line(spec: SweepSpec, speeds: dict[str, float], startup: float | None) -> str:
    """How many runs, how many at once, and how long at the speed earlier runs measured (their evaluations
    and each run's start-up included)."""
    main = [spec.config(p) for p in spec.points()]
    configs = [spec.config(p) for p in spec.search_points()] + main
    workers = spec.workers or default_workers(configs, spec.threads)
    settings = len(main) // len(spec.seeds)
    searched = len(configs) - len(main)
    head = (f"**{len(configs)} runs** ({settings} setting{'s' if settings != 1 else ''} × {len(spec.seeds)} "
            f"seed{'s' if len(spec.seeds) != 1 else ''}"
            + (f", after a rate search of {searched} short runs on validation tasks" if searched else "")
            + f"), {min(workers, len(configs))} at a time.")
    seconds = estimate_seconds(configs, speeds, workers, startup)
    if seconds is None:
        unmeasured = ", ".join(sorted({c.model_label() for c in configs} - set(speeds)))
        return head + f" Time unknown until the first run reports (no completed {unmeasured} run here yet)."
    start = (f", and {startup:.0f} s to start each run" if startup is not None
             else "; each run's start-up is not measured here yet and comes on top")
    return head + f" Estimated time: about {duration(seconds)} (at the speed earlier completed runs of the same " \
                  f"model measured here, evaluations included{start})."


def launch(spec: SweepSpec, slot) -> None:
    """Check every point, write the sweep folder, start its driver, and show it below."""
    try:
        check(spec)
        sweep = create_sweep(spec)
        launch_driver(sweep)
    except (ConfigError, MachineError, OSError) as exc:
        slot.error(f"Nothing was started: {exc}", icon="⚠️")
        return
    st.session_state[PICK_KEY] = str(sweep.path)
    st.session_state[NOTICE_KEY] = (f"Launched {spec.name or 'the sweep'} ({len(spec.points())} runs, sweep "
                                    f"`{sweep.sweep_id}`); it is followed under **Watch**.")
    st.rerun()


def workers_input(container, key: str) -> int | None:
    return container.number_input("Runs at once", min_value=1, max_value=64, value=None, step=1, key=key,
                                  placeholder="auto",
                                  help="Runs training at the same time. Empty: as many as the cores and the free "
                                       "memory allow.")


def seeds_input(container, key: str, slot_holder: dict) -> list[int] | None:
    text = container.text_input("Seeds", "0, 1, 2", key=key, help="Every setting is trained once per seed.")
    slot_holder["seeds"] = container.empty()
    try:
        return parse_seeds(text)
    except ConfigError as exc:
        slot_holder["seeds"].error(str(exc), icon="⚠️")
        return None


# ------------------------------------------------------------- new sweeps
def grid_sweep(folder: str, speeds: dict[str, float], startup: float | None) -> None:
    """A grid of one's own: fields and values over a preset, seeds, executor; its plan; Launch."""
    top = st.columns([2, 5], vertical_alignment="bottom")
    preset_name = top[0].selectbox("Start from preset", list(PRESETS), index=list(PRESETS).index("demo"),
                                   key="sweeps.preset", format_func=lambda p: f"{p}: {PRESET_SUMMARIES.get(p, '')}")
    fixed_cfg = preset(preset_name)
    chosen = top[1].multiselect("Fields to vary", GRIDDABLE, default=["arch"], key="sweeps.fields",
                                format_func=vsweep.field_label,
                                help="Each field takes a list of values; the sweep trains every combination.")
    value_cols = st.columns(3)
    texts, slots = {}, {}
    for i, name in enumerate(chosen):
        s = specs(RunConfig)[name]
        allowed = f" Allowed: {', '.join(map(str, s.choices))}." if s.choices else ""
        with value_cols[i % 3]:
            texts[name] = st.text_input(f"{s.label}: values", default_text(name, fixed_cfg),
                                        key=f"sweeps.grid.{preset_name}.{name}",
                                        help=f"Values separated by commas. {s.tooltip or ''}{allowed}")
            slots[name] = st.empty()
    fixed = st.columns(4)
    steps = fixed[0].number_input(vsweep.field_label("steps"), min_value=1, value=fixed_cfg.steps, step=1,
                                  key=f"sweeps.steps.{preset_name}", help="Outer steps of every run.")
    interval = fixed[1].number_input(vsweep.field_label("eval_interval"), min_value=1, value=fixed_cfg.eval_interval,
                                     step=1, key=f"sweeps.interval.{preset_name}")
    seeds = seeds_input(fixed[2], "sweeps.seeds", slots)
    name = fixed[3].text_input("Sweep name (optional)", "", key="sweeps.name",
                               help="Names the sweep and each of its runs.")
    how = st.columns(4)
    executors = ["local", "ray"] if ray_available() else ["local"]
    executor = how[0].radio("Executor", executors, horizontal=True, key="sweeps.executor",
                            help="local: worker processes on this machine; ray: each run a Ray task."
                                 + ("" if ray_available() else " (Ray is not installed here.)"))
    workers = workers_input(how[1], "sweeps.workers")
    log_spec = specs(RunConfig)["log_to"]
    log_to = how[2].selectbox(log_spec.label, list(log_spec.choices), key="sweeps.log_to",
                              help=f"Every run of the sweep: {log_spec.tooltip}")
    general = st.empty()
    base = fixed_cfg.replace(steps=int(steps), eval_interval=int(interval), runs_dir=folder,
                             name=name.strip(), log_to=log_to).to_dict()
    grid, bad = {}, False
    for field_name in chosen:
        try:
            grid[field_name] = grid_values(field_name, texts[field_name], base)
        except ConfigError as exc:
            slots[field_name].error(str(exc), icon="⚠️")
            bad = True
    spec = None
    if not bad and seeds is not None:
        spec = SweepSpec(base=base, grid=grid, seeds=seeds, executor=executor, workers=workers,
                         name=name.strip())
        general.markdown(plan_line(spec, speeds, startup))
    else:
        general.caption("Fix the values marked above to see how many runs this is.")
    if st.button("Launch sweep", type="primary", key="sweeps.launch", disabled=spec is None,
                 icon=":material/rocket_launch:"):
        launch(spec, general)


def ready_sweep(folder: str, speeds: dict[str, float], startup: float | None) -> None:
    """The ready-made ablation: first layer × head, each setting at its own inner rate."""
    st.markdown(
        "MSR's models differ from plain MAML in two places: the **first layer** (a symmetry matrix over the conv "
        "kernel) and the **head** (a dense-U head adapts a few latent values, a plain head every weight). This "
        "sweep varies them apart, first layer (plain, Kronecker-U, dense-U) × head (plain, dense-U), on upright "
        "supports and rotated queries (rotation mode *query*, from the *demo* preset). Each setting first picks "
        "its own inner rate on validation tasks drawn from the training images, so no model is judged at a rate "
        "that suits another. Accuracy at 0° and on rotated queries are read apart: a gain that is as large at 0° "
        "is not about rotation.")
    cols = st.columns(4)
    ready_slots: dict = {}
    angles_text = cols[0].text_input("Angles (degrees)", ", ".join(f"{a:g}" for a in ablation.ANGLES),
                                     key="sweeps.ready.angles",
                                     help="The rotations queries are drawn from; must include 0 and another angle.")
    ready_slots["angles"] = cols[0].empty()
    ready_seeds = seeds_input(cols[1], "sweeps.ready.seeds", ready_slots)
    ready_steps = cols[2].number_input(vsweep.field_label("steps"), min_value=1, value=ablation.STEPS, step=1,
                                       key="sweeps.ready.steps")
    ready_workers = workers_input(cols[3], "sweeps.ready.workers")
    ready_general = st.empty()
    ready_spec = None
    try:
        angles = parse_angles(angles_text)
        if not any(a % 360 for a in angles):
            raise ConfigError("give at least one angle besides 0, e.g. 0, 90, 180, 270")
        if ready_seeds is not None:
            ready_spec = ablation.ablation_spec(folder, ready_seeds, angles, int(ready_steps),
                                                workers=ready_workers)
            RunConfig.from_dict(ready_spec.base).check().raise_any()
    except (ValueError, ConfigError) as exc:  # ConfigError is a ValueError
        ready_slots["angles"].error(str(exc), icon="⚠️")
        ready_spec = None
    if ready_spec is not None:
        ready_general.markdown(plan_line(ready_spec, speeds, startup))
    if st.button(f"Launch “{READY_NAME}”", type="primary", key="sweeps.ready.launch",
                 disabled=ready_spec is None, icon=":material/rocket_launch:"):
        launch(ready_spec, ready_general)


def start_a_sweep(folder: str, folded: bool) -> None:
    """The two ways to start one: a grid of one's own, or the ready-made ablation. ``folded``: while the
    sweep watched trains, they fold away below it, so its progress is what a room sees."""
    if folded:
        with st.expander("Start another sweep", icon=":material/add:"):
            _start_a_sweep(folder)
    else:
        st.subheader("Start a sweep")
        _start_a_sweep(folder)


def _start_a_sweep(folder: str) -> None:
    training = active_runs(folder)
    history = list_runs(folder, kind=MNIST)
    speeds, startup = measured_speeds(history), measured_startup(history)  # what the time estimates go by
    if training:
        st.caption(f"{len(training)} run(s) training on this machine now; a new sweep shares the CPU with them.")
    # Keyed, so the tab a sweep was launched from stays open when the page reruns.
    grid_tab, ready_tab = st.tabs(["Define a grid", READY_NAME], key="sweeps.tab")
    with grid_tab:
        grid_sweep(folder, speeds, startup)
    with ready_tab:
        ready_sweep(folder, speeds, startup)


# ------------------------------------------------------------------ watch
def busy(sweep, runs) -> bool:
    """Something of the sweep trains, or its driver is still running it
    (starting, or about to start, its next points)."""
    return any(r.active for r in runs) or driver_running(sweep)


def counts_line(runs) -> str:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.state] = counts.get(r.state, 0) + 1
    return " · ".join(f"{n} {vsweep.STATE_TEXT.get(s, s)}" for s, n in counts.items())


def draw_progress(path: str, fields: list[str], shown: dict) -> None:
    sweep = load_sweep(path)
    runs = point_runs(sweep, search=True)
    shown["busy"] = busy(sweep, runs)
    done = sum(r.step for r in runs)
    total = sum(r.total or sweep.config(p).steps for p, r in zip(sweep.spec.all_points(), runs))
    bar, side = st.columns([6, 1], vertical_alignment="bottom")
    bar.progress(min(1.0, done / total) if total else 0.0, text=f"{counts_line(runs)} · {done} / {total} steps")
    with side:
        if shown["busy"]:
            stopping = sweep.stop_requested()
            if st.button("Stopping…" if stopping else "Stop", key="sweeps.stop", disabled=stopping,
                         icon=":material/stop_circle:", width="stretch",
                         help="Stop every running point after its current step (each keeps what it recorded) "
                              "and start no more."):
                sweep.request_stop()
                st.rerun(scope="fragment")
        elif unfinished(sweep):
            if st.button("Resume", key="sweeps.resume", icon=":material/play_arrow:", width="stretch",
                         help="Finish the points not completed: new ones start, stopped ones continue from "
                              "their last evaluation."):
                launch_driver(sweep)
                st.rerun()
    if not shown["busy"] and unfinished(sweep):
        st.caption("Nothing of this sweep is training: it was stopped, or its driver ended (a restart of the "
                   "machine). Resume finishes the rest.")
    if sweep.spec.rate_search:
        draw_rates(sweep)
    present.table(vsweep.progress_frame(runs, fields), hide_index=True, width="stretch",
                  column_config={
                     vsweep.SEED: st.column_config.NumberColumn(width=50),
                     vsweep.STATE: st.column_config.TextColumn(width=90),
                     vsweep.STEPS: st.column_config.TextColumn(width=80, help="Steps done / steps asked for."),
                     vsweep.PROGRESS: st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent",
                                                                  width=100),
                     vsweep.ACC: st.column_config.NumberColumn(format="%.3f", width=90,
                                                           help="At the run's last evaluation."),
                     vsweep.RUN: st.column_config.TextColumn(width=230, help="The run's folder (see the Runs page)."),
                     vsweep.STAGE: st.column_config.TextColumn(
                         width=190, help="Rate search: a short run at one candidate inner rate, scored on "
                                         "validation tasks (its accuracy column is validation accuracy). Result: a "
                                         "run at the chosen rate, scored on test tasks."),
                 })


def draw_rates(sweep) -> None:
    """The inner rate each setting got, and every candidate's validation accuracy."""
    if sweep.rates is None:
        st.caption(f"Choosing each setting's inner rate among {', '.join(f'{r:g}' for r in sweep.spec.rate_search['values'])}"
                   f": {sweep.spec.rate_search['steps']} steps each, scored on validation tasks from the training "
                   "images. The runs of the sweep proper start once every setting has its rate.")
        return
    st.markdown("**Inner rates chosen on validation tasks** (final validation accuracy of each candidate; empty: "
                "the run diverged or failed)")
    rates = va.rates_frame(sweep.rates, sweep.spec.settings())
    present.table(rates, hide_index=True, width="stretch",
                  column_config={c: st.column_config.NumberColumn(format="%.3f") for c in rates.columns
                                 if c not in ("model", "chosen")})


def sweep_guarded(draw, path: str, *args) -> None:
    """draw(path, ...), with a sweep folder damaged meanwhile said in one line."""
    try:
        draw(path, *args)
    except RunFolderError as exc:
        st.error(str(exc))


def watched_trains(sweeps: dict) -> bool:
    """Whether the sweep the Watch picker shows (the one picked, else the newest) trains now; a pick that is
    no longer listed is dropped."""
    path = st.session_state.get(PICK_KEY)
    if path not in sweeps:
        st.session_state.pop(PICK_KEY, None)
        path = next(iter(sweeps), None)
    return path is not None and busy(sweeps[path], point_runs(sweeps[path]))


def watch(folder: str, sweeps: dict, initial: bool) -> tuple[str, list[str], bool] | None:
    """Pick a sweep, and follow its progress with Stop and Resume; (its folder, its grid fields, whether it
    was busy when drawn), or None. ``initial``: whether the sweep picked now trains."""
    st.subheader("Watch")
    damaged = damaged_sweeps(folder)
    if damaged:
        st.warning(f"{len(damaged)} sweep folder{'s' if len(damaged) > 1 else ''} cannot be read and "
                   f"{'are' if len(damaged) > 1 else 'is'} left out: "
                   + "; ".join(f"`{path.name}`: {why}" for path, why in damaged[:5])
                   + (f"; and {len(damaged) - 5} more" if len(damaged) > 5 else ""))
    if not sweeps:
        st.info(f"No sweep in `{folder}/` yet. Define one above.")
        return None

    def sweep_label(path: str) -> str:
        s = sweeps[path]
        grid = " × ".join(vsweep.field_label(f) for f in s.spec.grid) or "seeds only"
        return f"{s.spec.name or 'sweep'} · {s.sweep_id} · {len(s.spec.points())} runs · {grid}"

    path = st.selectbox("Sweep", list(sweeps), key=PICK_KEY, format_func=sweep_label)
    fields = list(sweeps[path].spec.grid)
    shown = {"busy": False}
    live(lambda: sweep_guarded(draw_progress, path, fields, shown), REFRESH_SECONDS if initial else None,
         still_active=(lambda: shown["busy"]) if initial else None)
    return path, fields, initial


# ---------------------------------------------------------------- results
def draw_results(path: str, fields: list[str]) -> None:
    sweep = load_sweep(path)
    runs = point_runs(sweep, with_metrics=True)
    if not any(r.metrics for r in runs):
        st.info("No evaluation recorded yet; results appear here as the runs report.")
        return
    if ablation.applies(sweep):
        draw_ablation(sweep)
    table = vsweep.groups_frame([g.summary() for g in groups(sweep)], fields)
    st.markdown("**Settings compared** (completed runs; mean over seeds ± the 95% interval of that mean)")
    if table[vsweep.N].sum() == 0:
        st.caption("No run has completed yet; this table fills in as they do.")
    else:
        if vsweep.clearly_best(table) is None and table[vsweep.ACC].notna().sum() > 1:
            st.caption("No setting is clearly best: the 95% intervals of their accuracy overlap (or a setting has "
                       "fewer than two completed runs).")
        present.table(table, hide_index=True, width="stretch", column_config={
            vsweep.BEST: st.column_config.TextColumn(width=70, help="The setting whose 95% interval of test "
                                                     "accuracy lies above every other setting's."),
            vsweep.N: st.column_config.NumberColumn(width=80, help=f"Completed runs of {len(sweep.spec.seeds)} seeds."),
            vsweep.ACC: st.column_config.NumberColumn(format="%.3f"),
            vsweep.ACC_CI: st.column_config.NumberColumn(format="%.3f", help="Empty with fewer than two runs."),
            vsweep.LOSS: st.column_config.NumberColumn(format="%.4f"),
            vsweep.LOSS_CI: st.column_config.NumberColumn(format="%.4f", help="Empty with fewer than two runs."),
        })

    curves = vsweep.curves_frame(runs)
    order = list(dict.fromkeys(vsweep.group_label(p.setting) for p in sweep.spec.points()))
    each = st.toggle("Show each seed instead of the mean", key="sweeps.each_seed")
    left, right = st.columns(2)
    for col, metric in ((left, "test_acc"), (right, "test_loss")):
        chart(vsweep.curves_chart(curves, metric, order, vsweep.legend_title(fields), each_seed=each), col)

    finals = vsweep.finals_frame(runs, fields)
    if len(fields) >= 2:
        st.markdown("**Final test accuracy over two fields**")
        pick = st.columns(4)
        key = f"sweeps.heat.{sweep.sweep_id}"
        rows = pick[0].selectbox("Rows", fields, index=0, key=f"{key}.rows", format_func=vsweep.field_label)
        cols = pick[1].selectbox("Columns", [f for f in fields if f != rows], index=0, key=f"{key}.cols",
                                 format_func=vsweep.field_label)
        where = {}
        for i, other in enumerate(f for f in fields if f not in (rows, cols)):
            values = sweep.spec.grid[other]
            choice = pick[2 + i % 2].selectbox(vsweep.field_label(other), ["average"] + list(range(len(values))),
                                               key=f"{key}.{other}",
                                               format_func=lambda v, o=other, vals=values: "average over all"
                                               if v == "average" else vsweep.value_text(o, vals[v]))
            if choice != "average":
                where[vsweep.field_label(other)] = values[choice]
        heat = vsweep.heat_frame(finals, vsweep.field_label(rows), vsweep.field_label(cols), where)
        chart(vsweep.heat_chart(heat, rows, cols))

    download("Final numbers per run (CSV)", frame_csv(finals), f"{sweep.sweep_id}-runs.csv", "text/csv",
             key="sweeps.csv")


def draw_ablation(sweep) -> None:
    """Which change carries the gain on rotated queries, and is it about rotation?"""
    result = ablation.ablation(sweep)
    st.markdown("**Where the gain comes from** (final evaluation of completed runs; accuracy at 0° and on rotated "
                "queries apart; gains over the plain model paired by seed, mean ± 95% interval)")
    st.info(ablation.summary(result), icon=":material/science:")
    frame = va.accuracy_frame(result)
    if len(frame):
        chart(va.accuracy_chart(frame))
    settings = va.settings_frame(result)
    present.table(settings, hide_index=True, width="stretch", column_config={
        "inner rate": st.column_config.NumberColumn(format="%g", help="Chosen on validation tasks."),
        "accuracy at 0°": st.column_config.TextColumn(help="Mean over seeds ± the 95% interval of that mean."),
        "accuracy rotated": st.column_config.TextColumn(help="Mean over seeds ± the 95% interval of that mean."),
        "rotation-specific gain": st.column_config.TextColumn(
            help="The gain on rotated queries minus the gain at 0°, seed by seed: what rotation adds."),
    })
    factors = va.factors_frame(result)
    if len(factors):
        st.markdown("**Each change on its own** (averaged over the other layer's choices)")
        present.table(factors, hide_index=True, width="stretch")



def page() -> None:
    st.title("Sweeps")
    st.caption("A sweep trains every setting of a grid once per seed, each an ordinary run (also listed on the Runs "
               "page), and compares the settings by their mean over seeds. It runs in processes of its own: leave "
               "this page or restart the app and it keeps going.")
    folder = runs_dir()
    if NOTICE_KEY in st.session_state:
        st.success(st.session_state.pop(NOTICE_KEY), icon=":material/rocket_launch:")
    sweeps = {str(s.path): s for s in list_sweeps(folder)}
    watched_first = watched_trains(sweeps)
    if not watched_first:
        start_a_sweep(folder, folded=False)
    watched = watch(folder, sweeps, watched_first)
    if watched_first:
        start_a_sweep(folder, folded=True)
    if watched is None:
        st.stop()
    path, fields, initial = watched
    st.subheader("Results")
    live(lambda: sweep_guarded(draw_results, path, fields), RESULTS_REFRESH_SECONDS if initial else None)


page()
