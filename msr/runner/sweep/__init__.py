"""Sweeps: a grid of Rotated MNIST runs over seeds, each an ordinary run, grouped into means with intervals.

A sweep lives in ``<runs_dir>/.sweeps/<sweep-id>/`` (list_runs skips dot
folders):

- ``sweep.json``: its definition (the fixed config, the grid, the seeds, how
  to execute it, and an optional inner-rate search), written once;
- ``runs.json``: point key -> run folder, rewritten as runs are created;
- ``rates.json``: with a rate search, the inner rate chosen for each grid
  setting and every candidate's validation accuracy, written once the search
  is over;
- ``stop``: a request to stop the sweep;
- ``driver.lock``: held (flock) by the process running the sweep, ``driver.json``
  the pid and host of one launched from the app, ``driver.log`` its output.

Every point is a normal run folder under the runs folder (listed on the Runs
page, resumable), so a sweep survives its driver: ``resume`` finishes what is
missing.

**Each setting at its own inner rate.** With a rate search, every grid
setting first trains a short run per candidate inner rate, evaluated on
meta-validation tasks drawn from the training images (``eval_on=
validation``), never on the test images. The candidate with the best final
validation accuracy is that setting's rate for its seeds. A rate suited to
one model can blow up another (a plain head adapts 100,000 weights, a dense-U
head 8), so a comparison at one shared rate measures the rate as much as the
model.

Executors (msr.runner.executors): ``local`` launches detached workers
(msr.runner.launch), at most N at once; ``ray`` runs each point as a Ray
task. Every run trains with the same thread count under both, so their
metrics are identical.

- ``spec``: what a sweep runs (the grid, the seeds, the rate search), checked;
- ``folder``: the sweep's folder, and its driver's lock and launch;
- ``run``: running what is left to do (the driver);
- ``results``: completed runs grouped into means with intervals, and the page's view of the points.
"""
