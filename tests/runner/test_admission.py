"""msr.runner.admission: what the machine must have for a run, asked when it is launched. A run too big for
the memory free, or asking for a GPU that is not there, is refused in one line before anything is written,
as a machine problem (MachineError), not as bad input; the config check itself reads nothing of the machine."""
from __future__ import annotations

import pytest

from msr.core.errors import ConfigError, MachineError
from msr.mnist.config import PRESETS, RunConfig, preset
from msr.mnist.memory import MIB, estimate_peak_bytes
from msr.runner import admission
from msr.runner.admission import GIB, LIMIT_ENV, admit, available_memory_bytes, check_memory
from msr.runner.execute import train
from msr.runner.launch import start_run


@pytest.mark.parametrize("changes", [
    dict(ways=10, shots=50, queries=50, tasks_per_step=64),
    dict(eval_tasks=100_000),
    dict(channels=4096),
    # the largest values the field checks allow still have to fit in memory
    dict(eval_tasks=10_000),
    dict(channels=1024),
    dict(latent=4096),
])
def test_oversized_runs_are_refused_before_anything_is_written(changes, tmp_path, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, str(8 * 1024))  # a machine with 8 GiB free
    config = RunConfig(**changes, runs_dir=str(tmp_path / "runs"))
    try:
        config.validate()
    except ConfigError:  # beyond what a field allows: bad input, whatever the machine
        assert config.check().errors
    else:
        with pytest.raises(MachineError) as caught:
            admit(config)
        message = str(caught.value)
        assert message and "\n" not in message
    with pytest.raises((ConfigError, MachineError)):
        train(config)
    with pytest.raises((ConfigError, MachineError)):
        start_run(config)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("changes", [dict(ways=10, shots=50, queries=50, tasks_per_step=64),
                                     dict(eval_tasks=10_000), dict(channels=1024), dict(latent=4096)])
def test_memory_refusal_names_the_estimate_and_the_limit(changes, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, str(8 * 1024))
    config = RunConfig(**changes)
    need = estimate_peak_bytes(config)
    assert need > 8 * GIB
    assert config.validate() is config  # good input: the machine is the problem
    with pytest.raises(MachineError) as caught:
        admit(config)
    message = str(caught.value)
    assert message.startswith("this run needs about ") and "\n" not in message
    assert f"{need / GIB:.1f} GiB" in message and "8.0 GiB available" in message
    assert "use fewer" in message


def test_a_low_limit_refuses_even_the_demo_preset(monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "100")
    config = preset("demo")
    with pytest.raises(MachineError) as caught:
        check_memory(config)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{estimate_peak_bytes(config) / GIB:.1f} GiB" in message and "100 MiB available" in message
    assert LIMIT_ENV in message
    assert config.validate() is config  # the config check reads nothing of the machine


def test_the_presets_fit_a_small_machine(monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, str(4 * 1024))
    for name in PRESETS:
        check_memory(preset(name))


def test_a_gpu_that_is_not_there_is_refused_beside_its_field(monkeypatch):
    monkeypatch.setattr(admission, "cuda_available", lambda: False)
    config = RunConfig(device="cuda").validate()
    with pytest.raises(MachineError) as caught:
        admit(config)
    assert caught.value.field == "device" and "no CUDA GPU is available" in str(caught.value)


def test_available_memory_reads_the_machine_or_the_override(monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    free = available_memory_bytes()
    assert 0 < free < 2**60
    monkeypatch.setenv(LIMIT_ENV, "1536")
    assert available_memory_bytes() == 1536 * MIB
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=LIMIT_ENV):
        available_memory_bytes()
