"""The package's metadata holds together: pyproject.toml's dependencies are what requirements.txt installs (with
the app's additions), its extras are in requirements-dev.txt, and its console script is the command line."""
import re
import tomllib

import msr
from msr.cli import main as cli_main

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NAME = re.compile(r"^([A-Za-z0-9_.-]+)")


def requirements(path) -> dict[str, str]:
    """name -> the whole requirement, of a requirements file (its -r lines followed)."""
    out = {}
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out.update(requirements(line[3:].strip()))
        elif line:
            out[NAME.match(line).group(1).lower()] = line.replace(" ", "")
    return out


def specs(items) -> dict[str, str]:
    return {NAME.match(i).group(1).lower(): i.replace(" ", "") for i in items}


def test_requirements_txt_is_the_package_and_the_app():
    project = PYPROJECT["project"]
    app = specs(project["optional-dependencies"]["app"])
    assert requirements("requirements.txt") == {**specs(project["dependencies"]), **app}


def test_requirements_dev_has_every_extra():
    dev = requirements("requirements-dev.txt")
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in ("ray", "png", "tensorboard", "wandb"):
        for name, spec in specs(extras[extra]).items():
            assert dev.get(name) == spec, (extra, name)
    assert {"pytest", "pyflakes"} <= set(dev)


def test_the_console_script_is_the_command_line():
    assert PYPROJECT["project"]["scripts"] == {"msr": "msr.cli.main:main"}
    assert callable(cli_main.main)
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "msr.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", msr.__version__)
