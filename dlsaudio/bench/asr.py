"""ASR benchmark: ``python -m dlsaudio.bench asr [--micro-batch 2 --accum-steps 4 --steps 3]``.

Prints one JSON object:

* ``accumulation``: for a tiny randomly initialised Whisper on the CPU
  (:func:`dlsaudio.asr.build_tiny_whisper`, d_model 64, 2+2 layers), the time of one optimizer
  step and the peak memory of ``accum_steps`` micro-batches of ``micro_batch`` examples
  (exact accumulation, :func:`dlsaudio.asr.accumulation.accumulate_gradients`) against one batch of
  ``accum_steps x micro_batch`` examples. Both compute the same gradient.
* ``sampler_draws_per_second``: :class:`dlsaudio.asr.sampling.SourceWeightedSampler` over
  100,000 examples of 3 sources.
* ``metrics_pairs_per_second``: :func:`dlsaudio.asr.wer` and :func:`dlsaudio.asr.cer` on
  10,000 reference/hypothesis pairs (normalised).

Memory method: every configuration runs in a fresh Python process (``--worker``). It builds
the model and the data, reads its peak resident set size (``resource.getrusage`` max RSS,
a high-water mark kept by the kernel), runs the steps, and reads it again. The reported
``peak_rss_increase_mb`` is the growth of the high-water mark during training: activations,
gradients and optimizer state. Python's ``tracemalloc`` does not see torch's allocations, and
a shared process would keep the high-water mark of the previous configuration. On CUDA one
would read ``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

import torch


def _max_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def random_features(
    size: int, generator: torch.Generator, n_mels: int, frames: int = 3000
) -> torch.Tensor:
    """``(size, n_mels, frames)`` standard-normal stand-ins for log-mel features.

    Speed does not depend on what the features hold; 3000 frames is Whisper's 30 s window.
    """
    return torch.randn(size, n_mels, frames, generator=generator)


def _batch(
    size: int, label_len: int, generator: torch.Generator, n_mels: int
) -> dict[str, torch.Tensor]:
    lengths = torch.randint(label_len // 3, label_len + 1, (size,), generator=generator)
    labels = torch.full((size, label_len), -100)
    for row, n in enumerate(lengths.tolist()):
        labels[row, :n] = torch.randint(400, 50000, (n,), generator=generator)
    return {"input_features": random_features(size, generator, n_mels), "labels": labels}


def worker(micro_batch: int, accum_steps: int, steps: int, label_len: int) -> dict[str, float]:
    """Time ``steps`` optimizer steps of one configuration in this process."""
    from dlsaudio.asr import build_tiny_whisper
    from dlsaudio.asr.accumulation import accumulate_gradients

    torch.manual_seed(0)
    model, _ = build_tiny_whisper()
    n_mels = model.config.num_mel_bins
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    windows = [
        [_batch(micro_batch, label_len, g, n_mels) for _ in range(accum_steps)]
        for _ in range(steps)
    ]
    baseline = _max_rss_mb()
    times = []
    for window in windows:
        started = time.perf_counter()
        accumulate_gradients(model, window)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return {
        "micro_batch": micro_batch,
        "accum_steps": accum_steps,
        "examples_per_step": micro_batch * accum_steps,
        # the first step allocates the optimizer state: report the median of the rest
        "step_seconds": sorted(times[1:] or times)[len(times[1:] or times) // 2],
        "peak_rss_increase_mb": round(_max_rss_mb() - baseline, 1),
        "baseline_rss_mb": round(baseline, 1),
    }


def _run_worker(micro_batch: int, accum_steps: int, steps: int, label_len: int) -> dict[str, float]:
    command = [
        sys.executable, "-m", "dlsaudio.bench.asr", "--worker",
        "--micro-batch", str(micro_batch), "--accum-steps", str(accum_steps),
        "--steps", str(steps), "--label-len", str(label_len),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_accumulation(
    micro_batch: int = 2, accum_steps: int = 4, steps: int = 3, label_len: int = 40
) -> dict:
    """Step time and peak-RSS growth of ``accum_steps x micro_batch`` against ``1 x (accum_steps * micro_batch)``.

    Each configuration runs in a fresh process (see the module docstring for the method).
    """
    return {
        f"{accum_steps} x {micro_batch}": _run_worker(micro_batch, accum_steps, steps, label_len),
        f"1 x {accum_steps * micro_batch}": _run_worker(
            accum_steps * micro_batch, 1, steps, label_len
        ),
    }


def sampler_speed(num_samples: int = 1_000_000) -> float:
    """Indices per second drawn by ``SourceWeightedSampler`` over 100,000 examples."""
    from dlsaudio.asr.sampling import SourceWeightedSampler

    sources = ["ky"] * 70_000 + ["ky_noisy"] * 20_000 + ["kk"] * 10_000
    sampler = SourceWeightedSampler(sources, alpha=0.5, num_samples=num_samples)
    started = time.perf_counter()
    count = sum(1 for _ in sampler)
    return count / (time.perf_counter() - started)


def metrics_speed(pairs: int = 10_000) -> dict[str, float]:
    """Pairs per second for normalised WER and CER on synthetic Kyrgyz-like sentences."""
    from dlsaudio.asr import cer, wer

    rng = random.Random(0)
    words = "бир эки үч төрт беш алты жети сегиз тогуз он жүз миң мен сен ал биз силер алар кел бар ооба жок".split()
    refs = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(pairs)]
    hyps = [
        " ".join(w if rng.random() > 0.2 else rng.choice(words) for w in r.split()) for r in refs
    ]
    speed = {}
    for name, fn in (("wer", wer), ("cer", cer)):
        started = time.perf_counter()
        fn(refs, hyps)
        speed[name] = pairs / (time.perf_counter() - started)
    return speed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.bench asr", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--micro-batch", type=int, default=2, help="examples per micro-batch (b)")
    parser.add_argument(
        "--accum-steps", type=int, default=4, help="micro-batches per optimizer step (k)"
    )
    parser.add_argument(
        "--steps", type=int, default=3, help="optimizer steps timed per configuration"
    )
    parser.add_argument("--label-len", type=int, default=40, help="longest label in tokens")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("micro_batch", "accum_steps", "steps", "label_len"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if args.worker:
        print(json.dumps(worker(args.micro_batch, args.accum_steps, args.steps, args.label_len)))
        return 0
    b, k = args.micro_batch, args.accum_steps
    configurations = compare_accumulation(b, k, args.steps, args.label_len)
    accumulated, one_batch = configurations.values()
    result = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "model": "build_tiny_whisper() (d_model 64, 2 encoder + 2 decoder layers, 80 mel bins)",
        "memory_method": "ru_maxrss growth during training, fresh process per configuration",
        "accumulation": configurations,
        "memory_ratio_accumulated_vs_one_batch": round(
            accumulated["peak_rss_increase_mb"] / max(one_batch["peak_rss_increase_mb"], 1e-9), 3
        ),
        "time_ratio_accumulated_vs_one_batch": round(
            accumulated["step_seconds"] / one_batch["step_seconds"], 3
        ),
        "sampler_draws_per_second": round(sampler_speed()),
        "metrics_pairs_per_second": {name: round(v) for name, v in metrics_speed().items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
