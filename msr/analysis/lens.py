"""The equivariance lens on a saved run: has its first layer learned rotation
symmetry, and for which angles? (The measurements are in msr.symmetry.)

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

import numpy as np
import torch

from .config import ConfigError
from .data import TaskSampler, load_source, prepare
from .meta import Episode
from .runs import load_checkpoint, load_run
from .symmetry import (C4, PROBE_SEED, PROBES, angle_key, filter_metrics, generated_filters, orbit_score,
                       problem_rotations, reference_metrics)

INVARIANCE_TASKS = 20
INVARIANCE_SEED = 777


class LensError(ConfigError):
    """The lens does not apply to this run (one line)."""


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


@dataclass
class LensReport:
    run_id: str
    kind: str  # "mnist" or "synthetic"
    subject: str  # e.g. "shared on Rotated MNIST", "msr-conv-dense on rot4"
    angles: list[float]
    reference: dict  # {"group_conv": metrics, "random_conv": metrics}
    steps: list[LensStep]
    run_angles: list[float] = field(default_factory=list)  # Rotated MNIST: the run's own angles

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


class _Subject:
    """What the lens needs from a run at one step (one kind per subclass)."""
    angles: list[float]
    rotations: tuple
    probes: torch.Tensor
    channels: int
    kernel: int
    run_angles: list[float] = []

    def group_layers(self) -> torch.Tensor | None:
        """Exact group convs of this run's shape (None: C4 lifting convs)."""
        return None

    def load(self, step: int | None) -> int: ...
    def banks(self) -> torch.Tensor: ...
    def conv(self): ...
    def invariance(self) -> dict[str, float] | None:
        return None


class _MnistSubject(_Subject):
    def __init__(self, path: Path, config):
        self.path, self.config = path, config
        self.run_angles = config.angle_list()
        extra = [90.0, 180.0, 270.0]
        self.angles = sorted({a % 360 for a in self.run_angles if a % 360} | set(extra))
        self.rotations = (C4,)
        try:
            data = load_source(config.data_source, config.data_dir)
        except Exception as exc:  # noqa: BLE001 - one line for any data problem
            raise LensError(f"cannot read the run's data ({config.data_source}): {exc}") from None
        self.data = data
        g = torch.Generator().manual_seed(PROBE_SEED)
        pick = torch.randperm(len(data.test), generator=g)[:PROBES]
        self.probes = prepare(data.test.images[pick], torch.zeros(len(pick)))
        spec = config.model_spec()
        self.channels, self.kernel = spec.channels, spec.kernel_size

    def load(self, step):
        from .inspect import load_snapshot

        self.snap = load_snapshot(self.path, step)
        return self.snap.step

    def conv(self):
        return self.snap.model.conv

    def banks(self):
        with torch.no_grad():
            w = self.conv().effective_weight().detach().cpu()
        return w if w.dim() == 5 else w.unsqueeze(0)

    def invariance(self):
        """Agreement of the predictions on rotated queries with those on the
        same queries upright, after adapting on upright supports (needs 0°
        in the run); see :func:`agreement`."""
        if 0.0 not in [a % 360 for a in self.run_angles]:
            return None
        cfg, zero = self.config, [a % 360 for a in self.run_angles].index(0.0)

        class Upright(TaskSampler):
            query_angle = zero

            def _angles(self, tasks, n_s, n_q):
                super()._angles(tasks, n_s, n_q)  # the same draws whatever the query angle
                return torch.full((tasks, n_s), zero), torch.full((tasks, n_q), self.query_angle)

        preds, labels = {}, None
        for i, angle in enumerate(self.run_angles):
            sampler = Upright(self.data.test, self.run_angles, cfg.ways, cfg.shots, cfg.queries, "mixed",
                              torch.Generator().manual_seed(INVARIANCE_SEED), "cpu")
            sampler.query_angle = i
            batch = sampler.sample(INVARIANCE_TASKS)
            out = self.snap.learner.evaluate(Episode.of(batch)).query_out
            preds[angle], labels = out.argmax(-1), batch.yq
        return agreement(preds, self.run_angles[zero], labels, cfg.ways)


def agreement(preds: dict[float, torch.Tensor], zero: float, labels: torch.Tensor, ways: int) -> dict:
    """Per rotated angle: ``invariance`` (share of queries whose prediction is
    unchanged from 0°), ``chance`` (the share two independent predictors with
    these label frequencies, task by task, would agree on), ``kappa``
    ((share − chance) / (1 − chance); NaN when chance is 1, as for a model
    that names one label per task), and ``accuracy`` at every angle, 0°
    included. preds: angle → (tasks, queries) predicted labels."""
    base = preds[zero]

    def freq(p: torch.Tensor) -> torch.Tensor:  # (tasks, ways) label frequencies per task
        return torch.nn.functional.one_hot(p, ways).float().mean(1)

    out = {"invariance": {}, "chance": {}, "kappa": {}, "accuracy": {}}
    for angle, p in preds.items():
        out["accuracy"][angle_key(angle % 360)] = float((p == labels).float().mean())
        if angle % 360 == 0:
            continue
        observed = float((p == base).float().mean())
        chance = float((freq(p) * freq(base)).sum(1).mean())
        key = angle_key(angle % 360)
        out["invariance"][key], out["chance"][key] = observed, chance
        out["kappa"][key] = (observed - chance) / (1 - chance) if chance < 1 - 1e-9 else math.nan
    return out


class _RotationSubject(_Subject):
    def __init__(self, path: Path, config):
        from dataclasses import replace

        from .synthetic.rotation import GROUPS, KERNEL
        from .synthetic.run import SyntheticTrainer

        self.path = path
        group = GROUPS[config.problem]
        self.angles = [r * group.degrees for r in range(1, group.rotations // 2 + 1)]
        self.rotations = problem_rotations(config.problem)
        self.trainer = SyntheticTrainer(replace(config, device="cpu", threads=None, test_tasks=max(
            2, min(config.test_tasks, 8))))
        self.probes = self.trainer.probes
        self.channels, self.kernel = group.channels, KERNEL
        self.data = self.trainer.test_sampler.data

    def group_layers(self):
        """The problem's own layers: exact C4 / C8 / D8 group convs."""
        return self.data.weights(torch.arange(4))

    def load(self, step):
        ckpt = load_checkpoint(self.path, step)
        self.trainer.model.load_state_dict(ckpt["model"])
        self.trainer.learner.inner_lrs.load_state_dict(ckpt["inner_lrs"])
        return int(ckpt["step"])

    def conv(self):
        return self.trainer.model.conv

    def banks(self):
        from .symmetry import LENS_TASKS

        tr = self.trainer
        return tr.adapted_filters(tr.test_episode(0, min(LENS_TASKS, tr.config.test_tasks))).cpu()


def _subject(path: Path):
    rec = load_run(path, with_metrics=False)
    if rec.damaged:
        raise LensError(f"run '{path.name}' cannot be read: {rec.damaged}")
    if rec.kind == "mnist":
        return rec, _MnistSubject(path, rec.config), f"{rec.config.model_label()} on Rotated MNIST"
    if getattr(rec.config, "is_rotation", False):
        return rec, _RotationSubject(path, rec.config), f"{rec.config.model} on {rec.config.problem}"
    raise LensError(f"the lens reads 2-D conv layers; run '{path.name}' is the 1-D problem "
                    f"{rec.config.problem} (use a Rotated MNIST run or rot4 / rot8 / rot8_flip)")


def lens_step(subject: _Subject, step: int | None) -> LensStep:
    at = subject.load(step)
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


def lens_report(path: str | Path, steps: list[int] | None = None, reference: dict | None = None) -> LensReport:
    """The lens at the given checkpoint steps (all kept ones when None).
    ``reference``: :func:`lens_reference` of the run, when already at hand.
    LensError / CheckpointError (one line) when it cannot be read."""
    from .runs import checkpoint_steps

    path = Path(path)
    rec, subject, label = _subject(path)
    kept = checkpoint_steps(path)
    if not kept:
        raise LensError(f"run '{path.name}' has no checkpoint yet")
    wanted = kept if steps is None else sorted({min(kept, key=lambda s: abs(s - w)) for w in steps})
    if reference is None:
        reference = _reference(subject)
    return LensReport(rec.run_id, rec.kind, label, subject.angles, reference,
                      [lens_step(subject, s) for s in wanted], list(subject.run_angles))


def _reference(subject: _Subject) -> dict:
    return reference_metrics(subject.channels, subject.kernel, subject.probes, subject.angles, subject.rotations,
                             group=subject.group_layers())


def lens_reference(path: str | Path) -> dict:
    """The reference readings (exact group conv, random conv) for a run's
    shape and angles: they do not change as the run trains."""
    return _reference(_subject(Path(path))[1])


# ------------------------------------------------------------ tables


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
