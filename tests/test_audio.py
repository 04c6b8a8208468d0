import numpy as np
import pytest
import soundfile as sf
import torch

from dlsaudio.audio import LogMel, collate_waves, load_audio, log_mel, pad_crop, trim_silence


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype", "tol"),
    [
        ("wav", "WAV", "PCM_16", 1e-3),
        ("flac", "FLAC", "PCM_16", 1e-3),
        ("ogg", "OGG", "VORBIS", None),
        ("mp3", "MP3", "MPEG_LAYER_III", None),
    ],
)
def test_formats_decode(tmp_path, ext, fmt, subtype, tol):
    path = tmp_path / f"tone.{ext}"
    original = _tone(16000)
    sf.write(str(path), original, 16000, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.ndim == 1
    if tol is not None:  # lossless: sample-exact up to 16-bit rounding
        torch.testing.assert_close(wave, torch.from_numpy(original), atol=tol, rtol=0)
    else:  # lossy codecs add padding; the tone's loudness survives
        assert abs(wave.numel() - original.size) < 0.1 * original.size
        assert abs(float(wave.pow(2).mean().sqrt()) - 0.5 / np.sqrt(2)) < 0.05


@pytest.mark.parametrize(
    ("file_rate", "target"), [(8000, 16000), (48000, 16000), (22050, 16000), (16000, 8000)]
)
def test_resampling_rate_and_length(tmp_path, file_rate, target):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(file_rate, seconds=1.0, freq=300.0), file_rate)
    wave = load_audio(path, target)
    assert wave.numel() == target
    spectrum = torch.fft.rfft(wave).abs()
    assert int(spectrum.argmax()) == 300  # 1 s of audio: bin k is k Hz


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = _tone(16000, freq=200.0), _tone(16000, freq=700.0)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    torch.testing.assert_close(load_audio(path), torch.from_numpy((left + right) / 2))


def test_trim_cuts_silence_at_both_ends(tmp_path):
    wave = np.concatenate([np.zeros(8000), _tone(16000, 0.25), np.zeros(8000)]).astype(np.float32)
    path = tmp_path / "padded.wav"
    sf.write(str(path), wave, 16000, subtype="FLOAT")
    assert load_audio(path).numel() == 20000
    trimmed = load_audio(path, trim=True)
    assert 4000 <= trimmed.numel() <= 4000 + 2 * 257


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio file not found: .*nothing\.wav"):
        load_audio(tmp_path / "nothing.wav")


@pytest.mark.parametrize(
    "content", [b"", b"this is not audio at all" * 10, b"RIFF\x00\x00\x00\x00WAVEfmt "]
)
def test_corrupt_or_zero_byte_file(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.wav: cannot be decoded as audio"):
        load_audio(path)


def test_file_with_zero_frames(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"empty\.wav: the audio is empty \(0 samples\)"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples(tmp_path, bad):
    wave = _tone(16000)
    wave[100:103] = bad
    path = tmp_path / "damaged.wav"
    sf.write(str(path), wave, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"damaged\.wav: 3 samples are NaN or inf"):
        load_audio(path)


def test_silence_only(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(str(path), np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"quiet\.wav: holds only silence"):
        load_audio(path)


def test_too_many_channels(tmp_path):
    path = tmp_path / "surround.wav"
    sf.write(str(path), _tone(16000, channels=6), 16000)
    with pytest.raises(
        ValueError, match=r"surround\.wav: has 6 channels, expected 1 to 2; pass max_channels=6"
    ):
        load_audio(path)
    assert load_audio(path, max_channels=6).ndim == 1


def test_bad_sample_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(16000), 16000)
    with pytest.raises(ValueError, match="sample_rate must be a positive number of Hz, got 0"):
        load_audio(path, 0)


def test_trim_silence_shapes():
    assert trim_silence(torch.zeros(100)).numel() == 0
    with pytest.raises(ValueError, match=r"trim_silence expects a \(time,\) waveform"):
        trim_silence(torch.zeros(2, 100))


def test_pad_crop():
    wave = torch.arange(10.0)
    torch.testing.assert_close(pad_crop(wave, 4), torch.arange(4.0))
    padded = pad_crop(wave, 13)
    assert padded.shape == (13,) and padded[10:].eq(0).all() and padded[:10].equal(wave)
    batch = pad_crop(torch.ones(3, 5), 8)
    assert batch.shape == (3, 8) and batch[:, 5:].eq(0).all()
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    crop = pad_crop(wave, 4, random_crop=True, generator=g1)
    assert crop.equal(pad_crop(wave, 4, random_crop=True, generator=g2))
    start = int(crop[0])
    assert crop.equal(torch.arange(start, start + 4, dtype=torch.float32))
    starts = {int(pad_crop(wave, 4, random_crop=True, generator=g1)[0]) for _ in range(50)}
    assert starts == set(range(7))
    with pytest.raises(ValueError, match="length must be a positive number of samples, got 0"):
        pad_crop(wave, 0)


def test_collate_waves_lengths_mask_and_fields():
    items = [
        {"wave": torch.ones(3), "label": 1, "speaker": "a"},
        {"wave": torch.ones(5) * 2, "label": 7, "speaker": "b"},
    ]
    batch = collate_waves(items)
    assert batch["wave"].shape == (2, 5)
    assert batch["lengths"].tolist() == [3, 5]
    assert batch["mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert batch["wave"][0].tolist() == [1, 1, 1, 0, 0]
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [1, 7]
    assert batch["speaker"] == ["a", "b"]
    cropped = collate_waves(items, max_length=4)
    assert cropped["lengths"].tolist() == [3, 4] and cropped["wave"].shape == (2, 4)
    plain = collate_waves([torch.zeros(2), torch.zeros(4)])
    assert set(plain) == {"wave", "lengths", "mask"}
    with_text = collate_waves([{"wave": torch.ones(2), "label": None, "text": "бир"}] * 2)
    assert with_text["label"] == [None, None] and with_text["text"] == ["бир", "бир"]


def test_collate_waves_errors():
    with pytest.raises(ValueError, match="empty batch"):
        collate_waves([])
    with pytest.raises(ValueError, match="item 1 has no 'wave' key"):
        collate_waves([{"wave": torch.ones(2)}, {"audio": torch.ones(2)}])
    with pytest.raises(
        ValueError, match=r"item 0: expected a \(time,\) waveform, got shape \(2, 3\)"
    ):
        collate_waves([torch.ones(2, 3)])


def test_log_mel_shapes_and_value():
    wave = torch.from_numpy(_tone(16000, seconds=1.0, freq=1000.0))
    mel = LogMel(n_mels=40)(wave.unsqueeze(0).repeat(2, 1))
    assert mel.shape == (2, 40, 16000 // 160 + 1)
    assert log_mel(wave).shape == (64, 101)
    # the loudest band is the one whose centre is nearest 1 kHz on the HTK mel scale
    mel_max = 2595 * np.log10(1 + 8000 / 700)
    centres_mel = np.linspace(0, mel_max, 64 + 2)[1:-1]
    expected = int(np.abs(centres_mel - 2595 * np.log10(1 + 1000 / 700)).argmin())
    band = int(log_mel(wave).mean(dim=1).argmax())
    assert abs(band - expected) <= 1
    silent = log_mel(torch.zeros(1600))
    torch.testing.assert_close(silent, torch.full_like(silent, float(np.log(1e-6))))


def test_log_mel_errors():
    with pytest.raises(ValueError, match="n_mels, n_fft and hop_length must be positive"):
        LogMel(n_mels=0)
    with pytest.raises(
        ValueError, match=r"LogMel expects \(time,\) or \(batch, time\), got shape \(1, 1, 100\)"
    ):
        LogMel()(torch.zeros(1, 1, 100))
