"""Dependency ranges: the Colab install cell upgrades nothing Colab already has, and
requirements.txt says what pyproject.toml says."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


COLAB = {
    canonicalize_name(name): version
    for name, _, version in (
        line.partition("==") for line in _lines(ROOT / ".ci" / "colab-preinstalled.txt")
    )
}
DEPENDENCIES = [Requirement(spec) for spec in _pyproject()["project"]["dependencies"]]


@pytest.mark.parametrize("requirement", DEPENDENCIES, ids=lambda r: r.name)
def test_colab_keeps_its_preinstalled_version(requirement):
    version = COLAB.get(canonicalize_name(requirement.name))
    if version is None:
        pytest.skip(f"Colab does not preinstall {requirement.name}")
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{requirement} rejects Colab's {requirement.name} {version}: the install cell would "
        "replace it (and a reinstalled torch, ipykernel or ipywidgets breaks the runtime)"
    )


def test_torch_and_the_jupyter_stack_are_checked_against_colab():
    names = {canonicalize_name(r.name) for r in DEPENDENCIES}
    assert {"torch", "torchaudio", "ipykernel", "ipywidgets", "transformers"} <= names & set(COLAB)


def test_requirements_txt_matches_pyproject():
    project = _pyproject()["project"]
    wanted = {
        canonicalize_name(Requirement(s).name): Requirement(s) for s in project["dependencies"]
    }
    for spec in [
        *project["optional-dependencies"]["offline"],
        *project["optional-dependencies"]["mdc"],
    ]:
        wanted[canonicalize_name(Requirement(spec).name)] = Requirement(spec)
    listed = {
        canonicalize_name(Requirement(s).name): Requirement(s)
        for s in _lines(ROOT / "requirements.txt")
    }
    headless = {"nbformat", "nbclient", "ipykernel"}  # for `python -m dlsaudio.notebooks run`
    assert set(listed) == set(wanted) - headless
    for name, requirement in listed.items():
        assert requirement.specifier == wanted[name].specifier, name
