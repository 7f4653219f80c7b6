"""Every page opens a run of every first layer × head combination."""
from __future__ import annotations


import pytest

from msr.mnist.config import RunConfig


# ----------------------------------------------------------------- the pages
NEW = [("plain", "dense"), ("kronecker", "plain"), ("dense", "plain")]  # no named architecture has these


@pytest.fixture(scope="module")
def combination_runs(tmp_path_factory):
    """A finished tiny run of every layer pair no architecture names, plus a
    dedicated one with plain layers, each in a runs folder of its own."""
    from msr.runner.execute import train

    root = tmp_path_factory.mktemp("combinations")
    out = {}
    for arch, conv, head in [("shared", c, h) for c, h in NEW] + [("dedicated", "plain", "plain")]:
        folder = root / f"{arch}-{conv}-{head}"
        cfg = RunConfig(arch=arch, conv_layer=conv, head_layer=head, angles=[0.0, 90.0, 180.0], channels=4, ways=2,
                        shots=1, queries=2, tasks_per_step=2, steps=4, eval_interval=2, eval_tasks=2, conv_latent=8,
                        rotation="query", runs_dir=str(folder))
        train(cfg)
        out[(arch, conv, head)] = folder
    return out


@pytest.mark.slow
@pytest.mark.parametrize("page_name", ["data", "errors", "weights", "symmetry", "runs", "train"])
def test_every_page_opens_a_run_of_any_combination(combination_runs, page_name):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    views = Path(__file__).resolve().parents[2] / "views"
    for (arch, conv, head), folder in combination_runs.items():
        at = AppTest.from_file(str(views / f"{page_name}.py"), default_timeout=240)
        at.session_state["runs_dir"] = str(folder)
        at.run()
        assert not at.exception, (arch, conv, head, at.exception)
        assert not at.error, (arch, conv, head, [e.value for e in at.error])
        if page_name == "weights":
            for view in at.radio(key="weights_view").options:
                at.radio(key="weights_view").set_value(view).run()
                assert not at.exception and not at.error, (arch, conv, head, view)
        if page_name == "symmetry":
            label = RunConfig(arch=arch, conv_layer=conv, head_layer=head).model_label()
            assert any(label in c.value for c in at.caption), label
