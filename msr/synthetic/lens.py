"""What the symmetry lens (msr.analysis.lens) reads on a saved run of a 2-D rotation problem.

The layers read are those adapted to the first test tasks (the data are made by
a group convolution, so this is what a good model should show), probed with
smooth random images at the group's angles up to 180°; for models with
symmetry matrices, also the layers U generates for random v.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..core.symmetry import LensSubject, group_rotations
from .equivariance import LENS_TASKS
from .rotation import KERNEL, ROTATION_PROBLEMS
from .trainer import SyntheticTrainer


class RotationLensSubject(LensSubject):
    def __init__(self, config):
        problem = ROTATION_PROBLEMS[config.problem]
        self.angles = [r * problem.degrees for r in range(1, problem.rotations // 2 + 1)]
        self.rotations = group_rotations(problem.group)
        self.trainer = SyntheticTrainer(replace(config, device="cpu", threads=None, test_tasks=max(
            2, min(config.test_tasks, 8))))
        self.probes = self.trainer.probes
        self.channels, self.kernel = problem.channels, KERNEL
        self.data = self.trainer.test_sampler.data

    def group_layers(self):
        """The problem's own layers: exact C4 / C8 / D8 group convs."""
        return self.data.weights(torch.arange(4))

    def load(self, checkpoint: dict) -> int:
        self.trainer.model.load_state_dict(checkpoint["model"])
        self.trainer.learner.inner_lrs.load_state_dict(checkpoint["inner_lrs"])
        return int(checkpoint["step"])

    def conv(self):
        return self.trainer.model.conv

    def banks(self):
        tr = self.trainer
        return tr.adapted_filters(tr.test_episode(0, min(LENS_TASKS, tr.config.test_tasks))).cpu()
