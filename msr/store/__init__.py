"""The run folder: the whole truth about a run, written by its worker and read by everyone else.

- ``layout``: the name of every file in a run folder, and the statuses;
- ``files``: atomic writes, strict and capped reads never through a link, and the store's errors;
- ``locks``: flock, which process holds one, and signals only to it;
- ``folders``: the runs folder checked, new run folders with unique ids;
- ``writer``: the worker's side (records, status, heartbeat, checkpoints);
- ``status``: status.json read back strictly;
- ``reader``: records, configs and run lists read back strictly;
- ``liveness``: whether a worker lives, and asking it to stop;
- ``checkpoints``: checkpoints and the resume state, written and read;
- ``progress``: steps done, rate and time left;
- ``access``: deleting a run, and reading its files for a download;
- ``annotations``: a run's display name, notes and colour.
"""
