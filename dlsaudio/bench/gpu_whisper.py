"""Whisper on one device for ``python -m dlsaudio.bench gpu``: training, memory, decoding.

Every measurement runs the package's own training step, the one :func:`dlsaudio.asr.train.train`
takes: exact accumulation over a window of micro-batches
(:func:`~dlsaudio.asr.accumulation.accumulate_gradients`), unscaling and clipping, then one
optimizer step through the GradScaler (:func:`~dlsaudio.asr.precision.optimizer_step`). The
code is the same on a CPU and on CUDA; only :func:`synchronize`, the memory readings and the
out-of-memory search depend on the device.

Labels are real: the Kyrgyz transcripts of the bundled sample tokenised by the multilingual
Whisper tokenizer with the seminar's prefix and collated by the seminar's collator, so their
token ids and lengths are those of training. Features are random (speed does not depend on what
they hold) and have the model's full window, as every Whisper input has.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import inspect
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dlsaudio.asr.accumulation import accumulate_gradients
from dlsaudio.asr.collator import DataCollatorSpeechSeq2SeqWithPadding
from dlsaudio.asr.inference import evaluate_examples
from dlsaudio.asr.precision import autocast_for, optimizer_step
from dlsaudio.asr.train import TrainConfig
from dlsaudio.asr.whisper import TINY_LOCAL, build_tiny_whisper
from dlsaudio.bench.asr import random_features
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.timing import T4_THROUGHPUT, estimate_seconds

MANIFEST = SAMPLE_DIR / "asr" / "manifest.csv"
"""The bundled Kyrgyz sample; its ``text`` column gives the labels."""

GRAD_CLIP = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "grad_clip")
"""The training loop's default gradient clipping (:class:`dlsaudio.asr.train.TrainConfig`)."""


@dataclasses.dataclass(frozen=True)
class WhisperSize:
    """Widths and depths of a Whisper; vocabulary (51865) and mel bins (80) are the package's."""

    d_model: int
    layers: int  # encoder and decoder layers each
    heads: int
    ffn: int
    chunk_seconds: int = 30
    seminar_model: str | None = None  # the checkpoint of this size, for the stated T4 rate


WHISPER_SIZES = {
    "small": WhisperSize(768, 12, 12, 3072, seminar_model="openai/whisper-small"),
    "base": WhisperSize(512, 6, 8, 2048, seminar_model="openai/whisper-base"),
    "tiny": WhisperSize(
        TINY_LOCAL["d_model"],
        TINY_LOCAL["layers"],
        TINY_LOCAL["heads"],
        4 * TINY_LOCAL["d_model"],
        TINY_LOCAL["chunk_seconds"],
    ),
}
"""``small`` and ``base`` as published for ``openai/whisper-small`` and ``-base``; ``tiny`` is the
offline smoke model (:data:`dlsaudio.asr.TINY_LOCAL`)."""

ASR_SEMINAR = {
    "micro_batch": 8, "accum_steps": 2, "max_steps": 500, "max_new_tokens": 128,
    "eval_every": 250, "monitor_size": 100,
}  # fmt: skip
"""The module-11 seminar's full run: ``BATCH_SIZE``, ``ACCUM_STEPS``, ``MAX_STEPS``,
``MAX_NEW_TOKENS``, ``EVAL_EVERY`` and ``MONITOR_SIZE`` of ``week_11_low_resource/seminar.ipynb``."""

EVAL_BATCH = inspect.signature(evaluate_examples).parameters["batch_size"].default
"""Clips per ``generate`` call when the seminar transcribes."""

MiB = 2**20

Batches = Callable[[int], dict[str, torch.Tensor]]


def build_whisper(size: str) -> tuple[torch.nn.Module, Any]:
    """A randomly initialised Whisper of ``size`` and its processor, built offline on the CPU.

    Raises:
        ValueError: an unknown ``size``.
        ImportError: without ``openai-whisper``, which holds the vocabulary.
        RuntimeError: the built model's feed-forward width is not that of the size.
    """
    if size not in WHISPER_SIZES:
        raise ValueError(f"size={size!r} is unknown; choose from {list(WHISPER_SIZES)}")
    spec = WHISPER_SIZES[size]
    model, processor = build_tiny_whisper(
        d_model=spec.d_model,
        layers=spec.layers,
        heads=spec.heads,
        chunk_seconds=spec.chunk_seconds,
    )
    if model.config.encoder_ffn_dim != spec.ffn:
        raise RuntimeError(f"{size}: ffn {model.config.encoder_ffn_dim}, expected {spec.ffn}")
    return model, processor


def seminar_estimate(
    samples_per_second: float, seminar_model: str | None, clips_per_second: float | None = None
) -> dict[str, Any]:
    """The seminar's time estimate at the measured rates, next to its stated T4 estimate.

    The seminar prints ``time_estimate(MODEL, train=MAX_STEPS * BATCH_SIZE * ACCUM_STEPS,
    transcribe=MAX_STEPS // EVAL_EVERY * MONITOR_SIZE)``: seconds = train / training rate +
    transcribe / transcription rate. ``hours`` is its training part at ``samples_per_second``;
    ``hours_with_monitoring`` adds the monitoring transcriptions at ``clips_per_second`` (with
    decoding forced to ``MAX_NEW_TOKENS``, the longest a hypothesis may be, an upper bound).
    """
    s = ASR_SEMINAR
    examples = s["max_steps"] * s["micro_batch"] * s["accum_steps"]
    monitored = s["max_steps"] // s["eval_every"] * s["monitor_size"]
    result = {
        "train_examples": examples,
        "transcribed_utterances": monitored,
        "formula": "hours = train_examples / samples_per_second / 3600; hours_with_monitoring "
        "adds transcribed_utterances / clips_per_second (the seminar's time_estimate)",
        "samples_per_second": samples_per_second,
        "clips_per_second": clips_per_second,
        "hours": examples / samples_per_second / 3600,
        "hours_with_monitoring": None
        if clips_per_second is None
        else (examples / samples_per_second + monitored / clips_per_second) / 3600,
        "stated_t4": None,
    }
    if seminar_model in T4_THROUGHPUT:
        rate = T4_THROUGHPUT[seminar_model]
        result["stated_t4"] = {
            "model": seminar_model,
            "samples_per_second": rate.train,
            "clips_per_second": rate.transcribe,
            "hours": estimate_seconds(seminar_model, train=examples) / 3600,
            "hours_with_monitoring": estimate_seconds(
                seminar_model, train=examples, transcribe=monitored
            )
            / 3600,
        }
    return result


def kyrgyz_label_ids(tokenizer: Any, manifest=MANIFEST) -> list[list[int]]:
    """Token ids (with the prefix and ``<|endoftext|>``) of the Kyrgyz transcripts in ``manifest``.

    Raises:
        ValueError: the manifest holds no Kyrgyz (``source`` starting with ``ky``) transcript.
    """
    with open(manifest, encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["source"].startswith("ky")]
    if not texts:
        raise ValueError(f"{manifest} has no row whose source starts with 'ky'; expected Kyrgyz")
    return [tokenizer(text).input_ids for text in texts]


def make_batches(processor: Any, model: nn.Module, seed: int = 0) -> Batches:
    """A function ``size -> collated micro-batch`` on the CPU, as the seminar's loader yields them.

    Transcripts are taken in a seeded random order, round after round; features are
    ``(size, n_mels, frames)`` random stand-ins with the model's window.

    Raises:
        ValueError: the bundled manifest has no Kyrgyz transcript.
    """
    config = model.config
    collator = DataCollatorSpeechSeq2SeqWithPadding(processor, config.decoder_start_token_id)
    label_ids = kyrgyz_label_ids(processor.tokenizer)
    frames = 2 * config.max_source_positions  # the encoder's convolutions halve the frames
    generator = torch.Generator().manual_seed(seed)
    queue: list[int] = []

    def batch(size: int) -> dict[str, torch.Tensor]:
        rows = []
        for _ in range(size):
            if not queue:
                queue.extend(torch.randperm(len(label_ids), generator=generator).tolist())
            rows.append(label_ids[queue.pop()])
        features = random_features(size, generator, config.num_mel_bins, frames)
        return collator(
            [{"input_features": f, "labels": r} for f, r in zip(features, rows, strict=True)]
        )

    return batch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; the CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    """Return cached blocks to the device, so the next configuration starts from the same state."""
    if device.type == "cuda":
        gc.collect()  # tensors held by reference cycles (an exception's frames) go first
        torch.cuda.empty_cache()


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclasses.dataclass
class Trainer:
    """One model, optimizer and GradScaler at one precision: the training loop's step."""

    model: nn.Module
    precision: str
    device: torch.device
    lr: float = 1e-5

    def __post_init__(self) -> None:
        self.autocast = autocast_for(self.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.01)

    def reset_scaler(self) -> None:
        """A fresh GradScaler at the current scale: after a step that failed half-way, the old
        one may hold a half-finished ``unscale_``."""
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else 2.0**16
        self.scaler = torch.amp.GradScaler(
            self.device.type, init_scale=scale, enabled=self.scaler.is_enabled()
        )

    def step(self, window: list[dict[str, torch.Tensor]]) -> tuple[int, bool]:
        """One optimizer step over ``window`` (micro-batches, moved to the device here).

        Returns:
            ``(label tokens in the window, whether the optimizer stepped)``; with fp16 the
            GradScaler skips steps whose gradients overflowed.
        """
        window = [_to(batch, self.device) for batch in window]
        _, n_tokens = accumulate_gradients(
            self.model, window, autocast=self.autocast, scale_loss=self.scaler.scale
        )
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        stepped = optimizer_step(self.optimizer, self.scaler)
        self.optimizer.zero_grad(set_to_none=True)
        return n_tokens, stepped


def train_throughput(
    trainer: Trainer, batches: Batches, micro_batch: int, accum_steps: int, steps: int, warmup: int
) -> dict[str, float]:
    """Samples and label tokens per second over ``steps`` optimizer steps after ``warmup`` ones.

    The windows are collated on the CPU beforehand; moving them to the device is timed, as in
    the training loop.
    """
    windows = [[batches(micro_batch) for _ in range(accum_steps)] for _ in range(warmup + steps)]
    trainer.model.train()
    for window in windows[:warmup]:
        trainer.step(window)
    synchronize(trainer.device)
    started = time.perf_counter()
    tokens, skipped = 0, 0
    for window in windows[warmup:]:
        n_tokens, stepped = trainer.step(window)
        tokens += n_tokens
        skipped += not stepped
    synchronize(trainer.device)
    seconds = time.perf_counter() - started
    samples = steps * micro_batch * accum_steps
    return {
        "samples_per_second": samples / seconds,
        "tokens_per_second": tokens / seconds,
        "mean_label_tokens_per_sample": tokens / samples,
        "timed_steps": steps,
        "timed_samples": samples,
        "timed_tokens": tokens,
        "seconds": seconds,
        "skipped_steps": skipped,
    }


@torch.no_grad()
def decode_speed(
    model: nn.Module, precision: str, device: torch.device, clips: int, new_tokens: int
) -> dict[str, float]:
    """Greedy ``generate`` speed on ``clips`` random windows, forced to ``new_tokens`` tokens each.

    ``min_new_tokens = max_new_tokens`` suppresses ``<|endoftext|>`` until the end, so every
    clip costs the same number of decoder steps whatever the weights are. One short call warms
    up first.

    Raises:
        RuntimeError: ``generate`` returned fewer tokens than forced.
    """
    config = model.config
    g = torch.Generator().manual_seed(1)
    features = random_features(clips, g, config.num_mel_bins, 2 * config.max_source_positions)
    features = features.to(device)
    mask = torch.ones(features.shape[0], features.shape[2], dtype=torch.long, device=device)
    autocast = autocast_for(precision, device)
    was_training = model.training
    model.eval()

    def generate(n: int) -> torch.Tensor:
        with autocast():
            return model.generate(
                features, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False
            )

    generate(min(2, new_tokens))
    synchronize(device)
    started = time.perf_counter()
    ids = generate(new_tokens)
    synchronize(device)
    seconds = time.perf_counter() - started
    model.train(was_training)
    if ids.shape[1] < new_tokens:  # Whisper returns the new tokens, without the prefix
        raise RuntimeError(
            f"generate returned {ids.shape[1]} tokens per clip, fewer than the {new_tokens} forced"
        )
    return {
        "clips": clips,
        "new_tokens_per_clip": new_tokens,
        "tokens_per_second": clips * new_tokens / seconds,
        "clips_per_second": clips / seconds,
        "seconds": seconds,
    }
