"""The ASR data set: decoded waves kept on disk (reused by a new session, refreshed when a file
changes), and per-item columns checked."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from dlsaudio.audio import load_audio
from dlsaudio.data import AsrDataset


def _mp3s(folder, n=3):
    folder.mkdir()
    paths = []
    for i in range(n):
        t = np.arange(24000) / 48000
        wave = (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)
        path = folder / f"clip_{i}.mp3"
        sf.write(str(path), wave, 48000, format="MP3")
        paths.append(str(path))
    return paths


def _dataset(paths):
    return AsrDataset(paths, ["бир"] * len(paths), ["cv"] * len(paths), cache=False)


def test_a_new_session_reads_the_cache_and_a_changed_file_is_decoded_again(tmp_path):
    paths = _mp3s(tmp_path / "clips")
    cache = tmp_path / "cache"
    first = [_dataset(paths).with_disk_cache(cache)[i]["wave"] for i in range(3)]
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == 3 and not list(cache.rglob("*.part"))
    assert all(w.dtype == torch.float32 and w.numel() == 8000 for w in first)  # 0.5 s at 16 kHz

    # Same size and time, other bytes: only a read from the cache can still give the wave.
    stat = os.stat(paths[1])
    with open(paths[1], "r+b") as f:
        f.write(b"\0" * stat.st_size)
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = _dataset(paths).with_disk_cache(cache)
    torch.testing.assert_close(again[1]["wave"], first[1], rtol=0, atol=0)

    # A file that changed (new modification time) is decoded afresh, not served stale.
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="clip_1.mp3"):
        _dataset(paths).with_disk_cache(cache)[1]


def test_without_a_disk_cache_nothing_is_written(tmp_path):
    paths = _mp3s(tmp_path / "clips", n=1)
    _dataset(paths)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == ["clip_0.mp3"]


def test_subsets_share_the_disk_cache(tmp_path):
    paths = _mp3s(tmp_path / "clips")
    data = _dataset(paths).with_disk_cache(tmp_path / "cache")
    data.subset([2])[0]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1


def test_clip_benchmark_decodes_what_the_cache_then_serves(tmp_path, capsys):
    from dlsaudio.bench import audio as bench

    paths = bench.write_clips(tmp_path, 3, seconds=0.5, rate=48000)
    result = bench.clip_throughput(paths, workers=2, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3
    assert set(result) == {
        "decode_clips_per_second_1_process",
        "decode_cpu_seconds_per_clip",
        "decode_clips_per_second_2_processes",
        "disk_cache_clips_per_second_1_process",
    }
    assert all(value > 0 for value in result.values())
    cached = _dataset(paths).with_disk_cache(tmp_path / "cache")[2]["wave"]
    torch.testing.assert_close(cached, load_audio(paths[2]), rtol=0, atol=0)


def test_per_item_columns_given_as_a_string_are_refused(tmp_path):
    paths = _mp3s(tmp_path / "clips", n=2)
    with pytest.raises(ValueError, match=r"sources must hold one entry per item.*per character"):
        AsrDataset(paths, ["бир", "эки"], "ky")
    with pytest.raises(ValueError, match=r"texts must hold one entry per item"):
        AsrDataset(paths, "ab", ["ky", "ky"])
