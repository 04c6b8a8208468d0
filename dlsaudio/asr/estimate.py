"""Time estimates for the module-11 notebooks on a free Colab T4, from stated throughputs.

The throughputs here are assumptions for planning a session, not measurements made by this
package. Training: whisper-small fine-tunes at about 3 examples per second on a free T4 (fp16
autocast, 30 s windows, AdamW); Hugging Face's Whisper fine-tuning guides report 500 steps of
16 examples in about 45 minutes on that GPU. The smaller models are scaled from it by their
encoder cost (6 layers of width 512 for base, 4 of 384 for tiny, against 12 of 768), less than
proportionally because a small model does not fill the GPU. Transcription: greedy decoding in
batches of 8 of short read sentences (Common Voice-like, a few dozen tokens each); long or
repetitive hypotheses take longer. LoRA (:mod:`dlsaudio.asr.lora`) trains at least as fast as
full fine-tuning, so the full fine-tuning rate is an upper bound for it.

Every estimate says that it is one. The progress bars show the real speed; if it differs much,
scale the printed numbers by it.

Module 3 estimates its small convolutional networks from counted FLOPs instead
(:mod:`dlsaudio.timing`). For Whisper a reported throughput is at hand, and the FLOP rate a T4
sustains on ResNet-50 would make whisper-small about three times faster than it trains.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Throughput:
    """Examples per second of one model on one GPU."""

    train: float
    """training examples per second (forward, backward and optimizer step)"""
    transcribe: float
    """utterances per second transcribed with greedy decoding"""


T4 = "a free Colab T4"

T4_THROUGHPUT: dict[str, Throughput] = {
    "openai/whisper-tiny": Throughput(train=15.0, transcribe=16.0),
    "openai/whisper-base": Throughput(train=8.0, transcribe=10.0),
    "openai/whisper-small": Throughput(train=3.0, transcribe=4.0),
    "openai/whisper-medium": Throughput(train=1.0, transcribe=1.5),
}
"""Stated throughputs on a free Colab T4 (see the module docstring for where they come from)."""

PREPARE_PER_SECOND = 50.0
"""Clips decoded, resampled and turned into log-mel features per second on Colab's two CPUs."""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{round(minutes)} min"
    hours, minutes = divmod(round(minutes), 60)
    return f"{hours} h {minutes} min"


def estimate_seconds(
    model: str, *, train: int = 0, transcribe: int = 0, prepare: int = 0
) -> float | None:
    """Seconds to train on ``train`` examples, transcribe ``transcribe`` utterances and prepare
    ``prepare`` clips with ``model`` on a free T4; None when the model has no stated throughput
    and there is GPU work to estimate.

    Raises:
        ValueError: a negative or non-integer count.
    """
    for name, value in (("train", train), ("transcribe", transcribe), ("prepare", prepare)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}; expected a number of examples >= 0")
    rate = T4_THROUGHPUT.get(model)
    if rate is None and (train or transcribe):
        return None
    seconds = prepare / PREPARE_PER_SECOND
    if rate is not None:
        seconds += train / rate.train + transcribe / rate.transcribe
    return seconds


def time_estimate(
    model: str, *, train: int = 0, transcribe: int = 0, prepare: int = 0, device: str | None = None
) -> str:
    """One line saying how long a notebook cell should take on a free Colab T4, and from what.

    Args:
        model: the model name, e.g. ``"openai/whisper-small"`` (a key of :data:`T4_THROUGHPUT`).
        train: training examples (optimizer steps x effective batch).
        transcribe: utterances to transcribe.
        prepare: clips to decode and turn into features (CPU work, the same for every model).
        device: where the notebook runs; on ``"cpu"`` the line adds that a GPU runtime is needed
            for these numbers.

    Returns:
        For example ``"time estimate for a free Colab T4: about 44 min (training 8,000 examples
        at ~3/s, the stated rates of openai/whisper-small) -- an estimate, not a measurement"``.

    Raises:
        ValueError: a negative or non-integer count.
    """
    seconds = estimate_seconds(model, train=train, transcribe=transcribe, prepare=prepare)
    if seconds is None:
        known = ", ".join(T4_THROUGHPUT)
        return (
            f"no time estimate: {model!r} has no stated throughput on {T4} (stated for {known}); "
            "the progress bar shows the real speed"
        )
    rate = T4_THROUGHPUT.get(model)
    parts = []
    if train:
        parts.append(f"training {train:,} examples at ~{rate.train:g}/s")
    if transcribe:
        parts.append(f"transcribing {transcribe:,} utterances at ~{rate.transcribe:g}/s")
    if prepare:
        parts.append(f"preparing {prepare:,} clips at ~{PREPARE_PER_SECOND:g}/s on 2 CPUs")
    source = f", the stated rates of {model}" if rate is not None and (train or transcribe) else ""
    line = (
        f"time estimate for {T4}: about {_duration(seconds)} ({'; '.join(parts) or 'nothing to do'}"
        f"{source}) -- an estimate, not a measurement"
    )
    if device is not None and str(device).startswith("cpu") and (train or transcribe):
        line += (
            "; this runtime has no GPU, so expect it to take many times longer "
            "(Colab: Runtime > Change runtime type > T4 GPU)"
        )
    return line


def checkpoint_gigabytes(trainable: int, total: int) -> float:
    """Size of a resumable checkpoint: every weight in float32 and AdamW's two float32 moments
    of every trainable parameter."""
    if trainable < 0 or total < trainable:
        raise ValueError(f"trainable={trainable}, total={total}: expected 0 <= trainable <= total")
    return (4 * total + 8 * trainable) / 1e9


__all__ = [
    "PREPARE_PER_SECOND",
    "T4_THROUGHPUT",
    "Throughput",
    "checkpoint_gigabytes",
    "estimate_seconds",
    "time_estimate",
]
