import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsaudio.asr.text import verbalize_numbers
from dlsaudio.data import generate
from dlsaudio.data.generate import (
    DIGIT_SPEAKERS,
    SAMPLE_DIR,
    EspeakNotFoundError,
    Utterance,
    Voice,
    asr_utterances,
    generate_digits,
    generate_kyrgyz,
    synthesize,
)

HAVE_ESPEAK = shutil.which("espeak-ng") is not None


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _same_espeak() -> bool:
    recorded = (SAMPLE_DIR / "generated_with.txt").read_text(encoding="utf-8").strip()
    return HAVE_ESPEAK and generate.espeak_version() == recorded


needs_same_espeak = pytest.mark.skipif(
    not HAVE_ESPEAK or not _same_espeak(),
    reason="espeak-ng is missing or differs from the version in generated_with.txt; "
    "other versions speak slightly differently",
)


def test_digit_manifest_matches_files():
    folder = SAMPLE_DIR / "digits"
    rows = _rows(folder / "manifest.csv")
    assert {r["path"] for r in rows} == {p.name for p in folder.glob("*.flac")}
    speakers = {r["speaker"] for r in rows}
    assert len(speakers) >= 12
    counts = Counter((r["label"], r["speaker"]) for r in rows)
    assert set(counts.values()) == {generate.DIGIT_TAKES} and len(counts) == 10 * len(speakers)
    for r in rows:
        digit, speaker, take = Path(r["path"]).stem.split("_")
        assert (digit, speaker, take) == (r["label"], r["speaker"], r["take"])


def test_asr_manifest_matches_files():
    folder = SAMPLE_DIR / "asr"
    rows = _rows(folder / "manifest.csv")
    assert {r["path"] for r in rows} == {
        p.relative_to(folder).as_posix() for p in folder.rglob("*.flac")
    }
    sizes = Counter(r["source"] for r in rows)
    assert sizes["ky_tts"] >= 60 and sizes["kk_tts"] >= 20 and sizes["ky_tts_noisy"] >= 20
    assert len(set(sizes.values())) == 3  # unequal sizes: weighted sampling has work to do
    for r in rows[:: max(1, len(rows) // 15)]:
        info = sf.info(str(folder / r["path"]))
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.duration - float(r["duration"])) < 1e-3
    assert max(float(r["duration"]) for r in rows) <= 6.0
    assert all(r["text"].strip() for r in rows)
    for r in rows:
        assert r["spoken"] == verbalize_numbers(r["text"])
        assert not any(c.isdigit() for c in r["spoken"])
    assert any(any(c.isdigit() for c in r["text"]) for r in rows)


def test_manifest_rows_follow_the_utterance_list():
    rows = _rows(SAMPLE_DIR / "asr" / "manifest.csv")
    utterances = asr_utterances()
    assert [(r["path"], r["text"], r["source"]) for r in rows] == [
        (u.path, u.text, u.source) for u in utterances
    ]
    clean = {(u.text, u.voice) for u in utterances if u.source == "ky_tts"}
    assert all((u.text, u.voice) in clean for u in utterances if u.source == "ky_tts_noisy")


def test_sample_size_under_budget():
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert total < 10 * 2**20


def _assert_same_audio(new: np.ndarray, old: np.ndarray) -> None:
    """Equal here; elsewhere float rounding in resampling may move a sample by one 12-bit step."""
    assert new.shape == old.shape
    step = 2 ** (16 - generate.BITS)
    np.testing.assert_allclose(new.astype(int), old.astype(int), rtol=0, atol=step)
    assert (new == old).mean() > 0.999


@needs_same_espeak
def test_regenerated_files_equal_committed(tmp_path):
    generate_digits(tmp_path / "digits", speakers=DIGIT_SPEAKERS[2:3], takes=2, digits=[7])
    for take in range(2):
        name = f"7_{DIGIT_SPEAKERS[2].speaker}_{take}.flac"
        new, _ = sf.read(str(tmp_path / "digits" / name), dtype="int16")
        old, _ = sf.read(str(SAMPLE_DIR / "digits" / name), dtype="int16")
        _assert_same_audio(new, old)
    utterances = asr_utterances()
    picked = [utterances[0], next(u for u in utterances if u.source == "ky_tts_noisy")]
    generate_kyrgyz(tmp_path / "asr", picked)
    for u in picked:
        new, _ = sf.read(str(tmp_path / "asr" / u.path), dtype="int16")
        old, _ = sf.read(str(SAMPLE_DIR / "asr" / u.path), dtype="int16")
        _assert_same_audio(new, old)


@pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")
def test_synthesize_and_takes_differ():
    voice = Voice("t", "en-us+m3", pitch=50, rate=160)
    wave = synthesize("five", voice)
    assert wave.ndim == 1 and 0.2 < wave.numel() / 16000 < 1.5
    assert float(wave.abs().max()) > 0.05
    rng = np.random.default_rng(0)
    takes = {voice.jittered(rng) for _ in range(5)}
    assert len(takes) == 5


@pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")
def test_synthesize_bad_input():
    with pytest.raises(ValueError, match="empty string"):
        synthesize("  ", DIGIT_SPEAKERS[0])
    with pytest.raises(ValueError, match="espeak-ng failed for voice 'xx-nonexistent'"):
        synthesize("five", Voice("t", "xx-nonexistent"))


def test_missing_espeak_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        synthesize("five", DIGIT_SPEAKERS[0])
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "brew install espeak-ng" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(speaker="a_b"), "speaker must be letters and digits"),
        (dict(pitch=120), "pitch must be in 0..99"),
        (dict(rate=20), "rate must be in 80..450"),
        (dict(amplitude=-1), "amplitude must be in 0..200"),
    ],
)
def test_voice_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Voice(**{"speaker": "a", "voice": "en", **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(takes=0), "takes must be at least 1"),
        (dict(digits=[10]), "digits must be in 0..9"),
        (dict(speakers=[DIGIT_SPEAKERS[0], DIGIT_SPEAKERS[0]]), "speaker ids must be unique"),
    ],
)
def test_generate_digits_validation(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_digits(tmp_path, **kwargs)


def test_generate_kyrgyz_rejects_duplicate_paths(tmp_path):
    u = asr_utterances()[0]
    with pytest.raises(ValueError, match="utterance paths must be unique"):
        generate_kyrgyz(tmp_path, [u, u])


def test_noisy_copies_have_the_stated_snr():
    rows = _rows(SAMPLE_DIR / "asr" / "manifest.csv")
    clean = {(r["text"], r["speaker"]): r["path"] for r in rows if r["source"] == "ky_tts"}
    noisy = [r for r in rows if r["source"] == "ky_tts_noisy"][:5]
    for r in noisy:
        x, _ = sf.read(str(SAMPLE_DIR / "asr" / clean[(r["text"], r["speaker"])]), dtype="float64")
        y, _ = sf.read(str(SAMPLE_DIR / "asr" / r["path"]), dtype="float64")
        assert x.shape == y.shape
        gain = (x @ y) / (x @ x)  # the noisy copy may be scaled down to avoid clipping
        residual = y - gain * x
        snr = 10 * np.log10(((gain * x) ** 2).sum() / (residual**2).sum())
        assert abs(snr - generate.NOISY_SNR_DB) < 0.5


def test_utterance_defaults_and_validation():
    voice = generate.KYRGYZ_SPEAKERS[0]
    assert Utterance("x/0.flac", "1-май", "mine", voice).spoken == "биринчи май"
    assert Utterance("x/0.flac", "Мен 5", "kk", voice, spoken="Мен бес").spoken == "Мен бес"
    with pytest.raises(ValueError, match="path must be a relative .flac path"):
        Utterance("/abs/0.flac", "бир", "mine", voice)
    with pytest.raises(ValueError, match="path must be a relative .flac path"):
        Utterance("../0.flac", "бир", "mine", voice)
    with pytest.raises(ValueError, match="text must not be empty"):
        Utterance("x/0.flac", " ", "mine", voice)


def test_regeneration_removes_files_listed_before(tmp_path):
    (tmp_path / "old_speaker.flac").write_bytes(b"x")
    (tmp_path / "kept.txt").write_text("not listed")
    (tmp_path / "manifest.csv").write_text("path,label\nold_speaker.flac,1\n")
    generate._remove_listed(tmp_path / "manifest.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    generate._remove_listed(tmp_path / "manifest.csv")  # nothing listed: nothing happens
