import math

import numpy as np
import pytest
import soundfile as sf
import torch

from dlsaudio.audio import (
    AudioFileError,
    LogMel,
    collate_waves,
    load_audio,
    log_mel,
    pad_crop,
    trim_silence,
)


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
    with pytest.raises(ValueError, match=r"surround\.wav: has 6 channels.*max_channels"):
        load_audio(path)
    assert load_audio(path, max_channels=6).ndim == 1


def test_bad_sample_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(16000), 16000)
    with pytest.raises(ValueError, match="sample_rate must be a positive whole number"):
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
    with pytest.raises(ValueError, match="length must be a positive whole number"):
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
    with pytest.raises(ValueError, match=r"item 0: expected a \(time,\) waveform"):
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
    with pytest.raises(ValueError, match=r"LogMel expects \(time,\) or \(batch, time\)"):
        LogMel()(torch.zeros(1, 1, 100))


# --------------------------------------------------------------------------- bad files


def _cut(path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_a_wav_cut_short_is_refused(tmp_path, subtype):
    path = tmp_path / "cut.wav"
    sf.write(str(path), _tone(16000, seconds=1.0), 16000, subtype=subtype)
    _cut(path, 0.5)
    with pytest.raises(
        AudioFileError,
        match=r"cut\.wav: is cut short",
    ) as info:
        load_audio(path)
    assert info.value.reason == "truncated"


def test_an_mp3_cut_short_is_refused(tmp_path):
    path = tmp_path / "cut.mp3"
    sf.write(str(path), _tone(16000, seconds=1.0), 16000, format="MP3")
    assert abs(load_audio(path).numel() - 16000) <= 1152  # the whole file reads in full
    _cut(path, 0.5)
    with pytest.raises(AudioFileError, match=r"cut\.mp3: is cut short"):
        load_audio(path)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_other_formats_cut_short_are_refused(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(str(path), _tone(16000, seconds=1.0), 16000, format=fmt)
    _cut(path, 0.5)
    with pytest.raises(
        AudioFileError,
        match=r"cut\.(flac|ogg): (cannot be decoded|decoding failed|is cut short|the audio is empty)",
    ):
        load_audio(path)


def test_a_float_wav_far_above_full_scale_is_refused(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(str(path), 12 * _tone(16000), 16000, subtype="FLOAT")  # peaks at 6.0
    with pytest.raises(
        AudioFileError,
        match=r"loud\.wav: peaks at 6, above max_peak",
    ) as info:
        load_audio(path)
    assert info.value.reason == "out_of_range"
    assert float(load_audio(path, max_peak=None).abs().max()) == pytest.approx(6.0, rel=1e-3)
    sf.write(str(path), 2.4 * _tone(16000), 16000, subtype="FLOAT")  # 1.2: a codec's overshoot
    assert float(load_audio(path).abs().max()) == pytest.approx(1.2, rel=1e-3)


@pytest.mark.parametrize("bad", [None, 3, ""])
def test_path_must_be_a_path(bad):
    with pytest.raises(ValueError, match="path must be the path of an audio file"):
        load_audio(bad)


@pytest.mark.parametrize("rate", [16000.5, 0, -8000, "16000", True, float("nan")])
def test_sample_rate_must_be_a_whole_number(tmp_path, rate):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(16000), 16000)
    with pytest.raises(ValueError, match="sample_rate must be a positive whole number"):
        load_audio(path, rate)


def test_a_whole_float_sample_rate_is_fine(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(8000), 8000)
    assert load_audio(path, 16000.0).numel() == 8000


def test_collate_waves_max_length_must_be_positive():
    for bad in (0, -1, 2.5):
        with pytest.raises(
            ValueError, match=f"max_length must be a positive number of samples or None, got {bad}"
        ):
            collate_waves([torch.ones(5)], max_length=bad)


def test_log_mel_of_a_clip_shorter_than_half_a_window():
    with pytest.raises(
        ValueError,
        match=r"a log-mel spectrogram needs at least 201 samples",
    ):
        log_mel(torch.ones(1))
    assert log_mel(torch.ones(201)).shape == (64, 2)


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("file_rate", "target", "fmt"),
    [
        (48000, 16000, "WAV"),
        (44100, 16000, "FLAC"),
        (22050, 16000, "WAV"),
        (16000, 16000, "WAV"),
        (8000, 16000, "FLAC"),
    ],
)
def test_blockwise_decoding_equals_resampling_the_whole_file(
    tmp_path, monkeypatch, file_rate, target, fmt
):
    import torchaudio

    from dlsaudio import audio_io

    monkeypatch.setattr(audio_io, "_BLOCK_SECONDS", 0.37)  # many blocks, none aligned with anything
    seconds = 2.3
    rng = np.random.default_rng(0)
    stereo = (0.3 * rng.standard_normal((int(file_rate * seconds), 2))).astype(np.float32)
    path = tmp_path / f"noise.{fmt.lower()}"
    sf.write(
        str(path), stereo, file_rate, format=fmt, subtype="FLOAT" if fmt == "WAV" else "PCM_24"
    )
    decoded = torch.from_numpy(sf.read(str(path), dtype="float32")[0].mean(axis=1))
    whole = torchaudio.functional.resample(decoded, file_rate, target)
    # equal up to float32 rounding (the convolution sums in another order)
    torch.testing.assert_close(load_audio(path, target), whole, atol=1e-5, rtol=0)
    start = round(0.55 * file_rate)
    stop = start + round(1.1 * file_rate)
    window = torchaudio.functional.resample(decoded[start:stop], file_rate, target)
    torch.testing.assert_close(
        load_audio(path, target, offset=0.55, duration=1.1), window, atol=1e-5, rtol=0
    )
    tail = load_audio(path, target, offset=2.0, duration=10.0)  # stops at the end of the file
    assert tail.numel() == math.ceil((len(decoded) - round(2.0 * file_rate)) * target / file_rate)


@pytest.mark.parametrize("fmt", ["MP3", "OGG"])
def test_lossy_files_in_blocks_and_windows_match_one_whole_decode(tmp_path, monkeypatch, fmt):
    from dlsaudio import audio_io

    monkeypatch.setattr(audio_io, "_BLOCK_SECONDS", 0.37)
    t = np.arange(6 * 16000) / 16000
    chirp = (0.5 * np.sin(2 * np.pi * (200 * t + 60 * t**2))).astype(np.float32)
    path = tmp_path / f"chirp.{fmt.lower()}"
    sf.write(str(path), chirp, 16000, format=fmt)
    # an MP3 with little to encode leans on the bit reservoir, which libsndfile loses across reads
    whole = torch.from_numpy(sf.read(str(path), dtype="float32")[0])
    torch.testing.assert_close(load_audio(path), whole, atol=1e-6, rtol=0)
    for offset in (0.3, 3.0, 4.5):
        window = load_audio(path, offset=offset, duration=0.5)
        start = round(offset * 16000)
        assert window.numel() == 8000
        torch.testing.assert_close(window, whole[start : start + 8000], atol=1e-6, rtol=0)


def test_window_errors(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _tone(16000, seconds=1.0), 16000)
    with pytest.raises(ValueError, match=r"offset=2.0 s is past the end"):
        load_audio(path, offset=2.0)
    with pytest.raises(ValueError, match="offset must be a number of seconds >= 0"):
        load_audio(path, offset=-1)
    with pytest.raises(ValueError, match="duration must be a positive number of seconds"):
        load_audio(path, duration=0)


def test_a_folder_is_not_an_audio_file(tmp_path):
    with pytest.raises(ValueError, match="is a folder, not an audio file"):
        load_audio(tmp_path)


def test_audio_benchmark_reference_computes_what_load_audio_computes(tmp_path):
    from dlsaudio.bench import audio as bench

    path = bench.write_long_file(tmp_path / "long.wav", minutes=0.05, rate=44100)
    reference = bench.read_whole_then_resample(path)
    torch.testing.assert_close(load_audio(path), reference, atol=1e-5, rtol=0)
    measured = bench.worker("load_audio_window", str(path), seconds=3.0)
    assert measured["result_mb"] == pytest.approx(1.5 * 16000 * 4 / 2**20, abs=0.05)


def test_collate_refuses_integer_and_empty_waves_and_keeps_float_precision():
    int_then_float = [torch.tensor([1, 2], dtype=torch.int16), torch.tensor([0.5, -0.25])]
    with pytest.raises(ValueError, match=r"item 0 holds torch.int16 samples"):
        collate_waves(int_then_float)
    with pytest.raises(ValueError, match="item 1 has no samples"):
        collate_waves([torch.zeros(4), torch.zeros(0)])
    mixed = collate_waves([torch.zeros(3), torch.tensor([0.1, 0.2], dtype=torch.float64)])
    assert mixed["wave"].dtype == torch.float64 and mixed["wave"][1, 0].item() == 0.1


def test_log_mel_and_pad_crop_name_a_wrong_input():
    with pytest.raises(ValueError, match="expects a torch.Tensor wave, got ndarray"):
        log_mel(np.zeros(16000))
    with pytest.raises(ValueError, match="the wave holds torch.int16 samples"):
        log_mel(torch.zeros(16000, dtype=torch.int16))
    for length in (2.5, "10", True, 0):
        with pytest.raises(ValueError, match="length must be a positive whole number"):
            pad_crop(torch.zeros(5), length)
