"""The Train page's settings form: one widget per RunConfig field.

Widget values live in session state under ``train.w.<field>`` and are copied
to ``train.values`` on submit, because Streamlit forgets a widget's value once
its page is left; the copy brings the form back as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import streamlit as st

from msr.config import DEVICES, PRESET_SUMMARIES, PRESETS, ConfigError, RunConfig
from msr.data import DataError, MnistSplits, load_source, parse_angles
from msr.models import ARCHITECTURES
from msr.settings import spec

VALUES_KEY = "train.values"
PRESET_KEY = "train.preset"
DEFAULT_PRESET = "demo"
ANGLES_TEXT = "angles_text"  # the explicit angle list as typed; empty means count × step


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
    return [d for d in DEVICES if d != "cuda" or cuda_available()]


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


def request_prefill(config: RunConfig) -> None:
    """Fill the Train form with a run's settings the next time it is drawn
    ("new run from these settings"); the run's name is left for the new one."""
    values = {f.name: getattr(config, f.name) for f in fields(RunConfig) if f.name not in ("angles", "runs_dir")}
    values[ANGLES_TEXT] = ", ".join(f"{a:g}" for a in config.angles) if config.angles is not None else ""
    values["name"] = ""
    if values["device"] == "cuda" and not cuda_available():
        values["device"] = "auto"
    st.session_state[VALUES_KEY] = values
    for name in values:
        st.session_state.pop(widget_key(name), None)


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
                      format_func=lambda p: f"{p}: {PRESET_SUMMARIES.get(p, '')}")
    cols[1].button("Fill the form", on_click=apply_preset, key="train.apply_preset",
                   help="Replace every field below with the preset's values.")


# The form's layout: sections of four columns, each column a stack of fields.
# Labels, tooltips and choices come from the fields themselves (msr.config).
SECTIONS: list[tuple[str, list[list[str]]]] = [
    ("Model and data", [["arch"], ["data_source"], ["data_dir"], ["download"]]),
    ("Rotations", [["n_angles"], ["angle_step"], [ANGLES_TEXT], ["rotation"]]),
    ("Tasks", [["ways"], ["shots"], ["queries"], ["tasks_per_step"]]),
    ("Learning", [["inner_lr", "lr_mode"], ["outer_lr", "outer_opt"], ["inner_steps", "first_order"],
                  ["engine", "device"]]),
    ("Schedule", [["steps"], ["eval_interval"], ["eval_tasks"], ["seed"]]),
]
MORE = ("Model size, checkpoints and name", [["channels"], ["latent"], ["conv_latent"], ["checkpoint_budget_mb"],
                                             ["name"]])
NOT_IN_FORM = ("runs_dir",)  # the app's runs folder (ui.run_picker), not a setting of one run
STEP_SIZES = {"angle_step": 1.0, "inner_lr": 0.01, "outer_lr": 1e-4, "checkpoint_budget_mb": 10.0}
PLACEHOLDERS = {ANGLES_TEXT: "e.g. 0, 90, 180, 270"}


def form_fields() -> list[str]:
    """Every field the form shows, in order (the angle list as ANGLES_TEXT)."""
    return [name for _, columns in [*SECTIONS, MORE] for column in columns for name in column]


def _widget(name: str) -> None:
    """The widget of one RunConfig field, as its Spec and default describe it."""
    s = spec(RunConfig, "angles" if name == ANGLES_TEXT else name)
    key, tip = widget_key(name), s.tooltip
    default = getattr(RunConfig, name, "")
    if name == "arch":
        tip = "\n\n".join(f"**{a.name}**: {a.summary}" for a in ARCHITECTURES.values())
    if name == "device":
        st.selectbox(s.label, device_options(), key=key, help=tip)
    elif s.choices is not None:
        st.selectbox(s.label, list(s.choices), key=key, help=tip)
    elif isinstance(default, bool):
        st.checkbox(s.label, key=key, help=tip)
    elif name == ANGLES_TEXT or isinstance(default, str):
        st.text_input(s.label, key=key, help=tip, placeholder=PLACEHOLDERS.get(name))
    elif isinstance(default, float):
        st.number_input(s.label, key=key, help=tip, step=STEP_SIZES.get(name, 1.0), format="%g")
    else:
        st.number_input(s.label, key=key, help=tip, step=1)


def render_form(disabled_reason: str | None = None) -> FormResult:
    """Draw the form; widgets in it report nothing until Start is pressed."""
    _restore_widgets()
    slots: dict = {}

    def section(columns: list[list[str]]) -> None:
        for col, names in zip(st.columns(len(columns) if len(columns) > 4 else 4), columns):
            with col:
                for name in names:
                    _widget(name)
                    slots[name] = st.empty()  # this field's message goes right under it

    with st.form("train.form", border=True):
        for title, columns in SECTIONS:
            st.markdown(f"**{title}**")
            section(columns)
        with st.expander(MORE[0]):
            section(MORE[1])
        general = st.empty()
        submitted = st.form_submit_button("Start run", type="primary", disabled=disabled_reason is not None,
                                          help=disabled_reason)
    values = {name: st.session_state.get(widget_key(name)) for name in _values()}
    if submitted:
        st.session_state[VALUES_KEY] = dict(values)
    return FormResult(submitted, values, slots, general)


def build_config(values: dict, runs_dir: str) -> RunConfig:
    """A validated RunConfig from the form's values, or ConfigError whose
    ``errors`` name every bad field by its form field (the angle list's
    under ANGLES_TEXT; None: no single field)."""
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
    config = RunConfig(**changes, angles=angles, runs_dir=runs_dir)
    for name, message in config.check(cuda_available=cuda_available(), check_resources=not errors).errors.items():
        errors.setdefault(ANGLES_TEXT if name == "angles" else name, message)
    if errors:
        raise ConfigError.of(errors)
    return config


def load_data(config: RunConfig) -> MnistSplits:
    """The run's data, read now so a missing folder or too few images per
    class is reported next to the form instead of failing the run later."""
    try:
        data = load_source(config.data_source, config.data_dir, config.download)
    except DataError as exc:
        message = str(exc).replace("add --download", "tick 'Download MNIST if missing'")
        raise ConfigError(message, field="data_dir" if config.data_source == "mnist" else "data_source") from None
    smallest = data.min_per_class()
    if config.shots + config.queries > smallest:
        raise ConfigError(f"shots + queries = {config.shots + config.queries} exceeds the {smallest} images of the "
                          f"smallest class of this data; allowed: at most {smallest}", field="queries")
    return data
