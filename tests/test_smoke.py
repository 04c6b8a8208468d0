"""The smoke switch and the repository constants."""

import pytest

from dlsaudio import repo, smoke


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)],
)
def test_is_smoke_reads_the_variable(monkeypatch, value, expected):
    monkeypatch.setenv(smoke.ENV_VAR, value)
    assert smoke.is_smoke() is expected
    assert smoke.pick(full=20, smoke=1) == (1 if expected else 20)


def test_unset_variable_means_a_full_run(monkeypatch):
    monkeypatch.delenv(smoke.ENV_VAR, raising=False)
    assert smoke.is_smoke() is False
    assert smoke.pick(full="openai/whisper-small", smoke="tiny") == "openai/whisper-small"


def test_unknown_value_says_what_to_use(monkeypatch):
    monkeypatch.setenv(smoke.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="DLSAUDIO_SMOKE='maybe' is not understood; use 1"):
        smoke.is_smoke()


def test_repository_addresses_are_built_from_one_name():
    assert repo.colab_url("week_03_ssl/seminar.ipynb") == (
        f"https://colab.research.google.com/github/{repo.GITHUB_REPO}/blob/{repo.BRANCH}/week_03_ssl/seminar.ipynb"
    )
    assert (
        repo.image_url("images/x.svg")
        == f"https://raw.githubusercontent.com/{repo.GITHUB_REPO}/{repo.BRANCH}/images/x.svg"
    )
    assert repo.PIP_URL.endswith(f"github.com/{repo.GITHUB_REPO}@{repo.BRANCH}")
