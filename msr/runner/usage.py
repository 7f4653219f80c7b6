"""What a run's worker uses, recorded at each evaluation: its CPU use since the last one (percent of one core,
so two busy threads read 200), its resident memory and, on CUDA, its peak GPU memory.

psutil reads the process's figures on every operating system. It is a dependency; in an environment made
before it was one, the figures are left out (and liveness and free memory read /proc as before).
"""
from __future__ import annotations

try:
    import psutil
except ImportError:  # an environment made before psutil was a dependency
    psutil = None

MIB = 2**20
FIGURES = ("cpu_percent", "rss_mb", "gpu_mb")  # what an evaluation record may carry of the worker's use


class ProcessUsage:
    """This process's figures, each reading covering the time since the one before."""

    def __init__(self, device: str = "cpu"):
        self.process = psutil.Process() if psutil is not None else None
        if self.process is not None:
            self.process.cpu_percent(None)  # starts the first interval
        self.cuda = str(device).startswith("cuda")

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.process is not None:
            try:
                out["cpu_percent"] = float(self.process.cpu_percent(None))
                out["rss_mb"] = self.process.memory_info().rss / MIB
            except psutil.Error:
                pass
        if self.cuda:
            import torch

            if torch.cuda.is_available():
                out["gpu_mb"] = torch.cuda.max_memory_allocated() / MIB
        return out
