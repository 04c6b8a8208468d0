"""Choosing real Kyrgyz speech: FLEURS from a folder of the Hub's layout, the source choice."""

import io
import socket
import threading
from collections import Counter

import datasets
import numpy as np
import pytest
import soundfile as sf

from dlsaudio.data import asr as asr_module
from dlsaudio.data import asr_source, concat_asr, load_asr, load_mixture

FLEURS_LANGS = ["kk_kz", "ky_kg"]
FLEURS_FEATURES = datasets.Features(
    {
        "id": datasets.Value("int32"),
        "num_samples": datasets.Value("int32"),
        "path": datasets.Value("string"),
        "audio": datasets.Audio(sampling_rate=16000),
        "transcription": datasets.Value("string"),
        "raw_transcription": datasets.Value("string"),
        "gender": datasets.ClassLabel(names=["male", "female", "other"]),
        "lang_id": datasets.ClassLabel(names=FLEURS_LANGS),
        "language": datasets.Value("string"),
        "lang_group_id": datasets.ClassLabel(
            names=["eastern_european", "central_asia_middle_east"]
        ),
    }
)
_AUDIO_STRUCT = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
SENTENCES = {
    "train": ["бүгүн аба ырайы жакшы", "мен китеп окуйм", "ал мектепке барды"],
    "validation": ["биз үйдөбүз"],
    "test": ["манас эпосу узун", "суу таза"],
}


def _wav(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 0.01, t.size)
    buffer = io.BytesIO()
    sf.write(buffer, wave.astype(np.float32), 16000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def fleurs(tmp_path, monkeypatch):
    """A local copy of the Hub repository ``google/fleurs`` as it is served today: one folder of
    Parquet files per config, listed by the data card's ``configs``, FLEURS's columns."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    root = tmp_path / "fleurs"
    configs = []
    for lang in ("ky_kg", "kk_kz"):
        (root / lang).mkdir(parents=True)
        files = []
        for split, texts in SENTENCES.items():
            rows = {name: [] for name in FLEURS_FEATURES}
            for i, text in enumerate(texts):
                seconds = 0.25 + 0.05 * i
                rows["id"].append(1000 + i)
                rows["num_samples"].append(int(16000 * seconds))
                rows["path"].append(f"{split}/{i}.wav")
                rows["audio"].append({"bytes": _wav(seconds, i), "path": f"{i}.wav"})
                rows["transcription"].append(text if lang == "ky_kg" else text + " kk")
                rows["raw_transcription"].append(text.capitalize() + ".")
                rows["gender"].append(i % 2)
                rows["lang_id"].append(FLEURS_LANGS.index(lang))
                rows["language"].append("Kyrgyz" if lang == "ky_kg" else "Kazakh")
                rows["lang_group_id"].append(1)
            # built as plain structs, then cast: encoding through Audio would need torchcodec
            plain = datasets.Features({**FLEURS_FEATURES, "audio": _AUDIO_STRUCT})
            data = datasets.Dataset.from_dict(rows, features=plain).cast(FLEURS_FEATURES)
            data.to_parquet(str(root / lang / f"{split}-00000-of-00001.parquet"))
            files.append(f"  - split: {split}\n    path: {lang}/{split}-*.parquet")
        configs.append(f"- config_name: {lang}\n  data_files:\n" + "\n".join(files))
    (root / "README.md").write_text(
        "---\nlicense: cc-by-4.0\nconfigs:\n" + "\n".join(configs) + "\n---\n# FLEURS\n",
        encoding="utf-8",
    )
    return root


def test_fleurs_splits_transcripts_and_durations(fleurs):
    train = load_asr(f"hf:{fleurs}:ky_kg", split="train")
    test = load_asr(f"hf:{fleurs}:ky_kg", split="test")
    dev = load_asr(f"hf:{fleurs}:ky_kg", split="dev")  # FLEURS calls it validation
    assert train.texts == SENTENCES["train"] and test.texts == SENTENCES["test"]
    assert dev.texts == SENTENCES["validation"]
    assert set(train.sources) == {"fleurs_ky_kg"}
    # durations from num_samples, without decoding; the decoded wave agrees with them
    assert train.durations == pytest.approx([0.25, 0.30, 0.35])
    assert train[1]["wave"].numel() == int(16000 * 0.30)


def test_two_fleurs_configs_stay_apart_in_a_mixture(fleurs):
    mixed = concat_asr(
        load_asr(f"hf:{fleurs}:ky_kg", split="train"), load_asr(f"hf:{fleurs}:kk_kz", split="train")
    )
    assert sorted(set(mixed.sources)) == ["fleurs_kk_kz", "fleurs_ky_kg"]


def test_a_transcript_column_is_found_or_asked_for(fleurs, tmp_path):
    raw = load_asr(f"hf:{fleurs}:ky_kg", split="test", text_column="raw_transcription")
    assert raw.texts == ["Манас эпосу узун.", "Суу таза."]
    no_text = datasets.Dataset.from_dict(
        {"audio": [{"bytes": _wav(0.2, 0), "path": "a.wav"}], "words": ["x"]}
    )
    no_text.cast_column("audio", datasets.Audio()).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match=r"none of the transcript columns.*'words'.*text_column="):
        load_asr(f"hf:{tmp_path / 'saved'}")


# --------------------------------------------------------------------------- the choice


@pytest.fixture
def real_data_mode(monkeypatch, tmp_path):
    """Not smoke mode, no source named, no Common Voice folder, no MDC key."""
    for var in ("DLSAUDIO_ASR", "DLSAUDIO_COMMON_VOICE", "MDC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.chdir(tmp_path)  # no .env file with a key around


@pytest.fixture
def local_hub(monkeypatch):
    """A TCP listener on 127.0.0.1 standing in for the Hub's address (``HF_ENDPOINT``)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    yield
    stop.set()
    thread.join()
    server.close()


def test_with_the_hub_reachable_the_choice_is_fleurs(real_data_mode, local_hub, capsys):
    assert asr_source() == asr_module.FLEURS_KY == "hf:google/fleurs:ky_kg"
    out = capsys.readouterr().out
    assert "FLEURS" in out and "SYNTHETIC" not in out and "MDC_API_KEY" in out


def test_offline_the_sample_comes_with_a_banner(real_data_mode, capsys):
    # conftest sets HF_HUB_OFFLINE=1: offline without trying the network
    assert asr_source() == "sample"
    assert "SYNTHETIC SPEECH (offline" in capsys.readouterr().out


def test_a_hub_that_does_not_answer_is_offline(real_data_mode, monkeypatch, capsys):
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert asr_module.hub_reachable(timeout=1) is False
    assert asr_source() == "sample"
    assert "SYNTHETIC SPEECH" in capsys.readouterr().out


def test_smoke_mode_and_a_chosen_sample_show_the_banner(monkeypatch, capsys):
    monkeypatch.setenv("DLSAUDIO_SMOKE", "1")
    assert asr_source() == "sample"
    assert "SYNTHETIC SPEECH (smoke mode)" in capsys.readouterr().out
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    assert asr_source("sample") == "sample"
    assert "SYNTHETIC SPEECH (chosen)" in capsys.readouterr().out


def test_a_mixture_names_each_source_and_knows_its_hours(fleurs, capsys):
    mixed = load_mixture(
        {"ky": f"hf:{fleurs}:ky_kg", "kk": f"hf:{fleurs}:kk_kz", "synthetic": "sample:ky_tts"}
    )
    counts = Counter(mixed.sources)
    assert counts["ky"] == counts["kk"] == len(SENTENCES["train"]) and counts["synthetic"] > 10
    assert mixed.texts[: len(SENTENCES["train"])] == SENTENCES["train"]
    assert (
        mixed.hours() > 2 * (0.25 + 0.30 + 0.35) / 3600
    )  # FLEURS's and the sample's listed lengths
    ky = load_mixture({"ky": f"hf:{fleurs}:ky_kg"}, split="test")
    assert ky.hours() == pytest.approx((0.25 + 0.30) / 3600) and "hours=0.00" in repr(ky)
    with pytest.raises(ValueError, match="sources must be a dict of names"):
        load_mixture(["sample"])


def test_one_source_of_the_bundled_sample():
    noisy = load_asr("sample:ky_tts_noisy")
    assert set(noisy.sources) == {"ky_tts_noisy"} and len(noisy) > 5
    with pytest.raises(ValueError, match=r"no source 'ky'.*'kk_tts', 'ky_tts', 'ky_tts_noisy'"):
        load_asr("sample:ky")
