"""Audio loading benchmark: ``python -m dlsaudio.bench audio [--minutes 10 --rate 48000]``.

Prints one JSON object: for a long stereo file (``--minutes`` of noise at ``--rate`` Hz, 16-bit
WAV, and MP3 with ``--mp3``) loaded to mono 16 kHz, the peak memory and the time of

* ``read_whole_then_resample``: decode the whole file at its own rate with ``soundfile.read``,
  average the channels and call :func:`torchaudio.functional.resample` once (how
  :func:`dlsaudio.audio.load_audio` worked before it read in blocks);
* ``load_audio``: :func:`dlsaudio.audio.load_audio`, which reads, mixes and resamples one
  block at a time;
* ``load_audio_window``: :func:`dlsaudio.audio.load_audio` with ``offset`` at the middle of
  the file and ``duration=30``.

With ``--clips N`` it measures instead what training on Common Voice costs the CPUs: N mono
MP3 clips of ``--clip-seconds`` (default 4.55 s, Common Voice ky's mean) at ``--rate`` Hz,
decoded to 16 kHz by :func:`dlsaudio.audio.load_audio` in one process and in ``--workers``
processes (a data loader's workers; Colab has 2 CPUs), and read back from the disk cache of
decoded waves (:meth:`dlsaudio.data.AsrDataset.with_disk_cache`): clips per second of wall
time, and CPU seconds per clip.

Memory method: every configuration runs in a fresh Python process (``--worker``) that imports
everything, reads its peak resident set size (``resource.getrusage`` max RSS, a high-water mark
kept by the kernel), loads the file and reads it again; ``peak_rss_increase_mb`` is the growth
of the high-water mark, ``result_mb`` the size of the returned float32 tensor. Python's
``tracemalloc`` does not see torch's allocations.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("read_whole_then_resample", "load_audio", "load_audio_window")
TARGET_RATE = 16000


def _max_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def read_whole_then_resample(path: str | Path, sample_rate: int = TARGET_RATE):
    """Decode a whole file, mix it to mono and resample it in one call (the reference)."""
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return torchaudio.functional.resample(wave, rate, sample_rate)


def worker(method: str, path: str, seconds: float) -> dict[str, float]:
    """Load ``path`` with ``method`` in this process and measure it."""
    import torch  # noqa: F401  (imports count in the baseline, not in the increase)
    import torchaudio  # noqa: F401

    from dlsaudio.audio import load_audio

    before = _max_rss_mb()
    started = time.perf_counter()
    if method == "read_whole_then_resample":
        wave = read_whole_then_resample(path)
    elif method == "load_audio":
        wave = load_audio(path, TARGET_RATE)
    else:
        wave = load_audio(path, TARGET_RATE, offset=seconds / 2, duration=30.0)
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 2),
        "result_mb": round(wave.numel() * 4 / 2**20, 1),
        "peak_rss_increase_mb": round(_max_rss_mb() - before, 1),
    }


def _run_worker(method: str, path: Path, seconds: float) -> dict[str, float]:
    command = [sys.executable, "-m", "dlsaudio.bench.audio", "--worker", method, str(path)]
    command += ["--minutes", str(seconds / 60)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_long_file(path: Path, minutes: float, rate: int) -> Path:
    """``minutes`` of quiet stereo noise at ``rate`` Hz, written block by block."""
    import numpy as np
    import soundfile as sf

    fmt = "MP3" if path.suffix == ".mp3" else "WAV"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, 2, format=fmt) as f:
        for _ in range(round(minutes * 60)):
            f.write((0.1 * rng.standard_normal((rate, 2))).astype(np.float32))
    return path


def write_clips(folder: Path, n: int, seconds: float, rate: int) -> list[str]:
    """``n`` mono MP3 clips of a tone under noise bursts, roughly speech-like in level."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    paths = []
    for i in range(n):
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + i)
        wave = envelope * (
            0.2 * np.sin(2 * np.pi * (120 + i) * t) + 0.05 * rng.standard_normal(t.size)
        )
        path = folder / f"clip_{i:05d}.mp3"
        sf.write(str(path), wave.astype(np.float32), rate, format="MP3")
        paths.append(str(path))
    return paths


def _one_thread() -> None:
    """As in a data loader's worker: one torch thread per process."""
    import torch

    torch.set_num_threads(1)


def _decode_all(paths: list[str]) -> float:
    """CPU seconds this process spent decoding ``paths`` to 16 kHz."""
    from dlsaudio.audio import load_audio

    start = time.process_time()
    for path in paths:
        load_audio(path, TARGET_RATE)
    return time.process_time() - start


def clip_throughput(paths: list[str], workers: int, cache: Path) -> dict:
    """Clips per second decoding ``paths``: one process, ``workers`` processes, disk cache."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from dlsaudio.data import AsrDataset

    n = len(paths)
    _decode_all(paths[:2])  # warm-up: imports, resampling kernels
    start = time.perf_counter()
    cpu = _decode_all(paths)
    one = time.perf_counter() - start
    chunks = [paths[i::workers] for i in range(workers)]
    # spawn, not fork: a forked child of a process that has run torch can hang in OpenMP
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_one_thread) as pool:
        list(pool.map(_decode_all, [c[:1] for c in chunks]))  # start the workers
        start = time.perf_counter()
        list(pool.map(_decode_all, chunks))
        parallel = time.perf_counter() - start
    data = AsrDataset(paths, [""] * n, ["cv"] * n, cache=False).with_disk_cache(cache)
    for i in range(n):
        data.load_wave(i)  # fill the cache
    start = time.perf_counter()
    for i in range(n):
        data.load_wave(i)
    cached = time.perf_counter() - start
    return {
        "decode_clips_per_second_1_process": round(n / one, 1),
        "decode_cpu_seconds_per_clip": round(cpu / n, 4),
        f"decode_clips_per_second_{workers}_processes": round(n / parallel, 1),
        "disk_cache_clips_per_second_1_process": round(n / cached, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.bench audio", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the test file")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate of the test file")
    parser.add_argument("--mp3", action="store_true", help="also measure an MP3 of the same")
    parser.add_argument("--clips", type=int, default=0, help="measure N short MP3 clips instead")
    parser.add_argument("--clip-seconds", type=float, default=4.55, help="length of each clip")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding clips")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.minutes > 0 or args.rate < 1:
        parser.error("--minutes and --rate must be positive")
    if args.clips < 0 or args.workers < 1 or not args.clip_seconds > 0:
        parser.error("--clips must be >= 0, --workers >= 1, --clip-seconds positive")
    if args.clips:
        with tempfile.TemporaryDirectory() as folder:
            paths = write_clips(Path(folder), args.clips, args.clip_seconds, args.rate)
            result = {
                "clips": f"{args.clips} mono MP3 clips of {args.clip_seconds:g} s at {args.rate} Hz "
                f"({sum(Path(p).stat().st_size for p in paths) / len(paths) / 1024:.0f} KB "
                f"each), decoded to {TARGET_RATE} Hz",
                **clip_throughput(paths, args.workers, Path(folder) / "cache"),
            }
        print(json.dumps(result, indent=2))
        return 0
    if args.worker:
        method, path = args.worker
        print(json.dumps(worker(method, path, args.minutes * 60)))
        return 0
    result: dict = {
        "file": f"{args.minutes:g} min of stereo noise at {args.rate} Hz, loaded as mono "
        f"{TARGET_RATE} Hz",
        "memory_method": "ru_maxrss growth during the load, fresh process per configuration",
    }
    with tempfile.TemporaryDirectory() as folder:
        for ext in ("wav", "mp3") if args.mp3 else ("wav",):
            path = write_long_file(Path(folder) / f"long.{ext}", args.minutes, args.rate)
            result[ext] = {"file_mb": round(path.stat().st_size / 2**20, 1)}
            for method in METHODS:
                result[ext][method] = _run_worker(method, path, args.minutes * 60)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
