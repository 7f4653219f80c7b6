"""How long the command line takes to answer before it trains anything: ``msr --help`` and friends, against
``python -c "import torch"`` for scale. Each is a fresh process, started in turn (so a slow spell of the machine
hits all of them alike); the table gives the median wall time and the ratio to importing torch.

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeats 15 --update-docs
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, table, update_doc  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "cli-startup"
COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "msr --help": [sys.executable, "-m", "msr", "--help"],
    "msr --version": [sys.executable, "-m", "msr", "--version"],
    "msr stop --help": [sys.executable, "-m", "msr", "stop", "--help"],
    "msr train --help": [sys.executable, "-m", "msr", "train", "--help"],
}


def measure(repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats + 1):  # the first round warms the file cache and is dropped
        for name, argv in COMMANDS.items():
            began = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - began)
    return {name: values[1:] for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args(argv)
    times = measure(args.repeats)
    torch_median = statistics.median(times['python -c "import torch"'])
    rows = [[f"`{name}`", f"{statistics.median(v):.2f} s", f"{min(v):.2f}–{max(v):.2f} s",
             f"{statistics.median(v) / torch_median:.2f}"] for name, v in times.items()]
    text = table(["command", "median wall", "range", "÷ import torch"], rows)
    text += f"\n\n{args.repeats} runs of each, in turn, on {machine()}."
    print(text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/cli_startup.py --update-docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
