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
    with pytest.raises(ValueError, match="DLSAUDIO_SMOKE='maybe' is not understood"):
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


def test_run_folder_is_on_drive_when_it_is_mounted(tmp_path, capsys):
    folder = smoke.run_folder("whisper-ky", drive_root=tmp_path)
    assert folder == tmp_path / "dlsaudio" / "whisper-ky"
    assert "Google Drive: a disconnected run resumes from here" in capsys.readouterr().out


def test_run_folder_is_local_without_drive_and_says_how_to_keep_it_on_colab(
    tmp_path, capsys, monkeypatch
):
    import sys
    import types

    missing = tmp_path / "not-mounted"
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert str(smoke.run_folder("whisper-ky", drive_root=missing)) == "outputs/whisper-ky"
    assert capsys.readouterr().out == "run folder: outputs/whisper-ky\n"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    smoke.run_folder("whisper-ky", drive_root=missing)
    assert 'drive.mount("/content/drive")' in capsys.readouterr().out


@pytest.mark.parametrize("name", ["", "..", "a/b", "/content/x"])
def test_run_folder_wants_a_plain_name(name):
    with pytest.raises(ValueError, match="expected a plain folder name"):
        smoke.run_folder(name)
