import io
from collections import Counter

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from dlsaudio.audio import collate_waves
from dlsaudio.data import AsrDataset, DatasetUnavailableError, asr_source, concat_asr, load_asr
from dlsaudio.data import asr as asr_module

ITEM_KEYS = {"wave", "sample_rate", "label", "text", "speaker", "source", "path"}
CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "up_votes", "down_votes", "locale"]


def _tone(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.3 * np.sin(2 * np.pi * 300 * t) + noise).astype(np.float32)


def _write_tsv(path, header, rows):
    """Tab-separated, quotes left as they are (as Common Voice writes its tables)."""
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def common_voice(tmp_path):
    folder = tmp_path / "cv-corpus-21.0" / "ky"
    (folder / "clips").mkdir(parents=True)
    sentences = ["Саламатсызбы!", 'Ал "Манас" окуду.', "Мен 25 жаштамын.", "Бүгүн аба ырайы жакшы."]
    rows = []
    for i, sentence in enumerate(sentences):
        name = f"common_voice_ky_{i}.mp3"
        sf.write(str(folder / "clips" / name), _tone(48000, 0.5, i), 48000, format="MP3")
        rows.append([f"client{i % 2}", name, str(i), sentence, "2", "0", "ky"])
    _write_tsv(folder / "validated.tsv", CV_HEADER, rows)
    _write_tsv(folder / "train.tsv", CV_HEADER, rows[:3])
    _write_tsv(folder / "test.tsv", CV_HEADER, rows[3:])
    return folder


def test_sample_sources_and_items():
    ds = load_asr("sample")
    sizes = Counter(ds.sources)
    assert sizes["ky_tts"] >= 60 and sizes["kk_tts"] >= 20 and sizes["ky_tts_noisy"] >= 20
    item = ds[0]
    assert set(item) == ITEM_KEYS and item["label"] is None
    assert item["text"] == ds.texts[0] and item["source"] == "ky_tts"
    assert item["wave"].dtype == torch.float32 and item["sample_rate"] == 16000
    assert abs(item["wave"].numel() / 16000 - ds.durations[0]) < 1e-3
    batch = collate_waves([ds[i] for i in range(3)])
    assert batch["text"] == ds.texts[:3] and batch["source"] == ds.sources[:3]


def test_subset_with_source_and_concat():
    ds = load_asr("sample")
    kk = ds.subset([i for i, s in enumerate(ds.sources) if s == "kk_tts"])
    assert set(kk.sources) == {"kk_tts"} and kk[0]["wave"] is kk[0]["wave"]  # cached
    renamed = kk.subset([0, 1]).with_source("related")
    assert renamed.sources == ["related", "related"] and kk.sources[0] == "kk_tts"
    both = concat_asr(ds.subset([0, 1]), renamed)
    assert both.sources == ["ky_tts", "ky_tts", "related", "related"]
    torch.testing.assert_close(both[2]["wave"], kk[0]["wave"])
    with pytest.raises(ValueError, match="at least one"):
        concat_asr()
    with pytest.raises(ValueError, match="same sample_rate"):
        concat_asr(ds, load_asr("sample", sample_rate=8000))


def test_common_voice_release(common_voice):
    train = load_asr(f"common_voice:{common_voice}")
    assert train.texts == ["Саламатсызбы!", 'Ал "Манас" окуду.', "Мен 25 жаштамын."]
    assert set(train.sources) == {"common_voice"} and train.speakers[:2] == ["client0", "client1"]
    wave = train[1]["wave"]
    assert abs(wave.numel() - 8000) < 1200  # 0.5 s of mp3 at 48 kHz -> 16 kHz (codec padding)
    assert len(load_asr(f"common_voice:{common_voice}", split="validated")) == 4
    assert len(load_asr(f"common_voice:{common_voice}", split="test")) == 1
    assert len(load_asr(f"common_voice:{common_voice}", split="validated", limit=2)) == 2
    assert train[0]["wave"] is not train[0]["wave"]  # real data is not kept in memory by default
    assert load_asr(f"common_voice:{common_voice}", cache=True)._cache is not None
    # the release's parent folder works when it holds one language
    assert len(load_asr(f"common_voice:{common_voice.parent}", split="validated")) == 4


def test_common_voice_without_train_tsv_uses_validated(common_voice):
    (common_voice / "train.tsv").unlink()
    assert len(load_asr(f"common_voice:{common_voice}")) == 4


def test_common_voice_errors(common_voice, tmp_path):
    with pytest.raises(FileNotFoundError, match="Mozilla Data Collective"):
        load_asr(f"common_voice:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="holds no Common Voice tables"):
        load_asr(f"common_voice:{tmp_path / 'cv-corpus-21.0' / 'ky' / 'clips'}")
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv does not exist"):
        load_asr(f"common_voice:{common_voice}", split="dev")
    with pytest.raises(ValueError, match="split must be one of"):
        load_asr(f"common_voice:{common_voice}", split="everything")
    _write_tsv(common_voice / "other.tsv", ["path", "text"], [["a.mp3", "x"]])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['sentence', 'client_id'\]"):
        load_asr(f"common_voice:{common_voice}", split="other")


def test_manifest_csv_and_tsv(tmp_path):
    (tmp_path / "audio").mkdir()
    for i in range(2):
        sf.write(str(tmp_path / "audio" / f"{i}.wav"), _tone(22050, 0.2, i), 22050)
    with open(tmp_path / "m.csv", "w", encoding="utf-8") as f:
        f.write("path,text,source\naudio/0.wav,бир,in_house\naudio/1.wav,эки,pseudo\n")
    ds = load_asr(f"manifest:{tmp_path / 'm.csv'}")
    assert ds.texts == ["бир", "эки"] and ds.sources == ["in_house", "pseudo"]
    assert ds[1]["wave"].numel() == 3200
    _write_tsv(
        tmp_path / "extra.tsv", ["path", "text"], [[str(tmp_path / "audio" / "0.wav"), "үч"]]
    )
    ds = load_asr(f"manifest:{tmp_path / 'extra.tsv'}")
    assert ds.sources == ["extra"] and ds[0]["wave"].numel() == 3200


def test_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        load_asr(f"manifest:{tmp_path / 'none.csv'}")
    (tmp_path / "bad.csv").write_text("file,sentence\na.wav,x\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['path', 'text'\]"):
        load_asr(f"manifest:{tmp_path / 'bad.csv'}")
    (tmp_path / "empty.csv").write_text("path,text\n")
    with pytest.raises(ValueError, match="has no rows"):
        load_asr(f"manifest:{tmp_path / 'empty.csv'}")
    (tmp_path / "gone.csv").write_text("path,text\ngone.wav,x\n")
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        load_asr(f"manifest:{tmp_path / 'gone.csv'}")[0]


def _hf_dataset(tmp_path) -> datasets.Dataset:
    files = []
    for i in range(3):
        path = tmp_path / f"hf_{i}.flac"
        sf.write(str(path), _tone(8000, 0.25, i), 8000)
        files.append(str(path))
    data = datasets.Dataset.from_dict(
        {"audio": files, "transcription": ["бир", "эки", "үч"], "speaker_id": ["a", "b", "a"]}
    )
    return data.cast_column("audio", datasets.Audio())


def test_hf_save_to_disk_folder(tmp_path):
    _hf_dataset(tmp_path).save_to_disk(str(tmp_path / "saved"))
    ds = load_asr(f"hf:{tmp_path / 'saved'}", text_column="transcription")
    assert ds.texts == ["бир", "эки", "үч"] and ds.speakers == ["a", "b", "a"]
    assert set(ds.sources) == {"saved"}
    assert ds[2]["wave"].numel() == 4000 and ds[2]["text"] == "үч"


def test_hf_parquet_with_embedded_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    cells = []
    for i in range(3):
        buffer = io.BytesIO()
        sf.write(buffer, _tone(8000, 0.25, i), 8000, format="FLAC")
        cells.append({"bytes": buffer.getvalue(), "path": f"clip_{i}.flac"})
    data = datasets.Dataset.from_dict({"audio": cells, "sentence": ["бир", "эки", "үч"]})
    (tmp_path / "pq").mkdir()
    data.cast_column("audio", datasets.Audio()).to_parquet(str(tmp_path / "pq" / "train.parquet"))
    ds = load_asr(f"hf:{tmp_path / 'pq'}", limit=2, source_column=None)
    assert len(ds) == 2 and ds.texts == ["бир", "эки"] and ds.sources == ["pq", "pq"]
    expected = torchaudio.functional.resample(torch.from_numpy(_tone(8000, 0.25, 1)), 8000, 16000)
    assert ds[1]["wave"].numel() == 4000  # 0.25 s at 8 kHz -> 16 kHz, decoded from bytes
    torch.testing.assert_close(ds[1]["wave"], expected, atol=1e-3, rtol=0)  # PCM_16 rounding


def test_hf_errors(tmp_path, monkeypatch):
    _hf_dataset(tmp_path).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['sentence'\].*transcription"):
        load_asr(f"hf:{tmp_path / 'saved'}")
    with pytest.raises(
        DatasetUnavailableError, match="Mozilla Data Collective.*common_voice:/path/to/ky"
    ):
        load_asr("hf:mozilla-foundation/common_voice_17_0:ky")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/speech' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DatasetUnavailableError, match="Check the name and the network"):
        load_asr("hf:someone/speech:ky")

    def script_dataset(*args, **kwargs):
        raise RuntimeError("Dataset scripts are no longer supported, but found fleurs.py")

    monkeypatch.setattr(datasets, "load_dataset", script_dataset)
    with pytest.raises(
        DatasetUnavailableError, match=r"loading script.*revision='refs/convert/parquet'"
    ):
        load_asr("hf:google/fleurs:ky_kg", text_column="transcription")


def test_a_common_voice_mirror_is_not_refused(monkeypatch, tmp_path):
    saved = _hf_dataset(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: saved)
    ds = load_asr("hf:someone/common_voice_ky_parquet", text_column="transcription")
    assert len(ds) == 3


@pytest.mark.parametrize("source", ["commonvoice:/x", "hf:", "manifest:", "sample:x", "fleurs"])
def test_unknown_source(source):
    with pytest.raises(ValueError, match="valid sources: sample, common_voice:PATH"):
        load_asr(source)


def test_argument_validation():
    with pytest.raises(ValueError, match="limit must be a positive"):
        load_asr("sample", limit=0)
    with pytest.raises(ValueError, match="source must be a string"):
        load_asr(None)
    with pytest.raises(ValueError, match="one entry per item"):
        AsrDataset(["a.wav"], ["x", "y"], ["s"])
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        AsrDataset(["a.wav"], ["x"], ["s"], sample_rate=-1)


def test_asr_source(monkeypatch, capsys, common_voice):
    monkeypatch.delenv("DLSAUDIO_ASR", raising=False)
    monkeypatch.delenv("DLSAUDIO_COMMON_VOICE", raising=False)
    monkeypatch.setenv("DLSAUDIO_SMOKE", "1")
    assert asr_source(f"common_voice:{common_voice}") == "sample"
    assert capsys.readouterr().out.count("\n") == 1
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    assert asr_source() == "sample"
    assert "datacollective.mozillafoundation.org" in capsys.readouterr().out
    monkeypatch.setenv("DLSAUDIO_COMMON_VOICE", str(common_voice))
    assert asr_source() == f"common_voice:{common_voice}"
    assert asr_source("hf:google/fleurs:ky_kg") == "hf:google/fleurs:ky_kg"
    with pytest.raises(ValueError, match="unknown ASR source"):
        asr_source("cv:/x")


def test_asr_source_on_colab_looks_in_default_places(monkeypatch, capsys, common_voice):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_ASR", raising=False)
    monkeypatch.delenv("DLSAUDIO_COMMON_VOICE", raising=False)
    monkeypatch.setattr(asr_module, "on_colab", lambda: True)
    monkeypatch.setattr(
        asr_module, "COMMON_VOICE_DEFAULT_PATHS", ("/nonexistent", str(common_voice))
    )
    assert asr_source() == f"common_voice:{common_voice}"
    monkeypatch.setattr(asr_module, "COMMON_VOICE_DEFAULT_PATHS", ("/nonexistent",))
    assert asr_source() == "sample"


def test_hf_hub_arguments_are_forwarded(monkeypatch, tmp_path):
    calls = []
    saved = _hf_dataset(tmp_path)

    def fake_load_dataset(name, config, split, revision):
        calls.append((name, config, split, revision))
        return saved

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_asr(
        "hf:google/fleurs:ky_kg",
        split="test",
        revision="refs/convert/parquet",
        text_column="transcription",
    )
    assert calls == [("google/fleurs", "ky_kg", "test", "refs/convert/parquet")]
    assert ds.sources == ["fleurs"] * 3 and ds[0]["wave"].numel() == 4000
