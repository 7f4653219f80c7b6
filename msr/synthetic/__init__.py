"""The MSR paper's synthetic problems: does MSR-FC discover convolution (the 1-D
problems), and does MSR-Conv discover rotation sharing (the 2-D ones)?

- ``data``: the 1-D problems' generator, the dataset cache of every problem,
  and the 1-D task sampler;
- ``rotation``: the 2-D rotation problems (generator, sampler and models);
- ``models``: the 1-D models and the model registry of every problem;
- ``score``: the convolution score of a weight matrix;
- ``split``: which tasks a run trains on and which it is scored on;
- ``config``: a synthetic run's settings and their validation;
- ``trainer``: the trainer the driver drives, and its weight pictures;
- ``equivariance``: the lens numbers a 2-D run records at each evaluation;
- ``lens``: what the symmetry lens reads on a saved 2-D run;
- ``memory``: a 2-D run's peak memory, estimated;
- ``report``: its progress line, summary and outcome on the command line;
- ``run``: ``run_synthetic``, a run in this process without a folder;
- ``run_groups``: runs by the group they were launched in;
- ``kind``: the run kind the registry (msr.kinds) lists.
"""

NAME = "synthetic"  # the run kind's name, as config.json records it (msr.kinds); the command that trains it
