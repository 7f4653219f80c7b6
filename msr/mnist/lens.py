"""What the symmetry lens reads on a Rotated MNIST run (msr.analysis.lens).

The first conv's filters at each checkpoint (each circuit's, for the
dedicated model), probed with held-out upright digits, at every angle of the
run and at 90°, 180° and 270°; and the *invariance of predictions*: after
adapting on upright supports, whether the predicted label stays the same when
the query is rotated (msr.core.symmetry.agreement).
"""
from __future__ import annotations

import torch

from ..core.data import TaskSampler, load_source, prepare
from ..core.meta import Episode
from ..core.symmetry import C4, PROBE_SEED, PROBES, LensError, LensSubject, agreement
from .config import RunConfig
from .snapshot import model_snapshot

INVARIANCE_TASKS = 20
INVARIANCE_SEED = 777


class MnistLensSubject(LensSubject):
    def __init__(self, config: RunConfig):
        self.config = config
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

    def load(self, checkpoint: dict) -> int:
        self.snap = model_snapshot(checkpoint)
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
        in the run); see msr.core.symmetry.agreement."""
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
