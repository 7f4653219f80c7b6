"""Running runs: the one driver of a run folder, process plumbing, the machine checks at launch, and sweeps.

- ``execute``: a run folder trained in this process (every worker, the
  command line, Ray tasks), and ``train`` for a config in this process;
- ``launch``: a run's worker started as a detached process (the app's Start and Resume);
- ``process``: detached launches and SIGTERM / Ctrl-C as a stop request;
- ``admission``: what the machine must have for a run (a GPU, the memory);
- ``executors``: the one scheduling loop, with local processes or Ray behind it;
- ``sweep``: grids of runs over seeds.
"""
