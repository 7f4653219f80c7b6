"""Where MSR's gain comes from: the first layer and the head, varied apart, read from a sweep.

MSR's models differ from plain MAML in two places: the first layer (a
Kronecker or dense symmetry matrix over the conv kernel) and the head (a
dense-U head adapts a few latent values, a plain head every weight). A
comparison that changes both cannot say which one helped. The ablation is a
factorial sweep, first layer × head × seeds, each setting at its own inner
rate (chosen on validation tasks, see msr.runner.sweep), with supports upright and
queries rotated (rotation mode ``query``).

Accuracy is read apart at 0° (queries upright, like the supports) and on the
rotated angles. A gain over the plain model that is as large at 0° as on
rotated queries is not about rotation; the *rotation-specific gain* is the
gain on rotated queries minus the gain at 0°. Every difference is paired by
seed (a seed draws the same test tasks for every setting), and its 95%
interval is the Student-t interval over seeds.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..core.choices import CONV_LAYERS, HEAD_LAYERS
from ..core.stats import t_quantile
from ..mnist.config import preset
from ..runner.sweep.folder import Sweep
from ..runner.sweep.spec import SweepSpec
from ..store.files import Damaged
from ..store.reader import METRICS_CACHE, load_run

NAME = "Where does MSR's gain come from?"
FACTORS = ("conv_layer", "head_layer")
REGISTRIES = {"conv_layer": CONV_LAYERS, "head_layer": HEAD_LAYERS}
EFFECT_NAMES = {"head_layer": lambda v: f"{HEAD_LAYERS[v].label} instead of a plain head",
                "conv_layer": lambda v: f"{CONV_LAYERS[v].label} first layer instead of a plain conv"}
GRID = {"conv_layer": list(CONV_LAYERS), "head_layer": list(HEAD_LAYERS)}
ANGLES = [0.0, 90.0, 180.0, 270.0]
RATES = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3]  # candidate inner rates, a factor of about 3 apart
SEARCH_STEPS = 150
STEPS = 400
EVAL_TASKS = 100
SEEDS = [0, 1, 2]
PRESET = "demo"
PLAIN = "plain"


def ablation_spec(runs_dir: str, seeds: Sequence[int] = SEEDS, angles: Sequence[float] = ANGLES,
                  steps: int = STEPS, rates: Sequence[float] = RATES, search_steps: int = SEARCH_STEPS,
                  workers: int | None = None, executor: str = "local", threads: int = 1,
                  address: str | None = None, preset_name: str = PRESET) -> SweepSpec:
    """The ready-made ablation: a preset (the demo's) with upright supports and
    queries at ``angles``, first layer × head × seeds, every setting at the
    inner rate its validation tasks chose among ``rates``."""
    base = preset(preset_name, rotation="query", angles=[float(a) for a in angles], steps=int(steps),
                  eval_interval=max(1, int(steps) // 8), eval_tasks=EVAL_TASKS, runs_dir=runs_dir).replace(name=NAME)
    return SweepSpec(base=base.to_dict(), grid={k: list(v) for k, v in GRID.items()}, seeds=list(seeds),
                     executor=executor, workers=workers, threads=threads, address=address, name=NAME,
                     rate_search={"values": [float(r) for r in rates], "steps": int(search_steps), "seed": 0})


# ------------------------------------------------------------------ reading
def angle_accuracy(record: Mapping, angles: Sequence[float]) -> tuple[float, float] | None:
    """(accuracy at 0°, accuracy over the other angles) of an evaluation
    record's test queries; None without both."""
    test = ((record.get("per_angle") or {}).get("test") or {})
    counts, errors = test.get("counts") or [], test.get("errors") or []
    if len(counts) != len(angles) or len(errors) != len(angles):
        return None
    upright = [i for i, a in enumerate(angles) if float(a) % 360 == 0]
    turned = [i for i, a in enumerate(angles) if float(a) % 360 != 0]
    n0, nr = sum(counts[i] for i in upright), sum(counts[i] for i in turned)
    if not n0 or not nr:
        return None
    return 1 - sum(errors[i] for i in upright) / n0, 1 - sum(errors[i] for i in turned) / nr


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with the half-width of its 95% interval (NaN below two seeds)."""
    mean: float
    half: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Interval":
        values = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not values:
            return cls(math.nan, math.nan, 0)
        mean = statistics.fmean(values)
        if len(values) < 2:
            return cls(mean, math.nan, len(values))
        half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        return cls(mean, half, len(values))

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def above_zero(self) -> bool:
        return math.isfinite(self.half) and self.low > 0

    @property
    def below_zero(self) -> bool:
        return math.isfinite(self.half) and self.high < 0

    def text(self, signed: bool = True) -> str:
        if not math.isfinite(self.mean):
            return "–"
        body = f"{self.mean:+.3f}" if signed else f"{self.mean:.3f}"
        return body + (f" ± {self.half:.3f}" if math.isfinite(self.half) else "")

    def to_json(self) -> dict:
        return {"mean": _finite(self.mean), "ci95": _finite(self.half), "n": self.n}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass
class Setting:
    """One grid setting's final accuracies, seed by seed."""
    setting: dict
    rate: float | None
    upright: dict[int, float] = field(default_factory=dict)   # seed -> accuracy at 0°
    rotated: dict[int, float] = field(default_factory=dict)   # seed -> accuracy on rotated queries


@dataclass
class Effect:
    """The gain from one change, paired by seed: on rotated queries, at 0°,
    and their difference (the rotation-specific part)."""
    name: str
    rotated: Interval
    upright: Interval
    specific: Interval
    short: str = ""  # the layer alone, for sentences: "dense-U head"

    def to_json(self) -> dict:
        return {"name": self.name, "rotated": self.rotated.to_json(), "upright": self.upright.to_json(),
                "rotation_specific": self.specific.to_json()}


@dataclass
class Ablation:
    settings: list[Setting]
    baseline: Setting | None
    gains: dict[str, Effect]      # group label -> its gain over the baseline
    factors: list[Effect]         # main effects: the head, each first layer

    def to_json(self) -> dict:
        return {"settings": [{"setting": s.setting, "inner_lr": s.rate,
                              "upright": Interval.of(list(s.upright.values())).to_json(),
                              "rotated": Interval.of(list(s.rotated.values())).to_json()} for s in self.settings],
                "gains": {k: e.to_json() for k, e in self.gains.items()},
                "factors": [e.to_json() for e in self.factors], "summary": summary(self)}


def _label(setting: Mapping) -> str:
    conv = setting.get("conv_layer")
    head = setting.get("head_layer")
    parts = ([f"{conv} conv"] if conv else []) + ([f"{head} head"] if head else [])
    return " + ".join(parts) or "all"


def setting_label(setting: Mapping) -> str:
    return _label(setting)


def read(sweep: Sweep) -> list[Setting]:
    """Every grid setting's completed main runs, read at their last evaluation."""
    out = []
    for setting in sweep.spec.settings():
        group = next(p.group for p in sweep.spec.points() if p.setting == setting)
        s = Setting(setting, sweep.chosen_rates.get(group))
        for p in sweep.spec.points():
            if p.setting != setting or p.key not in sweep.runs:
                continue
            rec = load_run(sweep.runs[p.key], with_metrics=False)
            if rec.damaged or rec.state != "completed":
                continue
            try:
                records = METRICS_CACHE.read(rec.path)
            except Damaged:
                continue
            acc = angle_accuracy(records[-1], rec.config.angle_list()) if records else None
            if acc is not None:
                s.upright[p.seed], s.rotated[p.seed] = acc
        out.append(s)
    return out


def _difference(a: Setting, b: Setting) -> Effect:
    """a − b over the seeds both have."""
    seeds = sorted(set(a.upright) & set(b.upright))
    up = [a.upright[k] - b.upright[k] for k in seeds]
    rot = [a.rotated[k] - b.rotated[k] for k in seeds]
    return Effect(f"{_label(a.setting)} vs {_label(b.setting)}", Interval.of(rot), Interval.of(up),
                  Interval.of([r - u for r, u in zip(rot, up)]))


def _averaged(name: str, pairs: list[tuple[Setting, Setting]], short: str = "") -> Effect | None:
    """The mean over ``pairs`` of (a − b), seed by seed: a main effect."""
    seeds = sorted(set.intersection(*(set(a.upright) & set(b.upright) for a, b in pairs))) if pairs else []
    if not seeds:
        return None
    up = [statistics.fmean(a.upright[k] - b.upright[k] for a, b in pairs) for k in seeds]
    rot = [statistics.fmean(a.rotated[k] - b.rotated[k] for a, b in pairs) for k in seeds]
    return Effect(name, Interval.of(rot), Interval.of(up), Interval.of([r - u for r, u in zip(rot, up)]), short)


def analyse(settings: list[Setting]) -> Ablation:
    """Gains over the plain model (every varied layer plain) and the main
    effects: the dense-U head against the plain head (averaged over the
    first layers), each first layer against the plain conv (averaged over
    the heads)."""
    def find(**layers) -> Setting | None:
        return next((s for s in settings if all(s.setting.get(k, v) == v for k, v in layers.items())), None)

    varied = [f for f in FACTORS if any(f in s.setting for s in settings)]
    baseline = find(**{f: PLAIN for f in varied}) if varied else None
    gains = {}
    if baseline is not None:
        for s in settings:
            if s is not baseline:
                gains[_label(s.setting)] = _difference(s, baseline)
    present = {f: sorted({s.setting[f] for s in settings if f in s.setting}, key=list(REGISTRIES[f]).index)
               for f in FACTORS}
    factors = []
    for factor, other in (("head_layer", "conv_layer"), ("conv_layer", "head_layer")):
        for value in present[factor]:
            if value == PLAIN:
                continue
            pairs = []
            for fixed in present[other] or [None]:
                held = {other: fixed} if fixed is not None else {}
                a, b = find(**{factor: value}, **held), find(**{factor: PLAIN}, **held)
                if a is not None and b is not None:
                    pairs.append((a, b))
            effect = _averaged(EFFECT_NAMES[factor](value), pairs, REGISTRIES[factor][value].label)
            if effect:
                factors.append(effect)
    return Ablation(settings, baseline, gains, factors)


def ablation(sweep: Sweep) -> Ablation:
    return analyse(read(sweep))


def applies(sweep: Sweep) -> bool:
    """The sweep varies the first layer or the head, with a plain choice to
    compare against, on upright supports and rotated queries."""
    base, grid = sweep.spec.base, sweep.spec.grid
    angles = base.get("angles") or [i * base.get("angle_step", 9.0) for i in range(base.get("n_angles", 5))]
    return any(PLAIN in grid.get(f, []) for f in FACTORS) and base.get("rotation") == "query" and \
        any(float(a) % 360 == 0 for a in angles) and any(float(a) % 360 for a in angles)


# ------------------------------------------------------------------ words
def _interval_words(i: Interval, lead: str = "95% interval ") -> str:
    return f"{i.mean:+.3f} ({lead}{i.low:+.3f} to {i.high:+.3f})"


def summary(result: Ablation) -> str:
    """One or two sentences, from the numbers, on which change carries the
    gain on rotated queries and whether that gain is about rotation."""
    if not result.factors:
        return "Not enough completed runs to compare the settings yet."
    if min(e.rotated.n for e in result.factors) < 2:
        return "Each setting needs at least two completed seeds before the gains get intervals."
    carriers = [e for e in result.factors if e.rotated.above_zero]
    harmful = [e for e in result.factors if e.rotated.below_zero]
    if not carriers:
        first = ("No change clearly raises the accuracy on rotated queries: every effect's 95% interval includes "
                 "zero" + (f", and the {harmful[0].name} lowers it by {_interval_words(harmful[0].rotated)}"
                           if harmful else "") + ".")
        return first
    best = max(carriers, key=lambda e: e.rotated.mean)
    others = [e for e in result.factors if e is not best]
    first = (f"The gain on rotated queries comes from the {best.name}: {_interval_words(best.rotated)} in "
             "accuracy")
    if others:
        unclear = [e for e in others if not (e.rotated.above_zero or e.rotated.below_zero)]
        listed = "; ".join(f"{e.short or e.name} {_interval_words(e.rotated, '')}" for e in others)
        first += (f"; the other changes' 95% intervals include zero ({listed})" if unclear == others
                  else f"; beside it: {listed}")
    first += "."
    head = best.short or "the change"
    at_zero = f"At 0°, where the queries are upright like the supports, the {head} gains {_interval_words(best.upright, '')}"
    if best.specific.above_zero:
        second = f"{at_zero}, so {_interval_words(best.specific, '')} of its gain appears only on rotated queries."
    elif best.specific.below_zero:
        second = f"{at_zero}, more than on rotated queries: the gain is not about rotation."
    else:
        second = (f"{at_zero}, as much as on rotated queries: the gain is not about rotation (rotation-specific "
                  f"part {_interval_words(best.specific, '')}).")
    return f"{first} {second}"
