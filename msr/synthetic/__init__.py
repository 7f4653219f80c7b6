"""The MSR paper's synthetic problems: does MSR-FC discover convolution (the 1-D
problems), and does MSR-Conv discover rotation sharing (the 2-D ones)?

- ``data``: the 1-D problems' generator, the dataset cache of every problem,
  and the task sampler;
- ``rotation``: the 2-D rotation problems (generator, sampler and models);
- ``models``: the 1-D models and the model registry of every problem;
- ``score``: the convolution score of a weight matrix;
- ``config``: a synthetic run's settings and their validation;
- ``run``: the trainer the worker drives, and ``run_synthetic`` for use in-process;
- ``cli``: ``python -m msr synthetic``.
"""
