"""The worker's own figures (msr.runner.usage), liveness and free memory through psutil."""
import json
import os
import subprocess
import sys
import time

import pytest

from msr.runner.admission import available_memory_bytes
from msr.runner.execute import train
from msr.store.layout import run_files
from msr.store.locks import pid_running
from msr.viz.training import METRICS, overlay_chart, overlay_frame

from conftest import tiny

psutil = pytest.importorskip("psutil")


def test_every_evaluation_records_the_workers_cpu_and_memory(tmp_path):
    result = train(tiny(tmp_path))
    records = [json.loads(line) for line in run_files(result.run_dir).metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 2, 4]
    for r in records:
        assert r["cpu_percent"] >= 0 and 10 < r["rss_mb"] < 100_000 and "gpu_mb" not in r
    assert {"cpu_percent", "rss_mb"} <= set(METRICS)  # the Runs page's overlay offers them
    frame = overlay_frame({"a": records}, "rss_mb")
    assert list(frame["step"]) == [0, 2, 4]
    overlay_chart({"a": records}, "cpu_percent").to_dict()


def test_liveness_and_free_memory_come_from_psutil(monkeypatch):
    assert pid_running(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_running(child.pid)  # reaped: gone
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_running(zombie.pid)  # ended, not yet reaped: not running
    finally:
        zombie.wait()
    monkeypatch.delenv("MSR_MEMORY_LIMIT_MB", raising=False)
    assert abs(available_memory_bytes() - psutil.virtual_memory().available) < 2**30
