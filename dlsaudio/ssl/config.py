"""The SSL training loop's settings: every default written once.

:func:`dlsaudio.ssl.fit` takes a :class:`TrainConfig` (or its fields as keyword arguments),
the command line ``python -m dlsaudio.ssl`` builds its options from the same fields, and the
notebooks override only what they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from dlsaudio.validation import check_int, is_real

__all__ = ["BATCHINGS", "TrainConfig"]

#: How clips are grouped into batches: ``"speaker"`` fills each batch with as few speakers as
#: possible, ``"shuffle"`` draws clips at random.
BATCHINGS = ("speaker", "shuffle")


@dataclass
class TrainConfig:
    """Settings of :func:`dlsaudio.ssl.fit`. Each field's ``help`` is the command line's."""

    epochs: int = field(
        default=10, metadata={"help": "passes over the data (an upper bound with max_minutes)"}
    )
    max_minutes: float | None = field(
        default=None,
        metadata={
            "help": "stop after this much training time; the learning-rate and momentum "
            "schedules then follow the elapsed time"
        },
    )
    batch_size: int = field(
        default=64, metadata={"help": "clips per batch (the last incomplete one is dropped)"}
    )
    lr: float = field(
        default=1e-3, metadata={"help": "peak learning rate of AdamW, cosine decay to 0"}
    )
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    clip_samples: int | None = field(
        default=None,
        metadata={"help": "pad or crop every clip to this many samples (default: 1 s)"},
    )
    seed: int = field(default=0, metadata={"help": "seeds the batches and the views"})
    batching: str = field(
        default="shuffle",
        metadata={"help": f"how clips are grouped into batches, one of {BATCHINGS}"},
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> TrainConfig:
        """Check every field; returns ``self``.

        Raises:
            ValueError: a field out of range, naming the field, the value and what is expected.
        """
        if not _is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not _is_int(self.batch_size) or self.batch_size < 2:
            raise ValueError(
                f"batch_size must be an int >= 2 (contrastive losses need pairs), got "
                f"{self.batch_size!r}"
            )
        if not (is_real(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.max_minutes is not None and not (
            is_real(self.max_minutes) and self.max_minutes > 0
        ):
            raise ValueError(f"max_minutes must be positive or None, got {self.max_minutes!r}")
        if not (is_real(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        if self.clip_samples is not None and (
            not _is_int(self.clip_samples) or self.clip_samples < 1
        ):
            raise ValueError(
                f"clip_samples must be a positive number of samples (16000 = 1 s at 16 kHz), "
                f"got {self.clip_samples!r}"
            )
        check_int("seed", self.seed, minimum=0)  # NumPy's generators take no negative seeds
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching={self.batching!r} is unknown; choose one of {BATCHINGS}")
        return self

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
