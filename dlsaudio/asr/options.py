"""The options of ``python -m dlsaudio.asr``: one dataclass, each field an option
``--field-name`` with its help text and the checks that say which option is wrong."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlsaudio.asr.features import MAX_BAD_AUDIO
from dlsaudio.asr.precision import PRECISIONS
from dlsaudio.asr.sampling import check_mixture
from dlsaudio.asr.train import TrainConfig
from dlsaudio.asr.whisper import DEFAULT_LANGUAGE, language_code

__all__ = ["FineTuneConfig", "parse_weights"]


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"ky_tts=2,kk_tts=1"`` -> ``{"ky_tts": 2.0, "kk_tts": 1.0}``.

    Raises:
        ValueError: an entry is not ``source=number``.
    """
    if text is None:
        return None
    weights = {}
    for entry in text.split(","):
        name, _, value = entry.partition("=")
        try:
            if not name.strip():
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--weights entry {entry!r} is not source=number; "
                "write for example --weights ky_tts=2,kk_tts=1"
            ) from None
    return weights


@dataclass
class FineTuneConfig:
    """Options of ``python -m dlsaudio.asr``; each field is the option ``--field-name``.

    Raises:
        ValueError: a value that cannot work; the message names the option.
    """

    out: Path = field(metadata=_help("folder for results, model and checkpoint"))
    model: str = field(
        default="openai/whisper-small",
        metadata=_help(
            "Hub id or save_pretrained folder; tiny-local builds the offline tiny model"
        ),
    )
    language: str | None = field(
        default=DEFAULT_LANGUAGE,
        metadata=_help(
            "language token (Whisper has no Kyrgyz one; kk = Kazakh); none = no language token"
        ),
    )
    data: str = field(
        default="sample",
        metadata=_help(
            "sample | common_voice:PATH | manifest:PATH | hf:NAME[:CONFIG] "
            "(see dlsaudio.data.load_asr)"
        ),
    )
    hf_revision: str | None = field(
        default=None, metadata=_help("hf: only; refs/convert/parquet for FLEURS")
    )
    text_column: str | None = field(
        default=None,
        metadata=_help(
            "hf: only; the transcript column; default the first of sentence, transcription "
            "(FLEURS), text"
        ),
    )
    steps: int = field(default=3000, metadata=_help("optimizer steps"))
    micro_batch: int = field(default=8, metadata=_help("utterances per micro-batch"))
    accum_steps: int = field(
        default=2, metadata=_help("micro-batches per optimizer step, per process")
    )
    lr: float = field(default=1e-5, metadata=_help("peak learning rate"))
    warmup: int = field(default=300, metadata=_help("warmup steps, then linear decay to 0"))
    eval_every: int = field(default=500, metadata=_help("steps between WER/CER evaluations"))
    weights: str | None = field(
        default=None, metadata=_help("source mixture, e.g. ky_tts=2,kk_tts=1 (others: 0)")
    )
    alpha: float | None = field(
        default=None, metadata=_help("temperature mixture: p_s proportional to n_s**alpha")
    )
    max_train: int | None = field(
        default=None, metadata=_help("N random training utterances (default: all)")
    )
    max_test: int = field(default=500, metadata=_help("N random test utterances"))
    max_bad_audio: float = field(
        default=MAX_BAD_AUDIO,
        metadata=_help(
            "largest share (0 to 1) of each split's clips that may be dropped for missing, "
            "undecodable or silent audio"
        ),
    )
    max_new_tokens: int = field(default=225, metadata=_help("longest transcript"))
    precision: str = field(default="auto", metadata=_help("training precision", choices=PRECISIONS))
    num_workers: int = field(default=2, metadata=_help("data loader processes"))
    seed: int = field(default=0, metadata=_help("seed of the model head, sampler and subsets"))
    resume: bool = field(default=False, metadata=_help("continue from OUT/last.pt"))
    no_progress: bool = field(default=False, metadata=_help("hide progress bars"))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.language is not None and self.language.lower() == "none":
            self.language = None
        for name in ("steps", "micro_batch", "accum_steps", "eval_every", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{_option(name)} must be >= 1, got {getattr(self, name)}")
        for name in ("max_train", "max_test"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(
                    f"{_option(name)} must be >= 1 (a number of utterances), got {getattr(self, name)}"
                )
        if not 0 <= self.warmup < self.steps:
            raise ValueError(
                f"--warmup must be in [0, --steps), got {self.warmup} with --steps {self.steps}"
            )
        if not 0 <= self.max_bad_audio <= 1:
            raise ValueError(
                f"--max-bad-audio must be a share between 0 and 1, got {self.max_bad_audio}"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a positive number (e.g. 1e-5), got {self.lr}")
        if self.num_workers < 0:
            raise ValueError(
                f"--num-workers must be >= 0 (0: load in this process), got {self.num_workers}"
            )
        if self.language is not None:
            try:
                language_code(self.language)
            except ValueError as err:
                raise ValueError(f"--language: {err}") from None
        check_mixture(self.source_weights, self.alpha, names=("--weights", "--alpha"))

    @property
    def source_weights(self) -> dict[str, float] | None:
        """``--weights`` as ``{source: weight}`` (None when not given)."""
        return parse_weights(self.weights)

    def train_config(self) -> TrainConfig:
        """The training loop's settings; it evaluates and checkpoints every ``--eval-every``."""
        passed_on = ("accum_steps", "eval_every", "precision", "resume")
        return TrainConfig(
            max_steps=self.steps,
            checkpoint_dir=self.out,
            checkpoint_every=self.eval_every,
            progress=not self.no_progress,
            log_every=0 if self.no_progress else 50,
            **{name: getattr(self, name) for name in passed_on},
        )

    @property
    def data_options(self) -> dict[str, str]:
        """The options of :func:`dlsaudio.data.load_asr` that were given."""
        options = {"revision": self.hf_revision, "text_column": self.text_column}
        return {name: value for name, value in options.items() if value is not None}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")
