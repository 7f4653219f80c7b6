"""Checkpoints thinned under their disk cap: the first and the last stay, the rest spread evenly."""
from msr.store.checkpoints import checkpoint_steps, enforce_budget


def test_checkpoint_budget_keeps_first_last_and_spreads_the_rest(tmp_path):
    run = tmp_path / "run"
    folder = run / "checkpoints"
    folder.mkdir(parents=True)
    for step in range(0, 101, 10):
        (folder / f"step_{step:06d}.pt").write_bytes(b"x" * 100)
    removed = enforce_budget(folder, 550)
    kept = checkpoint_steps(run)
    assert kept[0] == 0 and kept[-1] == 100 and len(kept) == 5
    assert len(removed) == 6
    gaps = [b - a for a, b in zip(kept, kept[1:])]
    assert max(gaps) <= 30
