"""Peak memory of a Rotated MNIST run, estimated from its shapes.

A run that asks for more memory than the machine has dies with a memory error
(or is killed) after its folder was written. msr.runner.admission refuses it
when it is launched instead, comparing :func:`memory_need` with the memory
free then, and says so in one line giving the estimate and the limit.

The estimate
------------
:func:`estimate_peak_bytes` is a formula over the config's shapes for the peak
resident memory of the process that trains the run (``Trainer(config)``, then
``step()`` and ``evaluate()`` in turn), the process's own baseline included:

    peak = baseline + parameters + max(training step, evaluation)

- baseline: Python, torch, scipy, the data source and the loaded images
  (``BASELINE_MIB``, plus ``MNIST_EXTRA_MIB`` for full MNIST).
- parameters: every weight with its gradient and, for Adam, its two moment
  buffers (4 copies; 2 with SGD), the per-parameter inner rates included.
- training step: the sampled batch, the activations, the dense-U head's
  projection matrix, which every forward copies (``DenseLinear.project``;
  inner steps + 2 copies at the peak), and two adapted parameter sets per task
  and inner step. Activations, in 26×26 float planes with C channels: every
  support image keeps 1.2C planes for the outer backward (second order; 1.3C
  more per further inner step; nothing with first order), and the pass over
  the larger of the support and query sets needs 3C + 10 planes per image on
  top. The ``func`` engine holds every task of the meta-batch at once; the
  ``higher`` engine works task by task, but freed blocks stay with the
  allocator, so it is counted as up to three tasks.
- evaluation: tasks run in chunks of 50 (``MetaLearner.evaluate``) without an
  outer graph, so a chunk peaks at its support pass (3C + 10 planes per image)
  or its query pass (2C + 10), whichever is larger; meanwhile the whole
  evaluation batch is held. Sampling that batch briefly needs about five
  float copies of the larger of its support and query halves (uint8 → float,
  the rotation grid, ``grid_sample``, normalization).

Calibration: the constants were fitted to the peak resident set (VmHWM; the
same as ``ru_maxrss`` of a process launched from a small one) of fresh processes
(torch 2.14, CPU, 2 threads, bundled data) that built a Trainer, ran 2 steps
and one evaluation; a process that has imported torch, scipy and pandas,
loaded the bundled sample and built a small Trainer holds 795–815 MiB. The
shapes below are presets with the named changes (``benchmarks/
memory_calibration.py``, which prints this table); estimate vs measured, MiB:

    shape                                        estimate  measured  error
    demo preset                                      1046      1035    +1%
    seed preset                                      1650      1685    -2%
    seed, 64 channels, 50 eval tasks                 4336      4344    -0%
    seed, 128 channels, 2 eval tasks                 1898      1900    -0%
    seed, 1+39, 50 eval tasks                        4694      4603    +2%
    seed, 39+1, 50 eval tasks                        6303      6201    +2%
    seed, 39+1, 3 inner steps                        2013      1961    +3%
    seed, latent 300                                 2581      2566    +1%
    seed, latent 300, 3 inner steps                  3080      3084    -0%
    seed, latent 300, SGD                            2085      2072    +1%
    dedicated, latent 60                             2581      2563    +1%
    dense, 64 channels, conv latent 200              1573      1631    -4%
    per_param, 3 inner steps, 5-way 5+10             1102      1169    -6%
    conv, 64 channels, 64 tasks of 1+1               1522      1493    +2%
    10-way 5+15, 16 tasks, 100 eval tasks            2404      2340    +3%
    seed, 2000 eval tasks of 1+9                     3675      3814    -4%
    higher engine, 10-way 20+20, 3 inner steps       1220 1374–1456  -11…-16%

Peaks of the ``higher`` engine and of shapes made of many mid-sized tensors
vary most, because the allocator keeps part of what a step frees. On CUDA
the same formula, without the CPU baseline and with room for the CUDA context
and the caching allocator, is compared with ``torch.cuda.mem_get_info``; that
side is not separately calibrated.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.choices import ARCHITECTURES, BUNDLED, FULL_MNIST
from ..core.kind import MemoryNeed

MIB = 2**20

# Shapes fixed by the models: 28×28 inputs, 3×3 valid convolution → 26×26.
IMAGE_BYTES = 28 * 28 * 4
PLANE_BYTES = 26 * 26 * 4
FEATURE_PLANES = 26 * 26
KERNEL_TAPS = 9
EVAL_CHUNK = 50  # MetaLearner.evaluate's default chunk

# Calibrated constants (see the module docstring).
BASELINE_MIB = 800
MNIST_EXTRA_MIB = 60      # torchvision and the 70,000 full-MNIST images, over the bundled sample
STEP_FIXED_MIB = 40       # allocator and thread-pool growth on the first steps
PASS_PLANES = (3, 10)     # planes per image while a forward and backward pass over it runs: 3C + 10
SUPPORT_KEPT = 1.2        # ·C planes per support image kept for the outer backward (second order)
SUPPORT_EXTRA = 1.3       # ·C planes more per support image and further inner step (second order)
ADAPTED_SETS = 2          # adapted parameter sets per task and inner step
EVAL_QUERY_PLANES = (2, 10)
EVAL_SUPPORT_PLANES = (3, 10)
EVAL_RETAINED_MIB = 100   # heap the training steps leave behind, under an evaluation
SAMPLING_COPIES = 5       # float copies of a sampled half-batch alive while rotating
HIGHER_TASKS = 3          # tasks' worth of activations the one-task-at-a-time engine peaks at
KEY_BYTES = 6             # per (task, class, slot) entry of the sampler's random keys and masks
# Images per class, largest class, of each split (for the sampler's keys).
CLASS_WIDTH = {BUNDLED: (400, 100), FULL_MNIST: (6742, 1135)}
# The GPU side: a CUDA context, and the caching allocator's slack.
CUDA_CONTEXT_MIB = 600
CUDA_SLACK = 1.15


@dataclass
class Estimate:
    """Peak-memory estimate in bytes, with its parts."""
    baseline: int
    parameters: int
    step: int
    evaluation: int

    @property
    def device_bytes(self) -> int:
        """What lives where the tensors live (no process baseline)."""
        return self.parameters + max(self.step, self.evaluation)

    @property
    def total(self) -> int:
        return self.baseline + self.device_bytes

    def main_cost(self) -> str:
        """'parameters', 'step' or 'evaluation': the largest part."""
        parts = {"parameters": self.parameters, "step": self.step, "evaluation": self.evaluation}
        return max(parts, key=parts.get)


# (adapted, symmetry) parameter counts of each layer kind, from the channels
# C, the conv latent and the flattened features F = C·26·26 (msr.core.models).
CONV_COUNTS = {
    "plain": lambda c, conv_latent: (c * KERNEL_TAPS + c, 0),
    "kronecker": lambda c, conv_latent: (c * KERNEL_TAPS + c, c * c + 1 + KERNEL_TAPS ** 2),
    "dense": lambda c, conv_latent: (conv_latent + c, c * KERNEL_TAPS * conv_latent),
}
HEAD_COUNTS = {  # (adapted, symmetry) of a head with `ways` outputs over F features
    "plain": lambda ways, features, latent: (ways * features + ways, 0),
    "dense": lambda ways, features, latent: (latent + ways, ways * features * latent),
}


def parameter_counts(config) -> tuple[int, int, int]:
    """(adapted, symmetry, head U) parameter counts of the config's model,
    computed from the shapes without building it. head U is the dense-U
    linear layer's matrix (every copy in a bank), 0 for a plain head."""
    c, ways, latent = config.channels, config.ways, config.latent
    features = c * FEATURE_PLANES
    conv, head = config.layers()
    conv_adapted, conv_sym = CONV_COUNTS[conv](c, config.conv_latent)
    head_adapted, head_u = HEAD_COUNTS[head](ways, features, latent)
    circuits = len(config.angle_list()) if ARCHITECTURES[config.arch].per_angle else 1
    adapted = circuits * (conv_adapted + head_adapted)
    symmetry = circuits * (conv_sym + head_u)
    if circuits > 1:
        adapted += ways * ways + ways  # the alignment head
    return adapted, symmetry, circuits * head_u


def _planes(coef: tuple[float, float], channels: int) -> float:
    return coef[0] * channels + coef[1]


def estimate(config) -> Estimate:
    """The parts of :func:`estimate_peak_bytes`."""
    c, ways, shots, queries = config.channels, config.ways, config.shots, config.queries
    per_task = ways * (shots + queries)
    adapted, symmetry, head_u = parameter_counts(config)
    lrs = adapted if config.lr_mode == "per_param" else 0  # per_layer: a few scalars
    copies = 4 if config.outer_opt == "adam" else 2  # weight, gradient (, two Adam moments)
    parameters = (adapted + symmetry + lrs) * 4 * copies
    train_width, test_width = CLASS_WIDTH.get(config.data_source, CLASS_WIDTH[FULL_MNIST])
    inner = config.inner_steps

    def sampling(tasks: int, width: int) -> int:
        support, query = tasks * ways * shots, tasks * ways * queries
        rotate = IMAGE_BYTES * max(SAMPLING_COPIES * support, support + SAMPLING_COPIES * query)
        return int(rotate + tasks * ways * width * KEY_BYTES)

    # A training step.
    tasks = config.tasks_per_step
    held = tasks if config.engine == "func" else min(tasks, HIGHER_TASKS)
    kept = 0.0 if config.first_order else (SUPPORT_KEPT + SUPPORT_EXTRA * (inner - 1)) * c
    support, query = held * ways * shots, held * ways * queries
    activations = (support * kept + max(support, query) * _planes(PASS_PLANES, c)) * PLANE_BYTES
    adapted_sets = held * adapted * 4 * ADAPTED_SETS * inner
    batch = tasks * per_task * IMAGE_BYTES
    step = max(int(activations + adapted_sets + batch), sampling(tasks, train_width)) \
        + head_u * 4 * (inner + 2) + STEP_FIXED_MIB * MIB

    # An evaluation.
    chunk = min(EVAL_CHUNK, config.eval_tasks)
    chunk_peak = chunk * ways * max(shots * _planes(EVAL_SUPPORT_PLANES, c),
                                    queries * _planes(EVAL_QUERY_PLANES, c)) * PLANE_BYTES
    chunk_peak += chunk * adapted * 4 * 3 + head_u * 4
    eval_batch = config.eval_tasks * per_task * IMAGE_BYTES
    evaluation = max(int(eval_batch + chunk_peak), sampling(config.eval_tasks, test_width)) \
        + EVAL_RETAINED_MIB * MIB

    baseline = (BASELINE_MIB + (MNIST_EXTRA_MIB if config.data_source == FULL_MNIST else 0)) * MIB
    return Estimate(baseline, int(parameters), int(step), int(evaluation))


def estimate_peak_bytes(config) -> int:
    """Estimated peak resident memory, in bytes, of a process that trains the
    run, its baseline included (see the module docstring)."""
    return estimate(config).total


_ADVICE = {
    "parameters": "use fewer channels, a smaller latent size or fewer ways",
    "step": "use fewer tasks per step, ways, shots, queries or channels",
    "evaluation": "use fewer evaluation tasks, ways, shots, queries or channels",
}


def memory_need(config, cuda: bool) -> MemoryNeed:
    """The estimated peak, and what to change when it does not fit. On CUDA
    it is what the GPU holds, with room for the CUDA context and the caching
    allocator; on the CPU the whole process."""
    est = estimate(config)
    if cuda:
        return MemoryNeed(int(est.device_bytes * CUDA_SLACK) + CUDA_CONTEXT_MIB * MIB, True, _ADVICE[est.main_cost()])
    return MemoryNeed(est.total, False, _ADVICE[est.main_cost()])
