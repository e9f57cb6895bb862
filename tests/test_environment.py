"""The pins live in requirements.txt; everything else must agree with them."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.factories import ROOT


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier  # exactly one `==` pin per line
            assert spec.operator == "==", f"requirements.txt must pin with ==: {line}"
            out[req.name.lower()] = spec.version
    return out


def test_every_dependency_range_admits_its_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in ("lab", "dev", "grade"):
        declared += project["optional-dependencies"][extra]
    pinned = pins()
    for text in declared:
        req = Requirement(text)
        name = req.name.lower()
        assert name in pinned, f"{name} is a dependency in pyproject.toml but not pinned"
        assert req.specifier.contains(pinned[name]), (
            f"pyproject.toml asks {text!r} but requirements.txt pins {name}=={pinned[name]}"
        )


def test_the_environment_has_exactly_the_pinned_versions():
    """What `make` installed is what requirements.txt pins (torch's +cpu tag aside)."""
    from importlib.metadata import PackageNotFoundError, version

    for name, pin in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            raise AssertionError(
                f"{name}=={pin} is pinned but not installed: run make env"
            ) from None
        assert installed.split("+")[0] == pin, f"{name}: installed {installed}, pinned {pin}"


def test_makefile_and_environment_yml_install_the_same_pins():
    assert "-r requirements.txt" in (ROOT / "Makefile").read_text()
    env = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- -r requirements.txt\s*$", env, re.M)
    assert re.search(r"^\s*- python=3\.11\s*$", env, re.M)
