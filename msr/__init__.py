"""MSR Explorer's package: Meta-learning Symmetries by Reparameterization on Rotated MNIST and on the paper's
synthetic problems. It never imports Streamlit.

The Python API (msr.api), at the top level::

    import msr
    run = msr.train(preset="demo", runs_dir="runs", steps=100)   # -> msr.Run, an ordinary run folder
    run.metrics                                                   # DataFrame: step, test_loss, test_acc, ...
    model = run.model()                                           # the meta-learned torch module
    same = msr.load_run(run.path)
    table = msr.runs("runs")                                      # one row per run

``import msr`` stays light: the API (and torch) load on first use of one of its names.
"""
__version__ = "0.2.0"

API = ("train", "load_run", "runs", "load_config", "Run", "Adapted")  # the names msr.api gives the package

__all__ = ["__version__", *API]


def __getattr__(name: str):
    """The API's names, imported on first use, so ``import msr`` (and ``msr --help``) never load torch."""
    if name in API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'msr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
