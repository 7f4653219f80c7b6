"""Run files and folders get the umask's mode (not mkstemp's 0600 or mkdtemp's 0700), so a shared runs folder
can be read by others."""
import os
import stat

import pytest

from msr.core.modes import umask
from msr.runner.execute import train

from conftest import tiny


@pytest.fixture
def mask():
    def set_(value):
        os.umask(value)
        return value
    old = os.umask(0o022)
    os.umask(old)
    yield set_
    os.umask(old)


@pytest.mark.parametrize("value", [0o022, 0o002, 0o077])
def test_a_runs_files_and_folders_follow_the_umask(tmp_path, mask, value):
    mask(value)
    assert umask() == value
    result = train(tiny(tmp_path, steps=2, eval_interval=2))
    run = result.run_dir
    paths = [os.path.join(d, name) for d, dirs, files in os.walk(run) for name in dirs + files]
    assert any(p.endswith("config.json") for p in paths) and any(p.endswith(".pt") for p in paths)
    for path in [run, *paths]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        want = (0o777 if os.path.isdir(path) else 0o666) & ~value
        assert mode == want, (path, oct(mode), oct(want))
