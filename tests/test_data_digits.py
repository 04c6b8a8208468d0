from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch

from dlsaudio.audio import collate_waves
from dlsaudio.data import (
    DigitsDataset,
    digits_source,
    fetch_fsdd,
    fsdd_official_split,
    load_digits,
    parse_takes,
    speaker_split,
    take_split,
)
from dlsaudio.data import digits as digits_module

ITEM_KEYS = {"wave", "sample_rate", "label", "text", "speaker", "source", "path"}


def _tone(rate: int, seconds: float = 0.1, seed: int = 0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32)


@pytest.fixture
def fsdd(tmp_path):
    rec = tmp_path / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for speaker in ("jackson", "george"):
        for digit in (0, 1):
            for take in range(7):
                sf.write(str(rec / f"{digit}_{speaker}_{take}.wav"), _tone(8000, seed=take), 8000)
    (rec / "README.txt").write_text("not audio")
    return tmp_path / "fsdd"


@pytest.fixture
def audiomnist(tmp_path):
    root = tmp_path / "AudioMNIST"
    for speaker in ("01", "02", "03"):
        folder = root / "data" / speaker
        folder.mkdir(parents=True)
        for digit in (3, 9):
            sf.write(str(folder / f"{digit}_{speaker}_0.wav"), _tone(48000), 48000)
    (root / "data" / "audioMNIST_meta.txt").write_text("{}")
    return root


@pytest.fixture(scope="module")
def sample():
    return load_digits("sample")


def test_sample_items_follow_the_item_format(sample):
    assert len(sample) >= 12 * 10 * 3
    item = sample[0]
    assert set(item) == ITEM_KEYS
    assert item["wave"].dtype == torch.float32 and item["wave"].ndim == 1
    assert item["sample_rate"] == 16000 and item["source"] == "sample"
    assert item["label"] == sample.labels[0] and item["text"] is None
    assert len(set(sample.speakers)) >= 12 and set(sample.labels) == set(range(10))
    assert Counter(sample.labels)[3] == len(sample) // 10


def test_sample_loads_fast_and_caches(sample):
    sample.preload(progress=False)
    first = sample[5]["wave"]
    assert sample[5]["wave"] is first  # served from memory
    batch = collate_waves([sample[i] for i in range(4)])
    assert batch["label"].tolist() == sample.labels[:4]
    assert batch["wave"].shape == (4, int(batch["lengths"].max()))


def test_sample_at_another_rate():
    ds = load_digits("sample", sample_rate=8000, cache=False)
    ref = load_digits("sample")
    assert abs(ds[0]["wave"].numel() - ref[0]["wave"].numel() / 2) <= 1


def test_speaker_split_is_disjoint_and_seeded(sample):
    train, test = speaker_split(sample, n_test_speakers=3, seed=1)
    assert len(set(test.speakers)) == 3
    assert not set(train.speakers) & set(test.speakers)
    assert len(train) + len(test) == len(sample)
    assert speaker_split(sample, n_test_speakers=3, seed=1)[1].speakers == test.speakers
    assert set(speaker_split(sample, n_test_speakers=3, seed=2)[1].speakers) != set(test.speakers)
    default_test = speaker_split(sample)[1]
    assert len(set(default_test.speakers)) == round(0.2 * len(set(sample.speakers)))
    assert isinstance(train, DigitsDataset) and train.labels == [
        sample.labels[sample.paths.index(p)] for p in train.paths
    ]


@pytest.mark.parametrize("n", [0, 14, -1])
def test_speaker_split_impossible(sample, n):
    with pytest.raises(ValueError, match="n_test_speakers must be between 1 and 13"):
        speaker_split(sample, n_test_speakers=n)


def test_fsdd_layout_and_official_split(fsdd):
    for path in (fsdd, fsdd / "recordings"):
        ds = load_digits(f"fsdd:{path}")
        assert len(ds) == 2 * 2 * 7 and ds.source == "fsdd"
    item = ds[0]
    assert item["sample_rate"] == 16000 and item["wave"].numel() == 1600  # 0.1 s, 8 -> 16 kHz
    train, test = fsdd_official_split(ds)
    assert set(test.takes) == {0, 1, 2, 3, 4} and set(train.takes) == {5, 6}
    assert len(train) + len(test) == len(ds)


def test_fsdd_split_needs_takes_above_four(sample):
    with pytest.raises(ValueError, match="leaves no training clips"):
        fsdd_official_split(sample)


@pytest.fixture
def fsdd_training_takes(tmp_path):
    """A folder like FSDD's training split alone: takes 5 to 9, none of the test takes 0-4."""
    rec = tmp_path / "fsdd-train" / "recordings"
    rec.mkdir(parents=True)
    for speaker in ("jackson", "george"):
        for take in range(5, 10):
            sf.write(str(rec / f"3_{speaker}_{take}.wav"), _tone(8000, seed=take), 8000)
    return tmp_path / "fsdd-train"


def test_a_folder_of_training_takes_needs_a_chosen_split(fsdd_training_takes, monkeypatch):
    monkeypatch.delenv("DLSAUDIO_TEST_TAKES", raising=False)
    ds = load_digits(f"fsdd:{fsdd_training_takes}")
    assert sorted(set(ds.takes)) == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="takes 0-4 leaves no test clips"):
        take_split(ds)
    train, test = take_split(ds, "5-6")
    assert set(test.takes) == {5, 6} and set(train.takes) == {7, 8, 9}
    assert set(train.speakers) == set(test.speakers) == {"jackson", "george"}
    monkeypatch.setenv("DLSAUDIO_TEST_TAKES", "9")
    train, test = take_split(ds)
    assert set(test.takes) == {9} and len(train) + len(test) == len(ds)


def test_take_split_defaults_to_the_sources_own_split(sample, fsdd, monkeypatch):
    monkeypatch.delenv("DLSAUDIO_TEST_TAKES", raising=False)
    train, test = take_split(sample)
    assert set(test.takes) == {0} and set(train.takes) == {1, 2}
    assert set(test.speakers) == set(train.speakers)
    train, test = take_split(load_digits(f"fsdd:{fsdd}"))
    assert set(test.takes) == {0, 1, 2, 3, 4} and set(train.takes) == {5, 6}


@pytest.mark.parametrize(
    "text, takes",
    [("5-9", (5, 6, 7, 8, 9)), ("0,2", (0, 2)), ("0-1, 7", (0, 1, 7)), ([3, 1], (1, 3))],
)
def test_parse_takes(text, takes):
    assert parse_takes(text) == takes


@pytest.mark.parametrize("text", ["", "five", "5-", "-1", "3-x", [-2]])
def test_parse_takes_rejects_what_is_not_a_take(text):
    with pytest.raises(ValueError, match="take"):
        parse_takes(text)


def test_audiomnist_layout(audiomnist):
    ds = load_digits(f"audiomnist:{audiomnist}")
    assert len(ds) == 6 and sorted(set(ds.speakers)) == ["01", "02", "03"]
    assert set(ds.labels) == {3, 9}
    assert ds[0]["wave"].numel() == 1600  # 0.1 s at 48 kHz -> 16 kHz


def test_missing_folder_says_where_to_get_data(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="git clone --depth 1 https://github.com/Jakobovski"
    ):
        load_digits(f"fsdd:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="AudioMNIST"):
        load_digits(f"audiomnist:{tmp_path / 'nope'}")


def test_empty_folder_names_the_layout(tmp_path):
    with pytest.raises(
        ValueError, match=r"expected layout: PATH/recordings/<digit>_<speaker>_<take>\.wav"
    ):
        load_digits(f"fsdd:{tmp_path}")


@pytest.mark.parametrize("source", ["fsd:/x", "fsdd", "audiomnist:", "sample:x", "", 3])
def test_unknown_source(source):
    with pytest.raises(
        ValueError,
        match="valid sources: sample, fsdd:PATH, audiomnist:PATH|source must be a string",
    ):
        load_digits(source)


def test_dataset_validation():
    with pytest.raises(ValueError, match="one entry per item"):
        DigitsDataset(["a.wav"], [1, 2], ["s"], [0], source="x")
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        DigitsDataset(["a.wav"], [1], ["s"], [0], source="x", sample_rate=0)
    with pytest.raises(IndexError, match="out of range"):
        DigitsDataset([], [], [], [], source="x")[0]


def test_digits_source(monkeypatch, capsys, fsdd):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "1")
    assert digits_source(f"fsdd:{fsdd}") == "sample"
    assert capsys.readouterr().out.count("\n") == 1
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_DIGITS", raising=False)
    assert digits_source() == "sample"
    assert "bundled sample" in capsys.readouterr().out
    assert digits_source(f"fsdd:{fsdd}") == f"fsdd:{fsdd}"
    monkeypatch.setenv("DLSAUDIO_DIGITS", "audiomnist:/data/AudioMNIST")
    assert digits_source() == "audiomnist:/data/AudioMNIST"
    with pytest.raises(ValueError, match="unknown digits source"):
        digits_source("mnist:/x")


def test_digits_source_on_colab(monkeypatch, capsys, tmp_path, fsdd):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_DIGITS", raising=False)
    monkeypatch.setattr(digits_module, "on_colab", lambda: True)

    def unreachable():
        raise RuntimeError("cannot clone: no network")

    monkeypatch.setattr(digits_module, "fetch_fsdd", unreachable)
    assert digits_source() == "sample"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "unreachable" in out
    monkeypatch.setattr(digits_module, "fetch_fsdd", lambda: fsdd)
    assert digits_source() == f"fsdd:{fsdd}"


def test_fetch_fsdd_reuses_a_checkout_and_reports_failures(fsdd, tmp_path, monkeypatch):
    assert fetch_fsdd(fsdd) == fsdd  # recordings present: no clone
    monkeypatch.setattr(digits_module, "FSDD_URL", str(tmp_path / "no-such-repo"))
    with pytest.raises(RuntimeError, match="cannot clone"):
        fetch_fsdd(tmp_path / "clone", timeout=30)


def test_audio_files_named_otherwise_are_listed_not_skipped_silently(fsdd, capsys):
    rec = fsdd / "recordings"
    for name in ("x_jackson_0.wav", "0-george-1.wav", "10_george_0.wav"):
        sf.write(str(rec / name), _tone(8000), 8000)
    sf.write(str(rec / "1_george_9.WAV"), _tone(8000), 8000)  # upper-case extension: read
    ds = load_digits(f"fsdd:{fsdd}")
    assert len(ds) == 2 * 2 * 7 + 1 and "1_george_9.WAV" in {p.name for p in ds.paths}
    printed = capsys.readouterr().out
    assert "digits: skipped 3 audio file(s)" in printed
    assert "0-george-1.wav, 10_george_0.wav, x_jackson_0.wav" in printed


def test_a_folder_of_audio_named_otherwise_says_so(tmp_path):
    sf.write(str(tmp_path / "hello.wav"), _tone(8000), 8000)
    with pytest.raises(
        ValueError,
        match=r"holds no <digit>_<speaker>_<take>\.wav files",
    ):
        load_digits(f"fsdd:{tmp_path}")
