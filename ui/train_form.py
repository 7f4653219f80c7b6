"""The Train page's settings form: one widget per RunConfig field.

Widget values live in session state under ``train.w.<field>`` and are copied
to ``train.values`` on submit, because Streamlit forgets a widget's value once
its page is left; the copy brings the form back as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import streamlit as st

from msr.core.choices import ARCHITECTURES, CONV_LAYERS, DEVICES, FULL_MNIST, HEAD_LAYERS, parse_angles
from msr.core.data import DataError, MnistSplits, load_source
from msr.core.errors import ConfigError, MachineError
from msr.core.settings import spec
from msr.mnist.config import PRESET_SUMMARIES, PRESETS, RunConfig
from msr.runner.admission import check_device, check_memory, cuda_available
from msr.runner.launch import start_run
from ui.run_picker import follow

VALUES_KEY = "train.values"
PRESET_KEY = "train.preset"  # the preset the form holds (None: settings of one's own or of a run)
PRESET_WIDGET = "train.preset.select"
SHOW_FORM_KEY = "train.show_form"  # True: the form is shown even while a run is being followed
DEFAULT_PRESET = "demo"
ANGLES_TEXT = "angles_text"  # the explicit angle list as typed; empty means count × step


def widget_key(name: str) -> str:
    return f"train.w.{name}"


def config_values(cfg: RunConfig) -> dict:
    """Every form field as ``cfg`` sets it (a device this machine lacks becomes auto)."""
    values = {f.name: getattr(cfg, f.name) for f in fields(RunConfig) if f.name not in ("angles", "runs_dir")}
    values[ANGLES_TEXT] = ", ".join(f"{a:g}" for a in cfg.angles) if cfg.angles is not None else ""
    if values["device"] == "cuda" and not cuda_available():
        values["device"] = "auto"
    return values


def preset_values(name: str) -> dict:
    """Every form field, as the preset (over RunConfig's defaults) sets it."""
    return config_values(RunConfig(**PRESETS[name]))


def device_options() -> list[str]:
    return [d for d in DEVICES if d != "cuda" or cuda_available()]


def _values() -> dict:
    if VALUES_KEY not in st.session_state:
        st.session_state[VALUES_KEY] = preset_values(DEFAULT_PRESET)
    return st.session_state[VALUES_KEY]


def apply_preset() -> None:
    """The preset select's callback: choosing a preset fills the form at once
    (a callback runs before the widgets exist, so it may set them)."""
    st.session_state[PRESET_KEY] = st.session_state.get(PRESET_WIDGET)
    if st.session_state[PRESET_KEY] in PRESETS:
        _set_fields(preset_values(st.session_state[PRESET_KEY]))


def request_prefill(config: RunConfig) -> None:
    """Fill the Train form with a run's settings the next time it is drawn
    ("new run from these settings"); the run's name is left for the new one."""
    values = {**config_values(config), "name": ""}
    _set_fields(values)
    st.session_state[PRESET_KEY] = None  # the form no longer holds a preset's values
    st.session_state[SHOW_FORM_KEY] = True


def _set_fields(values: dict) -> None:
    st.session_state[VALUES_KEY] = values
    for name in values:
        st.session_state.pop(widget_key(name), None)  # _restore_widgets fills them from the values


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
    """The preset select: choosing one fills the form (its summary beside it).
    The choice is kept under a key of its own: a widget's state is dropped
    while the form is folded away, and it must not come back as the default."""
    if PRESET_KEY not in st.session_state:
        st.session_state[PRESET_KEY] = DEFAULT_PRESET
    st.session_state[PRESET_WIDGET] = st.session_state[PRESET_KEY]
    left, right = st.columns([1.4, 3], vertical_alignment="bottom")  # wide enough for "your own settings"
    left.selectbox("Preset", list(PRESETS), key=PRESET_WIDGET, on_change=apply_preset, placeholder="your own settings",
                   help="Choosing a preset fills every field below with its values.")
    chosen = st.session_state[PRESET_KEY]
    right.caption(PRESET_SUMMARIES.get(chosen, "") if chosen else
                  "The form holds settings of your own or of a run; choosing a preset replaces them.")


# The form's layout: sections of four columns, each column a stack of fields.
# Labels, tooltips and choices come from the fields themselves (msr.mnist.config).
SECTIONS: list[tuple[str, list[list[str]]]] = [
    ("Model and data", [["arch", "data_source"], ["conv_layer", "data_dir"], ["head_layer", "download"]]),
    ("Rotations", [["n_angles"], ["angle_step"], [ANGLES_TEXT], ["rotation"]]),
    ("Tasks", [["ways"], ["shots"], ["queries"], ["tasks_per_step"]]),
    ("Learning", [["inner_lr", "lr_mode"], ["outer_lr", "outer_opt"], ["inner_steps", "first_order"],
                  ["engine", "device"]]),
    ("Schedule", [["steps"], ["eval_interval"], ["eval_tasks", "eval_on"], ["seed"]]),
]
# Four columns, as above: five would cut a six-digit channel count.
MORE = ("Model size, checkpoints, logging and name", [["channels", "log_to"], ["latent"], ["conv_latent"],
                                                      ["checkpoint_budget_mb", "name"]])
NOT_IN_FORM = ("runs_dir",)  # the app's runs folder (ui.run_picker), not a setting of one run
STEP_SIZES = {"angle_step": 1.0, "inner_lr": 0.01, "outer_lr": 1e-4, "checkpoint_budget_mb": 10.0}
PLACEHOLDERS = {ANGLES_TEXT: "e.g. 0, 90, 180, 270"}
LAYER_CHOICES = {"conv_layer": CONV_LAYERS, "head_layer": HEAD_LAYERS}  # None: the architecture's own


def form_fields() -> list[str]:
    """Every field the form shows, in order (the angle list as ANGLES_TEXT)."""
    return [name for _, columns in [*SECTIONS, MORE] for column in columns for name in column]


def _widget(name: str) -> None:
    """The widget of one RunConfig field, as its Spec and default describe it."""
    s = spec(RunConfig, "angles" if name == ANGLES_TEXT else name)
    key, tip = widget_key(name), s.tooltip
    default = getattr(RunConfig, name, "")
    if name == "arch":
        tip = "\n\n".join(f"**{a.name}** ({a.conv_layer} conv + {a.head_layer} head): {a.summary}"
                          for a in ARCHITECTURES.values())
    if name in LAYER_CHOICES:
        registry = LAYER_CHOICES[name]
        tip = (s.tooltip or "") + "\n\n" + "\n\n".join(f"**{k.name}**: {k.summary}" for k in registry.values())
        st.selectbox(s.label, [None, *registry], key=key, help=tip,
                     format_func=lambda v: "as the architecture" if v is None else v)
    elif name == "device":
        st.selectbox(s.label, device_options(), key=key, help=tip)
    elif name == "arch":  # named as every page names it: "conv (MAML)"
        st.selectbox(s.label, list(s.choices), key=key, help=tip, format_func=lambda a: ARCHITECTURES[a].shown_as)
    elif s.choices is not None:
        st.selectbox(s.label, list(s.choices), key=key, help=tip)
    elif isinstance(default, bool):
        st.checkbox(s.label, key=key, help=tip)
    elif name == ANGLES_TEXT or isinstance(default, str):
        st.text_input(s.label, key=key, help=tip, placeholder=PLACEHOLDERS.get(name))
    elif isinstance(default, float):  # value=None: an emptied field reads as empty, not as 0
        st.number_input(s.label, value=None, key=key, help=tip, step=STEP_SIZES.get(name, 1.0), format="%g")
    else:
        st.number_input(s.label, value=None, key=key, help=tip, step=1)


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


def _is_number_field(name: str) -> bool:
    default = getattr(RunConfig, name, None)
    return isinstance(default, (int, float)) and not isinstance(default, bool)


def build_config(values: dict, runs_dir: str) -> RunConfig:
    """A validated RunConfig from the form's values, or ConfigError whose
    ``errors`` name every bad field by its form field (the angle list's
    under ANGLES_TEXT; None: no single field), and what this machine lacks
    for the run (a GPU beside the device, the memory under no field)."""
    empty = [name for name, value in values.items() if value is None and _is_number_field(name)]
    errors: dict[str | None, str] = {name: f"{spec(RunConfig, name).label} is empty; enter a number"
                                     for name in empty}
    values = {name: getattr(RunConfig, name) if name in empty else value for name, value in values.items()}
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
    for name, message in config.check().errors.items():
        errors.setdefault(ANGLES_TEXT if name == "angles" else name, message)
    # What this machine has, asked now so it is shown with the form: a GPU always, the memory once all is well.
    for check in (check_device, check_memory):
        if check is check_memory and errors:
            break
        try:
            check(config)
        except MachineError as exc:
            errors.setdefault(exc.field, str(exc))
    if errors:
        raise ConfigError.of(errors)
    return config


def launch(values: dict, runs_dir: str, preset: str | None = None):
    """Check the settings and the data, start the run, and follow it: the
    Train page shows it in place of the form (``preset``: the preset the
    values come from, when not the form's). Returns the run folder; raises
    ConfigError (every bad field, tagged; also what this machine lacks) and
    starts nothing then."""
    config = build_config(values, runs_dir)
    with st.spinner("Checking the data…"):
        load_data(config)
    try:
        path = start_run(config)
    except MachineError as exc:  # the machine changed since the form was checked, or the disk cannot take it
        raise ConfigError(str(exc), field=exc.field) from None
    chosen = preset or st.session_state.get(PRESET_KEY)
    # New run brings the form back saying whose settings it holds: a preset's, unchanged, or one's own
    st.session_state[PRESET_KEY] = chosen if chosen in PRESETS and values == preset_values(chosen) else None
    st.session_state[VALUES_KEY] = dict(values)
    follow(path)
    st.session_state[SHOW_FORM_KEY] = False
    return path


def load_data(config: RunConfig) -> MnistSplits:
    """The run's data, read now so a missing folder or too few images per
    class is reported next to the form instead of failing the run later."""
    try:
        data = load_source(config.data_source, config.data_dir, config.download)
    except DataError as exc:
        message = str(exc).replace("add --download", "tick 'Download if missing'")
        raise ConfigError(message, field="data_dir" if config.data_source == FULL_MNIST else "data_source") from None
    smallest = data.min_per_class()
    if config.shots + config.queries > smallest:
        raise ConfigError(f"shots + queries = {config.shots + config.queries} exceeds the {smallest} images of the "
                          f"smallest class of this data; allowed: at most {smallest}", field="queries")
    return data
