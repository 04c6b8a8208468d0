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


def test_a_tsv_manifest_reads_quotes_as_text_and_a_csv_one_as_quoting(tmp_path):
    sf.write(str(tmp_path / "0.wav"), _tone(16000, 0.2, 0), 16000)
    (tmp_path / "m.tsv").write_text(
        'path\ttext\n0.wav\t"Бир, эки\n0.wav\tүч "төрт"\n', encoding="utf-8"
    )
    assert load_asr(f"manifest:{tmp_path / 'm.tsv'}").texts == ['"Бир, эки', 'үч "төрт"']
    (tmp_path / "m.csv").write_text('path,text\n0.wav,"Бир, ""эки"""\n', encoding="utf-8")
    assert load_asr(f"manifest:{tmp_path / 'm.csv'}").texts == ['Бир, "эки"']


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
        load_asr(f"hf:{tmp_path / 'saved'}", text_column="sentence")
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
    with pytest.raises(DatasetUnavailableError, match="refs/convert/parquet.*Check the name"):
        load_asr("hf:google/fleurs:ky_kg")  # the Parquet conversion tried too, in vain


def test_a_loading_script_is_read_from_the_parquet_conversion(monkeypatch, tmp_path, capsys):
    saved, revisions = _hf_dataset(tmp_path), []

    def hub(name, config, split, revision):
        revisions.append(revision)
        if revision is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found fleurs.py")
        return saved

    monkeypatch.setattr(datasets, "load_dataset", hub)
    ds = load_asr("hf:google/fleurs:ky_kg", split="test")
    assert revisions == [None, "refs/convert/parquet"] and len(ds) == 3
    assert "loading script" in capsys.readouterr().out


def test_a_common_voice_mirror_is_not_refused(monkeypatch, tmp_path):
    saved = _hf_dataset(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: saved)
    ds = load_asr("hf:someone/common_voice_ky_parquet", text_column="transcription")
    assert len(ds) == 3


@pytest.mark.parametrize("source", ["commonvoice:/x", "hf:", "manifest:", "fleurs"])
def test_unknown_source(source):
    with pytest.raises(ValueError, match="valid sources: sample, sample:SOURCE, common_voice:PATH"):
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
    assert "SYNTHETIC SPEECH (smoke mode)" in capsys.readouterr().out
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("MDC_API_KEY", raising=False)
    assert asr_source() == "sample"  # offline: HF_HUB_OFFLINE=1 in the tests
    assert "SYNTHETIC SPEECH (offline" in capsys.readouterr().out
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
    assert ds.sources == ["fleurs_ky_kg"] * 3 and ds[0]["wave"].numel() == 4000


# --------------------------------------------------------------------------- splits


def _manifest(tmp_path, rows, header="path,text,source,speaker"):
    """A manifest of short tones; ``rows`` are the cells after ``path``."""
    (tmp_path / "clips").mkdir(exist_ok=True)
    lines = [header]
    for i, cells in enumerate(rows):
        sf.write(str(tmp_path / "clips" / f"{i}.wav"), _tone(16000, 0.2, i), 16000)
        lines.append(",".join([f"clips/{i}.wav", *cells]))
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _speakers_rows(n_speakers=5, per_speaker=3, sources=("a", "b")):
    return [
        [f"текст {s}{k}{i}", source, f"{source}{k}"]
        for s, source in enumerate(sources)
        for k in range(n_speakers)
        for i in range(per_speaker)
    ]


def test_a_manifest_holds_out_whole_speakers_for_test(tmp_path, capsys):
    path = _manifest(tmp_path, _speakers_rows())
    every = load_asr(f"manifest:{path}")
    assert len(every) == 30 and capsys.readouterr().out == ""  # split=None: every row, quietly
    train = load_asr(f"manifest:{path}", split="train")
    test = load_asr(f"manifest:{path}", split="test")
    printed = capsys.readouterr().out
    assert not set(train.paths) & set(test.paths)
    assert sorted(train.paths + test.paths) == sorted(every.paths)
    assert not set(train.speakers) & set(test.speakers)
    assert set(test.sources) == set(train.sources) == {"a", "b"}  # every source is scored
    assert len(test) == 6  # one of the five speakers of each source, 3 clips each
    assert "m.csv has no test split; held out by speaker: 2 of 10 speakers" in printed
    assert "split 'test' = 6 rows, split 'train' = the other 24" in printed
    again = load_asr(f"manifest:{path}", split="test")
    assert again.paths == test.paths  # seeded
    other = load_asr(f"manifest:{path}", split="test", holdout_seed=3)
    assert other.paths != test.paths


def test_without_speakers_rows_of_each_source_are_held_out(tmp_path, capsys):
    rows = [[f"т{i}", "a" if i < 8 else "b"] for i in range(10)]
    path = _manifest(tmp_path, rows, header="path,text,source")
    train = load_asr(f"manifest:{path}", split="train")
    test = load_asr(f"manifest:{path}", split="test")
    assert not set(train.paths) & set(test.paths) and len(train) + len(test) == 10
    assert sorted(test.sources) == ["a", "a", "b"]  # round(0.2 * 8) and at least 1 of 2
    assert "held out by row" in capsys.readouterr().out


def test_a_split_column_is_used_as_it_is(tmp_path, capsys):
    rows = [[f"т{i}", "a", f"s{i}", "test" if i in (1, 4) else "train"] for i in range(6)]
    path = _manifest(tmp_path, rows, header="path,text,source,speaker,split")
    test = load_asr(f"manifest:{path}", split="test")
    assert test.texts == ["т1", "т4"]
    assert "the 2 of 6 rows marked 'test' in its split column" in capsys.readouterr().out
    assert len(load_asr(f"manifest:{path}", split="train")) == 4
    with pytest.raises(ValueError, match="no row has split 'dev'"):
        load_asr(f"manifest:{path}", split="dev")


def test_a_manifest_without_split_column_knows_only_train_and_test(tmp_path):
    path = _manifest(tmp_path, _speakers_rows())
    with pytest.raises(ValueError, match="has no split column"):
        load_asr(f"manifest:{path}", split="validation")
    with pytest.raises(ValueError, match="holdout must be a fraction between 0 and 1"):
        load_asr(f"manifest:{path}", split="test", holdout=1.5)
    with pytest.raises(ValueError, match="split must be a split name"):
        load_asr(f"manifest:{path}", split=1)


def test_the_bundled_sample_has_a_speaker_disjoint_test_split():
    every = load_asr("sample")
    train, test = load_asr("sample", split="train"), load_asr("sample", split="test")
    assert sorted(train.paths + test.paths) == sorted(every.paths)
    assert not set(train.speakers) & set(test.speakers)
    assert set(test.sources) == set(train.sources) == set(every.sources)


def test_hold_out_falls_back_to_rows_when_a_source_has_one_speaker():
    test, how = asr_module.hold_out(["a"] * 4 + ["b"] * 6, ["x"] * 4 + ["y", "z"] * 3)
    assert "held out by row" in how and {0, 1, 2, 3} & set(test) and set(test) - {0, 1, 2, 3}
    with pytest.raises(ValueError, match="cannot hold out a test split"):
        asr_module.hold_out(["a"])


def test_hf_saved_without_splits_holds_out_a_test_split(tmp_path, capsys):
    _hf_dataset(tmp_path).save_to_disk(str(tmp_path / "saved"))
    train = load_asr(f"hf:{tmp_path / 'saved'}", split="train", text_column="transcription")
    test = load_asr(f"hf:{tmp_path / 'saved'}", split="test", text_column="transcription")
    assert not set(train.texts) & set(test.texts)
    assert sorted(train.texts + test.texts) == sorted(["бир", "эки", "үч"])
    assert "has no test split" in capsys.readouterr().out
    assert test[0]["wave"].numel() == 4000


def test_hf_split_folder_of_a_saved_dataset_dict_is_not_another_split(tmp_path):
    data = _hf_dataset(tmp_path)
    datasets.DatasetDict({"train": data.select([0, 1]), "test": data.select([2])}).save_to_disk(
        str(tmp_path / "dd")
    )
    assert load_asr(f"hf:{tmp_path / 'dd'}", split="test", text_column="transcription").texts == [
        "үч"
    ]
    assert load_asr(f"hf:{tmp_path / 'dd' / 'test'}", text_column="transcription").texts == ["үч"]
    with pytest.raises(
        ValueError,
        match="is the 'train' split of the DatasetDict",
    ):
        load_asr(f"hf:{tmp_path / 'dd' / 'train'}", split="test", text_column="transcription")
    with pytest.raises(ValueError, match="has no split 'validation'"):
        load_asr(f"hf:{tmp_path / 'dd'}", split="validation", text_column="transcription")


def test_hf_audiofolder_layout_is_read_without_torchcodec(tmp_path, capsys):
    folder = tmp_path / "af"
    folder.mkdir()
    for i in range(4):
        sf.write(str(folder / f"x{i}.wav"), _tone(8000, 0.25, i), 8000)
    (folder / "metadata.csv").write_text(
        "file_name,sentence,speaker_id\n"
        + "".join(f"x{i}.wav,сөз {i},s{i % 2}\n" for i in range(4)),
        encoding="utf-8",
    )
    ds = load_asr(f"hf:{folder}")
    assert ds.texts == [f"сөз {i}" for i in range(4)] and ds[3]["wave"].numel() == 4000
    assert ds.speakers == ["s0", "s1", "s0", "s1"] and set(ds.sources) == {"af"}
    test = load_asr(f"hf:{folder}", split="test")
    assert len(test) == 2 and len(set(test.speakers)) == 1  # one of two speakers held out
    split_folders = tmp_path / "af2"
    for split in ("train", "test"):
        (split_folders / split).mkdir(parents=True)
        sf.write(str(split_folders / split / "a.wav"), _tone(8000, 0.25), 8000)
        (split_folders / split / "metadata.jsonl").write_text(
            f'{{"file_name": "a.wav", "sentence": "{split}"}}\n', encoding="utf-8"
        )
    assert load_asr(f"hf:{split_folders}", split="test").texts == ["test"]
    with pytest.raises(ValueError, match="has no split 'dev'"):
        load_asr(f"hf:{split_folders}", split="dev")


def test_hf_layout_that_needs_torchcodec_says_so(monkeypatch):
    def needs_torchcodec(*args, **kwargs):
        try:
            raise ImportError("To support encoding audio data, please install 'torchcodec'.")
        except ImportError as err:
            raise datasets.exceptions.DatasetGenerationError("An error occurred") from err

    monkeypatch.setattr(datasets, "load_dataset", needs_torchcodec)
    with pytest.raises(
        DatasetUnavailableError, match="needs the torchcodec package.*manifest:PATH"
    ):
        load_asr("hf:someone/speech")


# --------------------------------------------------------------------------- Common Voice


def test_common_voice_validated_minus_dev_and_test(common_voice, capsys):
    rows = [
        ["client0", "common_voice_ky_0.mp3", "0", "Саламатсызбы!"],
        ["client1", "common_voice_ky_1.mp3", "1", 'Ал "Манас" окуду.'],
        ["client2", "common_voice_ky_2.mp3", "2", "Мен 25 жаштамын."],
        ["client3", "common_voice_ky_3.mp3", "3", "Бүгүн аба ырайы жакшы."],
        ["client4", "common_voice_ky_4.mp3", "4", "Бүгүн аба ырайы жакшы."],  # a test sentence
        ["client1", "common_voice_ky_5.mp3", "5", "Жаңы сөз."],  # a dev speaker
        ["client5", "common_voice_ky_6.mp3", "6", "Дагы бир сөз."],
    ]
    for i in (4, 5, 6):
        sf.write(
            str(common_voice / "clips" / f"common_voice_ky_{i}.mp3"),
            _tone(48000, 0.5, i),
            48000,
            format="MP3",
        )
    _write_tsv(common_voice / "validated.tsv", CV_HEADER, [r + ["2", "0", "ky"] for r in rows])
    _write_tsv(common_voice / "dev.tsv", CV_HEADER, [rows[1] + ["2", "0", "ky"]])
    _write_tsv(common_voice / "test.tsv", CV_HEADER, [rows[3] + ["2", "0", "ky"]])
    train = load_asr(f"common_voice:{common_voice}", split="validated-minus-dev-test")
    assert train.texts == ["Саламатсызбы!", "Мен 25 жаштамын.", "Дагы бир сөз."]
    assert (
        "validated-minus-dev-test: 3 of the 7 clips of validated.tsv; left out: 2 clips of "
        "dev.tsv/test.tsv, 1 more by their speakers, 1 more reading their sentences"
    ) in capsys.readouterr().out
    (common_voice / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv does not exist"):
        load_asr(f"common_voice:{common_voice}", split="validated-minus-dev-test")


def test_common_voice_clip_durations_are_read_not_decoded(common_voice):
    _write_tsv(
        common_voice / "clip_durations.tsv",
        ["clip", "duration[ms]"],
        [["common_voice_ky_0.mp3", "1500"], ["common_voice_ky_1.mp3", "480"], ["gone.mp3", "9"]],
    )
    _write_tsv(
        common_voice / "train.tsv",
        CV_HEADER,
        [
            ["c0", "common_voice_ky_0.mp3", "0", "а", "2", "0", "ky"],
            ["c1", "common_voice_ky_1.mp3", "1", "б", "2", "0", "ky"],
            ["c1", "common_voice_ky_2.mp3", "2", "в", "2", "0", "ky"],  # not listed: unknown
            [
                "c1",
                "gone.mp3",
                "3",
                "г",
                "2",
                "0",
                "ky",
            ],  # listed, but not in clips/: decoded (and dropped)
        ],
    )
    ds = load_asr(f"common_voice:{common_voice}")
    assert ds.durations == [1.5, 0.48, None, None]
    with pytest.raises(FileNotFoundError, match="this release has the splits"):
        load_asr(f"common_voice:{common_voice}", split="dev")
    _write_tsv(
        common_voice / "clip_durations.tsv",
        ["clip", "duration[ms]"],
        [["common_voice_ky_0.mp3", "long"]],
    )
    with pytest.raises(ValueError, match=r"clip_durations\.tsv, line 2: duration\[ms\]"):
        load_asr(f"common_voice:{common_voice}")


def test_common_voice_table_with_an_extra_field_names_the_line(common_voice):
    with open(common_voice / "train.tsv", "a", encoding="utf-8") as f:
        f.write("\t".join(["c9", "x.mp3", "9", "сөз", "2", "0", "ky", "extra"]) + "\n")
    with pytest.raises(
        ValueError,
        match=r"train\.tsv: cannot be read as a TSV table",
    ):
        load_asr(f"common_voice:{common_voice}")


# --------------------------------------------------------------------------- manifests


def test_zero_byte_manifest(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=r"zero\.csv is empty"):
        load_asr(f"manifest:{tmp_path / 'zero.csv'}")


def test_duration_cells(tmp_path):
    path = _manifest(tmp_path, [["а", "1.5"], ["б", ""]], header="path,text,duration")
    assert load_asr(f"manifest:{path}").durations == [1.5, None]  # empty: unknown
    path = _manifest(tmp_path, [["а", "1.5"], ["б", "abc"]], header="path,text,duration")
    with pytest.raises(ValueError, match=r"m\.csv, line 3: duration is 'abc'"):
        load_asr(f"manifest:{path}")
    path = _manifest(tmp_path, [["а", "-1"]], header="path,text,duration")
    with pytest.raises(ValueError, match="duration is '-1'"):
        load_asr(f"manifest:{path}")


def test_empty_path_cell(tmp_path):
    (tmp_path / "m.csv").write_text("path,text\n,а\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the path cell is empty"):
        load_asr(f"manifest:{tmp_path / 'm.csv'}")


# --------------------------------------------------------------------------- asr_source


def test_asr_source_refuses_a_named_folder_that_is_no_release(monkeypatch, tmp_path):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_ASR", raising=False)
    monkeypatch.setenv("DLSAUDIO_COMMON_VOICE", str(tmp_path / "typo"))
    with pytest.raises(
        FileNotFoundError,
        match="DLSAUDIO_COMMON_VOICE='.*typo' is not a Common Voice release",
    ):
        asr_source()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DLSAUDIO_COMMON_VOICE", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="holds no Common Voice tables"):
        asr_source()


def test_asr_source_accepts_the_archive_root_as_load_asr_does(monkeypatch, common_voice):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_ASR", raising=False)
    monkeypatch.setenv("DLSAUDIO_COMMON_VOICE", str(common_voice.parent.parent))
    assert asr_source() == f"common_voice:{common_voice}"


def test_asr_source_on_colab_refuses_a_default_folder_without_a_release(monkeypatch, tmp_path):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.delenv("DLSAUDIO_ASR", raising=False)
    monkeypatch.delenv("DLSAUDIO_COMMON_VOICE", raising=False)
    monkeypatch.setattr(asr_module, "on_colab", lambda: True)
    monkeypatch.setattr(asr_module, "COMMON_VOICE_DEFAULT_PATHS", (str(tmp_path),))
    with pytest.raises(
        ValueError,
        match="is where Colab notebooks look for Common Voice, but it is not a release",
    ):
        asr_source()


def test_a_common_voice_split_with_only_a_header_is_refused(common_voice):
    _write_tsv(common_voice / "dev.tsv", CV_HEADER, [])
    with pytest.raises(ValueError, match=r"dev\.tsv lists no clips"):
        load_asr(f"common_voice:{common_voice}", split="dev")


# --------------------------------------------------------------------------- empty transcripts


def _common_voice_with_blank_sentences(common_voice):
    """train.tsv of five clips, the second empty, the fourth spaces and a no-break space."""
    sentences = ["Саламатсызбы!", "", "Мен 25 жаштамын.", "  \u00a0 ", "Жаңы сөз."]
    rows = []
    for i, sentence in enumerate(sentences):
        name = f"common_voice_ky_{i}.mp3"
        if not (common_voice / "clips" / name).is_file():
            sf.write(str(common_voice / "clips" / name), _tone(48000, 0.5, i), 48000, format="MP3")
        rows.append([f"client{i}", name, str(i), sentence, "2", "0", "ky"])
    _write_tsv(common_voice / "train.tsv", CV_HEADER, rows)
    _write_tsv(common_voice / "validated.tsv", CV_HEADER, rows)
    return rows


def test_common_voice_rows_without_a_sentence_are_dropped_and_counted(common_voice, capsys):
    _common_voice_with_blank_sentences(common_voice)
    train = load_asr(f"common_voice:{common_voice}")
    assert train.texts == ["Саламатсызбы!", "Мен 25 жаштамын.", "Жаңы сөз."]
    assert [item["text"] for item in train] == train.texts
    assert train.speakers == ["client0", "client2", "client4"]
    out = capsys.readouterr().out
    assert out.count("dropped") == 1
    assert "train.tsv: dropped 2 of 5 rows whose 'sentence' is empty or blank (lines 3, 5)" in out
    assert len(load_asr(f"common_voice:{common_voice}", limit=3)) == 3  # 3 clips with words


def test_validated_minus_dev_test_drops_blank_sentences_before_comparing_them(common_voice, capsys):
    rows = _common_voice_with_blank_sentences(common_voice)
    _write_tsv(common_voice / "dev.tsv", CV_HEADER, [rows[2][:3] + ["", "2", "0", "ky"]])
    _write_tsv(common_voice / "test.tsv", CV_HEADER, [rows[4]])
    train = load_asr(f"common_voice:{common_voice}", split="validated-minus-dev-test")
    assert train.texts == ["Саламатсызбы!"]
    out = capsys.readouterr().out
    assert "validated.tsv: dropped 2 of 5 rows" in out
    # the blank dev sentence is not a sentence the two blank validated rows "read"
    assert "3 clips of validated.tsv; left out: 2 clips of dev.tsv/test.tsv, 0 more by" in out
    assert "0 more reading their sentences" in out


def test_a_common_voice_split_without_any_sentence_is_refused(common_voice):
    _write_tsv(common_voice / "test.tsv", CV_HEADER, [["c", "a.mp3", "0", " ", "2", "0", "ky"]])
    with pytest.raises(ValueError, match=r"test\.tsv: the 'sentence' of all 1 rows is empty"):
        load_asr(f"common_voice:{common_voice}", split="test")


def test_manifest_rows_without_text_are_dropped_from_the_split_loaded(tmp_path, capsys):
    sf.write(str(tmp_path / "0.wav"), _tone(16000, 0.2, 0), 16000)
    (tmp_path / "m.csv").write_text(
        "path,text,split\n0.wav,бир,train\n0.wav,,train\n0.wav, ,test\n0.wav,эки,test\n",
        encoding="utf-8",
    )
    assert load_asr(f"manifest:{tmp_path / 'm.csv'}", split="train").texts == ["бир"]
    assert "m.csv: dropped 1 of 2 rows whose 'text' is empty or blank (lines 3)" in (
        capsys.readouterr().out
    )
    assert load_asr(f"manifest:{tmp_path / 'm.csv'}", split="test").texts == ["эки"]
    assert "(lines 4)" in capsys.readouterr().out


def test_hf_rows_with_a_missing_transcript_are_dropped_not_read_as_the_word_none(tmp_path, capsys):
    data = _hf_dataset(tmp_path)
    texts = ["бир", None, "   "]
    data.remove_columns("transcription").add_column("transcription", texts).save_to_disk(
        str(tmp_path / "saved")
    )
    ds = load_asr(f"hf:{tmp_path / 'saved'}", text_column="transcription")
    assert ds.texts == ["бир"] and ds.speakers == ["a"] and ds[0]["wave"].numel() == 4000
    assert "dropped 2 of 3 rows whose 'transcription' is empty or blank (rows 1, 2)" in (
        capsys.readouterr().out
    )


def test_an_audiofolder_null_transcript_is_dropped_not_read_as_the_word_none(tmp_path, capsys):
    folder = tmp_path / "af"
    (folder / "train").mkdir(parents=True)
    sf.write(str(folder / "train" / "a.wav"), _tone(8000, 0.25), 8000)
    (folder / "train" / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "sentence": "бир"}\n{"file_name": "a.wav", "sentence": null}\n',
        encoding="utf-8",
    )
    assert load_asr(f"hf:{folder}").texts == ["бир"]
    assert "metadata.jsonl: dropped 1 of 2 rows whose 'sentence' is empty or blank (lines 2)" in (
        capsys.readouterr().out
    )
