"""What a training run records, and how it stops when the loss diverges: one home for both
training loops (:func:`dlsaudio.ssl.fit` and :func:`dlsaudio.asr.train.train`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["History", "TrainingDiverged", "diverged"]


@dataclass
class History:
    """One row per optimizer step, per epoch and per evaluation.

    ``steps`` rows hold at least ``step, loss, lr`` (module 3 adds ``epoch``, ``seconds`` and
    the health metrics of :func:`dlsaudio.ssl.health.health_metrics`); ``epochs`` rows hold
    ``epoch, loss`` (mean), ``clips``, ``seconds`` and ``clips_per_second``; ``eval`` rows hold
    ``step`` and the metrics of an evaluation (module 11's WER, CER, loss). ``collapsed`` says
    whether the embeddings collapsed; ``model`` which model was trained: its class
    (``"module.qualname"``) and ``id``, so a self-check can tell whether a history belongs to a
    given model object.
    """

    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    collapsed: bool = False
    model: dict = field(default_factory=dict)

    def column(self, name: str, per: str = "step") -> list[float]:
        """Values of one field, per ``"step"``, ``"epoch"`` or ``"eval"``."""
        rows = {"step": self.steps, "epoch": self.epochs, "eval": self.eval}[per]
        return [row[name] for row in rows if name in row]

    def clips_per_second(self) -> float:
        """Mean training throughput over all epochs (0 before the first epoch ends)."""
        clips = sum(row["clips"] for row in self.epochs)
        seconds = sum(row["seconds"] for row in self.epochs)
        return clips / seconds if seconds > 0 else 0.0

    def frames(self):
        """The steps and the evaluations as pandas DataFrames ``(steps, eval)``."""
        import pandas as pd

        return pd.DataFrame(self.steps), pd.DataFrame(self.eval)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """A History from :meth:`to_dict` (missing fields take their defaults)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message gives the step, the loss and the lr."""


def diverged(step: int, loss: float, lr: float, advice: str) -> TrainingDiverged:
    """The error for a non-finite loss at ``step``, saying what to change (``advice``)."""
    return TrainingDiverged(
        f"training diverged at step {step}: the loss is {loss} at learning rate {lr:.3g}; {advice}"
    )
