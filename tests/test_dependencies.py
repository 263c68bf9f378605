"""pyproject.toml pins every dependency; environment.yml must list the same set and versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, version = re.split(r"\[[^\]]*\]|==", spec)[0], spec.split("==")[1]
        assert "==" in spec, f"{spec} is not pinned with =="
        pins[name.lower()] = version
    return pins


def _conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str) and "=" in entry and not entry.startswith("python="):
            name, version = entry.split("=", 1)
            pins[name.lower()] = version
    return pins


def test_every_dependency_is_pinned_once_and_conda_agrees() -> None:
    pyproject, conda = _pyproject_pins(), _conda_pins()
    assert pyproject, "no dependencies found in pyproject.toml"
    assert pyproject == conda
