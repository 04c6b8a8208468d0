"""The SSL training loop's settings: every default written once.

:func:`dlsaudio.ssl.fit` takes a :class:`TrainConfig` (or its fields as keyword arguments),
the command line ``python -m dlsaudio.ssl`` builds its options from the same fields, and the
notebooks override only what they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from dlsaudio.validation import check_int, check_non_negative, check_positive

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
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size (contrastive losses need pairs)", self.batch_size, minimum=2)
        check_positive("lr", self.lr)
        if self.max_minutes is not None:
            check_positive("max_minutes", self.max_minutes)
        check_non_negative("weight_decay", self.weight_decay)
        if self.clip_samples is not None:
            check_int("clip_samples (16000 = 1 s at 16 kHz)", self.clip_samples, minimum=1)
        check_int("seed", self.seed, minimum=0)  # NumPy's generators take no negative seeds
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching={self.batching!r} is unknown; choose one of {BATCHINGS}")
        return self

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
