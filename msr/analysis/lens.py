"""The equivariance lens on a saved run: has its first layer learned rotation
symmetry, and for which angles? (The measurements are in msr.core.symmetry;
what is read on each kind of run, in its package: msr.mnist.lens,
msr.synthetic.lens.)

Works on Rotated MNIST runs and on runs of the 2-D rotation problems, at any
checkpoint. What is read:

- Rotated MNIST: the first conv's filters at the checkpoint (each circuit's,
  for the dedicated model), probed with held-out upright digits, at every
  angle of the run and at 90°, 180° and 270°; and the *invariance of
  predictions*: after adapting on upright supports, the share of queries whose
  predicted label stays the same when the query is rotated by each angle,
  beside the share two unrelated predictors with the same label frequencies
  would agree on by chance (a model that always names one digit agrees with
  itself every time), the chance-corrected agreement (Cohen's kappa), and the
  accuracy at each angle.
- 2-D rotation problems: the layers adapted to the first test tasks (the data
  are made by a group convolution, so this is what a good model should show),
  probed with smooth random images at the group's angles up to 180°.
- For models with symmetry matrices, also the layers U generates for random v:
  what the inner loop can reach, whatever the task.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.symmetry import (C4, LensError, LensSubject, angle_key, filter_metrics, generated_filters, orbit_score,
                             reference_metrics)
from ..store.checkpoints import checkpoint_steps, load_checkpoint, restore
from ..store.lens_cache import keep_reading, read_reading
from ..store.reader import load_run

# What a kept reading was made by (msr.store.lens_cache): change it whenever what the lens measures, or how,
# changes, and every run's readings are measured again.
READING_KEY = "lens-3"


@dataclass
class LensStep:
    step: int
    equivariance: dict[str, float]          # angle → error of the layer the model applies
    orbit_score: float
    orbit_scores: dict[str, float]
    isotropic_share: float | None = None    # of its filters' energy: rotation-invariant on its own
    u_equivariance: dict[str, float] | None = None  # the same for what U generates
    u_orbit_score: float | None = None
    u_isotropic_share: float | None = None
    invariance: dict[str, float] | None = None      # angle → share of unchanged predictions
    invariance_chance: dict[str, float] | None = None  # angle → the share chance agreement reaches
    invariance_kappa: dict[str, float] | None = None   # angle → (share − chance) / (1 − chance)
    accuracy: dict[str, float] | None = None        # angle (0° included) → accuracy of those predictions
    filters: np.ndarray | None = None               # (C, k, k) one bank, for pictures
    orbits: list[list[int]] = field(default_factory=list)  # its channels grouped by matched rotation
    generated: np.ndarray | None = None             # (C, k, k) one layer U generates
    generated_orbits: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("filters", "generated"):
            out.pop(key)
        return out

    def to_kept(self) -> dict:
        """Everything, the pictures included, in JSON (NaN spelt out: it means "nothing to read")."""
        out = asdict(self)
        for key in ("filters", "generated"):
            out[key] = None if out[key] is None else np.asarray(out[key]).tolist()
        return _spell_nan(out)

    @classmethod
    def from_kept(cls, data: dict) -> "LensStep":
        data = _read_nan(dict(data))
        for key in ("filters", "generated"):
            if data.get(key) is not None:
                data[key] = np.asarray(data[key], dtype=np.float32)
        return cls(**data)


def _spell_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _spell_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_spell_nan(v) for v in value]
    return value


def _read_nan(value):
    if value == "NaN":
        return math.nan
    if isinstance(value, dict):
        return {k: _read_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_read_nan(v) for v in value]
    return value


@dataclass
class LensReport:
    run_id: str
    kind: str  # the run's kind, by name (msr.kinds)
    subject: str  # e.g. "shared on Rotated MNIST", "msr-conv-dense on rot4"
    angles: list[float]
    reference: dict  # {"group_conv": metrics, "random_conv": metrics}
    steps: list[LensStep]
    run_angles: list[float] = field(default_factory=list)  # Rotated MNIST: the run's own angles
    first_layer: str | None = None  # "plain", "kronecker" or "dense"
    reads_predictions: bool = False  # the invariance of predictions was read too
    circuits: int = 1  # first-layer banks read: the numbers average them all, the pictures show the first

    @property
    def own_angles(self) -> list[float]:
        """The angles the run trains on (Rotated MNIST), else the angles read."""
        return list(self.run_angles) or list(self.angles)

    def to_json(self) -> dict:
        return {"run": self.run_id, "kind": self.kind, "subject": self.subject, "angles": self.angles,
                "run_angles": self.run_angles,
                "reference": _json_metrics(self.reference), "steps": [s.to_json() for s in self.steps]}


def _json_metrics(ref: dict) -> dict:
    return {name: {"equivariance": {angle_key(a): e for a, e in m["equivariance"].items()},
                   "orbit_score": m["orbit_score"], "orbit_scores": m["orbit_scores"],
                   "isotropic_share": m.get("isotropic_share")} for name, m in ref.items()}


def _bank_picture(banks: torch.Tensor) -> tuple[np.ndarray, list[list[int]]]:
    """The first bank's filters (input channels averaged) and their orbits."""
    first = banks.reshape(-1, *banks.shape[-4:])[0]
    return first.mean(1).numpy(), orbit_score(first, C4).cycles()


def _subject(path: Path) -> tuple:
    """The run's record, what the lens reads on it (its kind's
    msr.core.symmetry.LensSubject), and the kind's lens support."""
    rec = load_run(path, with_metrics=False)
    if rec.damaged:
        raise LensError(f"run '{path.name}' cannot be read: {rec.damaged}")
    support = rec.kind.lens
    refusal = support.refusal(rec.config) if support is not None else "has no 2-D conv layer"
    if refusal is not None:
        raise LensError(f"the lens reads 2-D conv layers; run '{path.name}' {refusal}")
    return rec, support.subject(rec.config), support


def lens_step(subject: LensSubject, path: Path, step: int | None) -> LensStep:
    """The lens at one checkpoint (the nearest kept one to ``step``)."""
    checkpoint = load_checkpoint(path, step)
    at = restore(lambda: subject.load(checkpoint), f"the checkpoint of step {checkpoint['step']}", path)
    banks = subject.banks()
    m = filter_metrics(banks.reshape(-1, *banks.shape[-4:]), subject.probes, subject.angles, subject.rotations)
    filters, orbits = _bank_picture(banks)
    out = LensStep(at, {angle_key(a): e for a, e in m["equivariance"].items()}, m["orbit_score"],
                   m["orbit_scores"], isotropic_share=m["isotropic_share"], filters=filters, orbits=orbits)
    agreed = subject.invariance()
    if agreed is not None:
        out.invariance, out.invariance_chance = agreed["invariance"], agreed["chance"]
        out.invariance_kappa, out.accuracy = agreed["kappa"], agreed["accuracy"]
    generated = generated_filters(subject.conv(), draws=4)
    if generated is not None:
        g = generated.reshape(-1, *generated.shape[-4:])
        u = filter_metrics(g, subject.probes, subject.angles, subject.rotations)
        out.u_equivariance = {angle_key(a): e for a, e in u["equivariance"].items()}
        out.u_orbit_score, out.u_isotropic_share = u["orbit_score"], u["isotropic_share"]
        out.generated, out.generated_orbits = _bank_picture(g)
    return out


def kept_lens_step(subject: LensSubject, path: Path, step: int) -> LensStep:
    """The lens at a kept checkpoint: read from the run folder when it was
    measured before (msr.store.lens_cache), else measured and kept."""
    kept = read_reading(path, step, READING_KEY)
    if kept is not None:
        try:
            return LensStep.from_kept(kept)
        except (TypeError, ValueError):
            pass  # a reading of another shape: measured again
    out = lens_step(subject, path, step)
    keep_reading(path, out.step, READING_KEY, out.to_kept())
    return out


def lens_report(path: str | Path, steps: list[int] | None = None, reference: dict | None = None,
                on_step: Callable[[int, int], None] | None = None) -> LensReport:
    """The lens at the given checkpoint steps (all kept ones when None).
    ``reference``: :func:`lens_reference` of the run, when already at hand.
    ``on_step(done, total)`` is told after each checkpoint, for a progress
    bar. LensError / CheckpointError (one line) when it cannot be read."""
    path = Path(path)
    rec, subject, support = _subject(path)
    kept = checkpoint_steps(path)
    if not kept:
        raise LensError(f"run '{path.name}' has no checkpoint yet")
    wanted = kept if steps is None else sorted({min(kept, key=lambda s: abs(s - w)) for w in steps})
    if reference is None:
        reference = _reference(subject)
    read = []
    for s in wanted:
        read.append(kept_lens_step(subject, path, s))
        if on_step is not None:
            on_step(len(read), len(wanted))
    return LensReport(rec.run_id, rec.kind.name, support.label(rec.config), subject.angles, reference, read,
                      list(subject.run_angles), support.first_layer(rec.config), support.reads_predictions,
                      support.circuits(rec.config))


def _reference(subject: LensSubject) -> dict:
    return reference_metrics(subject.channels, subject.kernel, subject.probes, subject.angles, subject.rotations,
                             group=subject.group_layers())


def lens_reference(path: str | Path) -> dict:
    """The reference readings (exact group conv, random conv) for a run's
    shape and angles: they do not change as the run trains."""
    return _reference(_subject(Path(path))[1])


# ------------------------------------------------------------ the answer
INFORMATIVE = 0.5  # an angle informs when an exact group conv's error there is at most half a random conv's


def informative_angles(reference: dict) -> list[str]:
    """The angles (keys) where an exact group conv and a random conv differ
    clearly: only there can an error say whether a layer is equivariant. Off
    the 90° grid the probes are interpolated, and at small angles a random
    conv scores as low as the exact one."""
    group, rand = reference["group_conv"]["equivariance"], reference["random_conv"]["equivariance"]
    out = []
    for angle, r in rand.items():
        g = group.get(angle, math.nan)
        if math.isfinite(r) and math.isfinite(g) and r > 0 and g <= INFORMATIVE * r:
            out.append(angle_key(angle))
    return out


def _position(err: float, angle: str, reference: dict) -> float:
    """Where an error lies from the exact group conv (0) to a random conv (1)."""
    g = reference["group_conv"]["equivariance"][float(angle)]
    r = reference["random_conv"]["equivariance"][float(angle)]
    return (err - g) / (r - g)


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def verdict(report: LensReport) -> str:
    """A few sentences answering the page's question from the last step. Only
    angles where the two references differ clearly count; there an angle is
    learned when the error is within a fifth of the way from the exact group
    conv to a random conv, partly learned within 60%."""
    last, ref = report.steps[-1], report.reference
    degrees = lambda keys: ", ".join(k + "°" for k in keys)  # noqa: E731
    lines = [f"At step {last.step}:"]
    readable = [a for a, e in last.equivariance.items() if not math.isnan(e)]
    informative = [a for a in informative_angles(ref) if a in readable]
    if not readable:
        lines.append("its filters are rotation-invariant on their own (blobs or constants), which says nothing "
                     "about learned sharing: there is nothing for the lens to read.")
    elif not informative:
        lines.append("at none of the angles measured does an exact group conv score clearly better than a random "
                     "conv, so the errors cannot tell whether the layer is equivariant.")
    else:
        close, partly = [], []
        for angle in informative:
            p = _position(last.equivariance[angle], angle, ref)
            (close if p <= 0.2 else partly if p <= 0.6 else []).append(angle)
        if close:
            lines.append(f"the layer is close to rotation-equivariant at {degrees(close)}"
                         + (f", partly at {degrees(partly)}" if partly else "") + ".")
        elif partly:
            lines.append(f"the layer is partly rotation-equivariant at {degrees(partly)} (its error there lies "
                         "20–60% of the way from an exact group conv's to a random conv's).")
        else:
            lines.append(f"the layer is not rotation-equivariant at {degrees(informative)} (its errors there are "
                         "near a random conv's).")
        rest = [a for a in readable if a not in informative]
        if rest:
            lines.append(f"At {degrees(rest)} an exact group conv is not clearly better than a random conv, so "
                         "those angles say nothing either way.")
    if readable:
        lines.append(f"Its filters' orbit score is {last.orbit_score:.2f} (1 = rotated copies of one another, "
                     "0 = as random filters).")
    iso, iso_random = last.isotropic_share, ref["random_conv"].get("isotropic_share")
    if readable and iso is not None and math.isfinite(iso) and iso >= 0.5:
        lines.append(f"{_percent(iso)} of the filters' energy is rotation-invariant filter by filter"
                     + (f" (a random conv: {_percent(iso_random)})" if iso_random is not None else "")
                     + "; that part matches any rotation and is left out of these numbers.")
    if last.u_orbit_score is not None:
        u = last.u_orbit_score
        if math.isnan(u):
            lines.append("The layers its U generates are rotation-invariant filter by filter: U makes no rotated "
                         "copies.")
        else:
            lines.append(f"The layers its U generates score {u:.2f}: "
                         + ("U has learned to make rotated copies." if u >= 0.6 else
                            "U makes partly rotated copies." if u >= 0.3 else
                            "U has not learned rotation sharing."))
    return " ".join(lines)
