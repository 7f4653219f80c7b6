"""The Train page's settings form: one widget per RunConfig field.

Widget values live in session state under ``train.w.<field>`` and are copied
to ``train.values`` on submit, because Streamlit forgets a widget's value once
its page is left; the copy brings the form back as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import streamlit as st

from msr.config import PRESETS, ConfigError, RunConfig
from msr.data import ROTATION_MODES, SOURCES, DataError, MnistSplits, load_source, parse_angles
from msr.meta import ENGINES, LR_MODES, OUTER_OPTIMIZERS
from msr.models import ARCHITECTURES

VALUES_KEY = "train.values"
PRESET_KEY = "train.preset"
DEFAULT_PRESET = "demo"
ANGLES_TEXT = "angles_text"  # the explicit angle list as typed; empty means count × step

PRESET_HELP = {"seed": "the student project's defaults (1000 steps, 10-way 1-shot)",
               "demo": "a quick run that learns visibly in about a minute on a CPU"}

# RunConfig.validate() messages start with what they are about; the first
# matching prefix names the widget that shows the message.
ERROR_FIELDS: list[tuple[str, str]] = [
    ("the angle list", ANGLES_TEXT), ("angles must", ANGLES_TEXT), ("angle list", ANGLES_TEXT),
    ("cannot parse angle list", ANGLES_TEXT), ("angle count", "n_angles"), ("angle step", "angle_step"),
    ("unknown architecture", "arch"), ("unknown rotation mode", "rotation"), ("rotation mode", "rotation"),
    ("ways", "ways"), ("shots + queries", "queries"), ("shots+queries", "queries"), ("shots", "shots"),
    ("queries", "queries"), ("tasks per step", "tasks_per_step"), ("inner learning rate", "inner_lr"),
    ("outer learning rate", "outer_lr"), ("unknown lr mode", "lr_mode"), ("inner steps", "inner_steps"),
    ("unknown outer optimizer", "outer_opt"), ("steps", "steps"), ("evaluation interval", "eval_interval"),
    ("evaluation tasks", "eval_tasks"), ("unknown engine", "engine"), ("unknown device", "device"),
    ("device", "device"), ("seed", "seed"), ("unknown data source", "data_source"),
    ("channels", "channels"), ("latent size", "latent"), ("conv latent size", "conv_latent"),
    ("checkpoint budget", "checkpoint_budget_mb"),
]


def field_for_error(message: str, explicit_angles: bool = True) -> str | None:
    """The form field a validation message is about (None: not one field)."""
    if message.startswith("at most 360 angles"):
        return ANGLES_TEXT if explicit_angles else "n_angles"
    for prefix, name in ERROR_FIELDS:
        if message.startswith(prefix):
            return name
    return None


def widget_key(name: str) -> str:
    return f"train.w.{name}"


def preset_values(name: str) -> dict:
    """Every form field, as the preset (over RunConfig's defaults) sets it."""
    cfg = RunConfig(**PRESETS[name])
    values = {f.name: getattr(cfg, f.name) for f in fields(RunConfig) if f.name not in ("angles", "runs_dir")}
    values[ANGLES_TEXT] = ", ".join(f"{a:g}" for a in cfg.angles) if cfg.angles is not None else ""
    if values["device"] == "cuda" and not cuda_available():
        values["device"] = "auto"
    return values


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def device_options() -> list[str]:
    return ["auto", "cpu"] + (["cuda"] if cuda_available() else [])


def _values() -> dict:
    if VALUES_KEY not in st.session_state:
        st.session_state[VALUES_KEY] = preset_values(DEFAULT_PRESET)
    return st.session_state[VALUES_KEY]


def apply_preset() -> None:
    """Callback of the preset button (runs before the widgets exist, so it may set them)."""
    values = preset_values(st.session_state.get(PRESET_KEY, DEFAULT_PRESET))
    st.session_state[VALUES_KEY] = values
    for name, value in values.items():
        st.session_state[widget_key(name)] = value


def _restore_widgets() -> None:
    for name, value in _values().items():
        key = widget_key(name)
        if key not in st.session_state:
            st.session_state[key] = value


@dataclass
class FormResult:
    submitted: bool
    values: dict
    slots: dict  # field name -> placeholder right under its widget
    general: object  # placeholder for messages about no single field


def render_presets() -> None:
    cols = st.columns([4, 1, 3], vertical_alignment="bottom")
    cols[0].selectbox("Preset", list(PRESETS), key=PRESET_KEY,
                      index=list(PRESETS).index(DEFAULT_PRESET),
                      format_func=lambda p: f"{p}: {PRESET_HELP.get(p, '')}")
    cols[1].button("Fill the form", on_click=apply_preset, key="train.apply_preset",
                   help="Replace every field below with the preset's values.")


def render_form(disabled_reason: str | None = None) -> FormResult:
    """Draw the form; widgets in it report nothing until Start is pressed."""
    _restore_widgets()
    slots: dict = {}

    def slot(name: str) -> None:
        slots[name] = st.empty()

    k = widget_key
    with st.form("train.form", border=True):
        st.markdown("**Model and data**")
        c = st.columns(4)
        with c[0]:
            st.selectbox("Architecture", list(ARCHITECTURES), key=k("arch"),
                         help="\n\n".join(f"**{a.name}**: {a.summary}" for a in ARCHITECTURES.values()))
            slot("arch")
        with c[1]:
            st.selectbox("Data source", list(SOURCES), key=k("data_source"),
                         help="bundled: the 5,000-digit sample shipped with the app (no network). "
                              "mnist: full MNIST from the data folder.")
            slot("data_source")
        with c[2]:
            st.text_input("Data folder (mnist only)", key=k("data_dir"))
            slot("data_dir")
        with c[3]:
            st.checkbox("Download MNIST if missing", key=k("download"),
                        help="Only with data source 'mnist'; needs a network connection.")
            slot("download")

        st.markdown("**Rotations**")
        c = st.columns(4)
        with c[0]:
            st.number_input("Angle count", key=k("n_angles"), step=1,
                            help="Angles 0, s, 2s, … (n−1)s; the student project used 5.")
            slot("n_angles")
        with c[1]:
            st.number_input("Angle step (degrees)", key=k("angle_step"), step=1.0, format="%g")
            slot("angle_step")
        with c[2]:
            st.text_input("…or an explicit angle list", key=k(ANGLES_TEXT), placeholder="e.g. 0, 90, 180, 270",
                          help="Degrees separated by commas. When filled, it replaces count × step.")
            slot(ANGLES_TEXT)
        with c[3]:
            st.selectbox("Rotation mode", list(ROTATION_MODES), key=k("rotation"),
                         help="mixed: every image its own random angle. per-task: one angle per task. "
                              "query: supports upright, queries rotated (needs angle 0).")
            slot("rotation")

        st.markdown("**Tasks**")
        c = st.columns(4)
        for col, (name, label, help_) in zip(c, [
            ("ways", "Ways (classes per task)", "2 to 10"),
            ("shots", "Shots (support images per class)", None),
            ("queries", "Queries per class", None),
            ("tasks_per_step", "Tasks per step", "Tasks in one meta-batch."),
        ]):
            with col:
                st.number_input(label, key=k(name), step=1, help=help_)
                slot(name)

        st.markdown("**Learning**")
        c = st.columns(4)
        with c[0]:
            st.number_input("Inner learning rate", key=k("inner_lr"), step=0.01, format="%g",
                            help="The starting value when the rate is learned.")
            slot("inner_lr")
            st.selectbox("Inner rate mode", list(LR_MODES), key=k("lr_mode"),
                         help="fixed; per_layer: one learned rate per adapted tensor; "
                              "per_param: one learned rate per entry (Meta-SGD).")
            slot("lr_mode")
        with c[1]:
            st.number_input("Outer learning rate", key=k("outer_lr"), step=1e-4, format="%g")
            slot("outer_lr")
            st.selectbox("Outer optimizer", list(OUTER_OPTIMIZERS), key=k("outer_opt"))
            slot("outer_opt")
        with c[2]:
            st.number_input("Inner steps", key=k("inner_steps"), step=1)
            slot("inner_steps")
            st.checkbox("First order", key=k("first_order"),
                        help="Drop the second-order terms of the meta-gradient: faster, less exact.")
            slot("first_order")
        with c[3]:
            st.selectbox("Engine", list(ENGINES), key=k("engine"),
                         help="func: all tasks at once (fast). higher: one task at a time, the authors' way.")
            slot("engine")
            st.selectbox("Device", device_options(), key=k("device"),
                         help="'cuda' is offered only when a CUDA GPU is available.")
            slot("device")

        st.markdown("**Schedule**")
        c = st.columns(4)
        for col, (name, label, help_) in zip(c, [
            ("steps", "Outer steps", None),
            ("eval_interval", "Evaluate every … steps", None),
            ("eval_tasks", "Test tasks per evaluation", "At least 2, for the 95% interval."),
            ("seed", "Seed", "The same seed gives the same run."),
        ]):
            with col:
                st.number_input(label, key=k(name), step=1, help=help_)
                slot(name)

        with st.expander("Model size, checkpoints and name"):
            c = st.columns(5)
            for col, (name, label, step, fmt) in zip(c, [
                ("channels", "Conv channels", 1, None),
                ("latent", "Latent size (dense-U linear)", 1, None),
                ("conv_latent", "Latent size (dense-U conv)", 1, None),
                ("checkpoint_budget_mb", "Checkpoint budget (MB)", 10.0, "%g"),
            ]):
                with col:
                    st.number_input(label, key=k(name), step=step, format=fmt)
                    slot(name)
            with c[4]:
                st.text_input("Run name (optional)", key=k("name"))
                slot("name")

        general = st.empty()
        submitted = st.form_submit_button("Start run", type="primary", disabled=disabled_reason is not None,
                                          help=disabled_reason)
    values = {name: st.session_state.get(widget_key(name)) for name in _values()}
    if submitted:
        st.session_state[VALUES_KEY] = dict(values)
    return FormResult(submitted, values, slots, general)


class FormError(ConfigError):
    """Every bad field at once: ``errors`` maps a field (None: no single
    field) to its one-line message."""

    def __init__(self, errors: dict[str | None, str]):
        super().__init__(next(iter(errors.values())))
        self.errors = errors


def build_config(values: dict, runs_dir: str) -> RunConfig:
    """A validated RunConfig from the form's values, or FormError naming each
    bad field. validate() stops at the first problem, so each bad field is
    put back to its default and the rest checked again."""
    defaults = RunConfig()
    errors: dict[str | None, str] = {}
    text = (values.get(ANGLES_TEXT) or "").strip()
    angles = None
    if text:
        try:
            angles = parse_angles(text)
        except ValueError as exc:
            errors[ANGLES_TEXT] = str(exc)
    changes = {k: v for k, v in values.items() if k != ANGLES_TEXT}
    changes["name"] = (changes.get("name") or "").strip()
    changes["data_dir"] = (changes.get("data_dir") or "").strip() or "data"
    for _ in range(len(fields(RunConfig)) + 1):
        try:
            config = RunConfig(**changes, angles=angles, runs_dir=runs_dir).validate(cuda_available=cuda_available())
            break
        except ConfigError as exc:
            name = field_for_error(str(exc), explicit_angles=angles is not None)
            if name is None or name in errors:
                errors.setdefault(name, str(exc))
                break
            errors[name] = str(exc)
            if name == ANGLES_TEXT:
                angles = None
            else:
                changes[name] = getattr(defaults, name)
    if errors:
        raise FormError(errors)
    return config


def load_data(config: RunConfig) -> MnistSplits:
    """The run's data, read now so a missing folder or too few images per
    class is reported next to the form instead of failing the run later."""
    try:
        data = load_source(config.data_source, config.data_dir, config.download)
    except DataError as exc:
        message = str(exc).replace("add --download", "tick 'Download MNIST if missing'")
        raise FormError({"data_dir" if config.data_source == "mnist" else "data_source": message}) from None
    smallest = data.min_per_class()
    if config.shots + config.queries > smallest:
        raise FormError({"queries": f"shots + queries = {config.shots + config.queries} exceeds the {smallest} "
                                    f"images of the smallest class of this data; allowed: at most {smallest}"})
    return data
