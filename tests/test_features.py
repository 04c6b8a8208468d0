"""Whisper examples from ASR items: feature shape, labels with prefix, filters and their counts."""

import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperProcessor

pytest.importorskip("whisper")

from dlsaudio.asr import prepare_dataset, prepare_example  # noqa: E402
from dlsaudio.asr.whisper import build_whisper_tokenizer  # noqa: E402


def processor_for(n_mels):
    tok = build_whisper_tokenizer(num_languages=100 if n_mels == 128 else 99)
    return WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tok
    )


def item(seconds, text="салам", source="ky_tts", sample_rate=16000):
    g = torch.Generator().manual_seed(int(seconds * 1000))
    wave = 0.1 * torch.randn(int(seconds * sample_rate), generator=g)
    return {
        "wave": wave,
        "sample_rate": sample_rate,
        "text": text,
        "source": source,
        "label": None,
        "speaker": "s",
        "path": f"{source}/{seconds}.wav",
    }


@pytest.mark.parametrize("n_mels", [80, 128])
def test_feature_shape_and_labels(n_mels):
    proc = processor_for(n_mels)
    ex = prepare_example(item(1.0, sample_rate=8000), proc)
    assert ex["input_features"].shape == (n_mels, 3000)
    assert ex["seconds"] == pytest.approx(1.0)
    prefix = ["<|startoftranscript|>", "<|kk|>", "<|transcribe|>", "<|notimestamps|>"]
    assert ex["labels"][:4] == proc.tokenizer.convert_tokens_to_ids(prefix)
    assert ex["labels"][-1] == 50257
    assert ex["source"] == "ky_tts"


def test_resampling_matches_a_native_rate_item():
    proc = processor_for(80)
    t = torch.arange(16000) / 16000
    tone16 = {"wave": torch.sin(2 * torch.pi * 440 * t), "sample_rate": 16000, "text": "а"}
    t8 = torch.arange(8000) / 8000
    tone8 = {"wave": torch.sin(2 * torch.pi * 440 * t8), "sample_rate": 8000, "text": "а"}
    a = prepare_example(tone16, proc)["input_features"][:, :90]
    b = prepare_example(tone8, proc)["input_features"][:, :90]
    assert (a - b).abs().mean() < 0.05


def test_filters_are_counted(capsys):
    proc = processor_for(80)
    items = [
        item(1.0),
        item(2.0, source="kk_tts"),  # kept
        item(31.0),  # too long
        item(0.05),  # too short
        item(1.5, text="  "),  # empty text
        item(1.2, text="сөз " * 300),  # label too long
    ]
    kept, report = prepare_dataset(items, proc, progress=False)
    assert [e["source"] for e in kept] == ["ky_tts", "kk_tts"]
    assert report == {
        "total": 6,
        "kept": 2,
        "too_long_audio": 1,
        "too_short_audio": 1,
        "empty_text": 1,
        "too_long_labels": 1,
        "bad_audio": {},
        "bad_audio_files": [],
        "kept_hours": pytest.approx(3.0 / 3600),
        "kept_per_source": {"kk_tts": 1, "ky_tts": 1},
    }
    assert "kept 2/6" in capsys.readouterr().out
    kept, report = prepare_dataset(
        items[:2], proc, max_seconds=1.5, max_label_tokens=8, progress=False
    )
    assert report["too_long_audio"] == 1 and report["kept"] == 1 and report["too_long_labels"] == 0


def test_bad_arguments_raise():
    proc = processor_for(80)
    with pytest.raises(ValueError, match=r"max_seconds=40.*<= 30"):
        prepare_dataset([], proc, max_seconds=40)
    with pytest.raises(ValueError, match="min_seconds=5"):
        prepare_dataset([], proc, max_seconds=2, min_seconds=5)
    with pytest.raises(ValueError, match="max_label_tokens=500"):
        prepare_dataset([], proc, max_label_tokens=500)
    with pytest.raises(ValueError, match="wave has shape"):
        prepare_example({"wave": torch.zeros(2, 100), "sample_rate": 16000, "text": "а"}, proc)
    with pytest.raises(ValueError, match="has no 'text'"):
        prepare_example({"wave": torch.zeros(100), "sample_rate": 16000}, proc)


class CountingDataset:
    """A dataset that knows durations, texts and sources and counts how often audio is decoded."""

    def __init__(self, items):
        self.items = items
        self.durations = [len(it["wave"]) / it["sample_rate"] for it in items]
        self.texts = [it["text"] for it in items]
        self.sources = [it["source"] for it in items]
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


def test_lazy_examples_equal_eager_ones_and_known_durations_skip_decoding():
    proc = processor_for(80)
    items = [item(1.0), item(31.0), item(2.0, source="kk_tts"), item(1.5, text="")]
    data = CountingDataset(items)
    lazy, report = prepare_dataset(data, proc, progress=False, lazy=True)
    assert data.reads == 0  # filtering used the known durations, texts and sources
    assert lazy.lazy and len(lazy) == 2 and lazy.sources == ["ky_tts", "kk_tts"]
    assert lazy.indices == [0, 2] and report["kept"] == 2 and report["too_long_audio"] == 1
    eager, _ = prepare_dataset(items, proc, progress=False)
    assert not eager.lazy
    for a, b in zip(lazy[:], eager[0:2], strict=True):
        assert torch.equal(a["input_features"], b["input_features"])
        assert a["labels"] == b["labels"] and a["source"] == b["source"]
    assert data.reads == 2
    assert "lazy=True" in repr(lazy)


def _corpus_with_bad_clips(tmp_path, durations: bool):
    """Ten clips of a manifest: two missing, one silent, one that is not audio."""
    import numpy as np
    import soundfile as sf

    from dlsaudio.data import load_asr

    rows = []
    for i in range(10):
        path = tmp_path / f"{i}.wav"
        if i == 2:
            sf.write(str(path), np.zeros(8000, dtype=np.float32), 16000)
        elif i == 3:
            path.write_bytes(b"not audio at all" * 50)
        elif i not in (5, 7):
            t = np.arange(8000) / 16000
            sf.write(str(path), (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
        rows.append(f"{i}.wav,сөз {i}" + (",0.5" if durations else ""))
    header = "path,text,duration" if durations else "path,text"
    (tmp_path / "m.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return load_asr(f"manifest:{tmp_path / 'm.csv'}")


@pytest.mark.parametrize("durations", [False, True])
def test_bad_clips_are_dropped_and_counted_up_to_a_threshold(tmp_path, capsys, durations):
    proc = processor_for(80)
    data = _corpus_with_bad_clips(tmp_path, durations)
    with pytest.raises(
        ValueError,
        match="clips have bad audio.*more than max_bad_audio",
    ):
        prepare_dataset(data, proc, progress=False)
    kept, report = prepare_dataset(data, proc, progress=False, max_bad_audio=0.5)
    assert kept.indices == [0, 1, 4, 6, 8, 9] and len(kept[:]) == 6
    assert report["bad_audio"] == {"missing": 2, "silent": 1, "undecodable": 1}
    assert any("3.wav: cannot be decoded" in line for line in report["bad_audio_files"])
    assert "2 missing audio, 1 silent audio, 1 undecodable audio" in capsys.readouterr().out


def test_lazy_examples_name_a_bad_clip_found_in_training_and_check_audio_finds_it_first(tmp_path):
    proc = processor_for(80)
    data = _corpus_with_bad_clips(tmp_path, durations=True)
    lazy, report = prepare_dataset(data, proc, progress=False, lazy=True, max_bad_audio=0.5)
    assert report["bad_audio"] == {} and len(lazy) == 10  # durations known: nothing decoded
    with pytest.raises(
        FileNotFoundError, match=r"5\.wav.*prepare_dataset\(\.\.\., check_audio=True\)"
    ):
        lazy[5]
    checked, report = prepare_dataset(
        data, proc, progress=False, lazy=True, max_bad_audio=0.5, check_audio=True
    )
    assert checked.indices == [0, 1, 4, 6, 8, 9] and sum(report["bad_audio"].values()) == 4


def test_max_bad_audio_must_be_a_share():
    with pytest.raises(ValueError, match="max_bad_audio=2; expected a share"):
        prepare_dataset([], processor_for(80), max_bad_audio=2)
