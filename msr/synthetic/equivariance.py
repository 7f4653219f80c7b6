"""The lens numbers a 2-D synthetic run records at each evaluation: how far its
layers are from a group convolution (msr.core.symmetry's measures, read at its
group's angles)."""
from __future__ import annotations

import torch

from ..core.symmetry import angle_key, filter_metrics, group_angles, group_rotations
from .rotation import ROTATION_PROBLEMS

LENS_TASKS = 4  # test tasks whose adapted layers are read at every evaluation


def lens_record(banks: torch.Tensor, generated: torch.Tensor | None, problem: str, probes: torch.Tensor) -> dict:
    """The lens numbers a 2-D synthetic run records at an evaluation: on the
    layers adapted to test tasks (``banks``), and on what U generates
    (``generated``, from msr.core.symmetry.generated_filters; None without a U)."""
    group = ROTATION_PROBLEMS[problem].group
    angles, rotations = group_angles(group), group_rotations(group)
    adapted = filter_metrics(banks, probes, angles, rotations)
    record = {"equiv_error": adapted["equivariance"][90.0],
              "equiv_errors": {angle_key(a): e for a, e in adapted["equivariance"].items()},
              "orbit_score": adapted["orbit_score"], "orbit_scores": adapted["orbit_scores"],
              "u_equiv_error": None, "u_orbit_score": None}
    if generated is not None:
        reach = filter_metrics(generated, probes, angles, rotations)
        record.update(u_equiv_error=reach["equivariance"][90.0], u_orbit_score=reach["orbit_score"])
    return record
