"""The last line of a worker's log, said when a run ended before its first step: read from the end of the file,
never through a link."""
from __future__ import annotations

from ui.run_view import LOG_TAIL_BYTES, worker_log_tail


def test_the_last_line_of_a_long_log_is_read_from_its_end(tmp_path):
    (tmp_path / "worker.log").write_text("x" * (3 * LOG_TAIL_BYTES) + "\nfirst\nerror: out of memory\n")
    assert worker_log_tail(tmp_path) == "error: out of memory"


def test_a_log_that_is_a_link_or_missing_says_nothing(tmp_path):
    assert worker_log_tail(tmp_path) is None
    outside = tmp_path / "outside.log"
    outside.write_text("secret\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "worker.log").symlink_to(outside)
    assert worker_log_tail(tmp_path / "run") is None
