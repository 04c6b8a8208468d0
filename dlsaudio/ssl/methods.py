"""Self-supervised methods (and the supervised baseline) behind one interface.

Every method is an ``nn.Module`` whose ``training_step(x1, x2, label=None)`` returns
``StepOutput(loss, z1, z2)``: ``x1``/``x2`` are two views ``(batch, time)`` of the same
clips, made by the data pipeline (augmentations do not live in the models), and ``z1``/``z2``
the projections ``(batch, dim)`` the loss compared. :meth:`SSLMethod.embed` gives the encoder
features that probes and plots evaluate; :meth:`SSLMethod.on_step_end` runs after each
optimizer step (BYOL moves its target network there).

Here: the interface, the contrastive methods (SimCLR, multi-format) and the supervised
baseline; BYOL, SimSiam, Barlow Twins and VICReg are in :mod:`dlsaudio.ssl.non_contrastive`,
masked prediction (data2vec) in :mod:`dlsaudio.ssl.masked`.
:func:`make_method` builds any of them by name with the default encoders.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.ssl import losses
from dlsaudio.ssl.encoders import CONFIGS, ENCODERS, ProjectionHead, make_encoder
from dlsaudio.ssl.losses import DEFAULT_TAU
from dlsaudio.validation import check_choice, check_int, check_positive


class StepOutput(NamedTuple):
    """What ``training_step`` returns: the scalar loss and the two projections ``(batch, dim)``."""

    loss: torch.Tensor
    z1: torch.Tensor
    z2: torch.Tensor


def _check_views(x1: torch.Tensor, x2: torch.Tensor) -> None:
    if x1.ndim != 2 or x1.shape != x2.shape:
        shapes = f"{tuple(x1.shape)} and {tuple(x2.shape)}"
        raise ValueError(f"x1 and x2 must be two views of shape (batch, time), got {shapes}")


def _dim(encoder: nn.Module) -> int:
    if not hasattr(encoder, "dim"):
        name = type(encoder).__name__
        raise ValueError(f"encoder must expose its output size as .dim, got {name}")
    return encoder.dim


class SSLMethod(nn.Module):
    """Base class: an ``encoder`` (waves ``(batch, time)`` to features ``(batch,
    encoder.dim)``) and a ``projector`` head (without one, projections are the features)."""

    needs_labels = False

    def __init__(self, encoder: nn.Module, projector: nn.Module | None = None) -> None:
        super().__init__()
        _dim(encoder)
        self.encoder = encoder
        self.projector = projector if projector is not None else nn.Identity()

    def training_step(self, x1, x2, label: torch.Tensor | None = None) -> StepOutput:
        raise NotImplementedError

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Encoder features ``(batch, dim)`` of waves ``(batch, time)``, before the head."""
        return self.encoder(wave)

    def project(self, wave: torch.Tensor) -> torch.Tensor:
        """Projections ``(batch, dim)`` of waves ``(batch, time)``: the space the loss acts on."""
        return self.projector(self.encoder(wave))

    def views(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``z1, z2`` ``(batch, dim)`` of two views ``(batch, time)``."""
        _check_views(x1, x2)
        return self.project(x1), self.project(x2)

    def on_step_end(self, progress: float) -> None:
        """Hook after each optimizer step; ``progress`` is the fraction of training done."""


class SimCLR(SSLMethod):
    """Two-view contrastive learning with InfoNCE (SimCLR, https://arxiv.org/abs/2002.05709).

    Both views go through the same encoder and projection head (``dim`` outputs, ``hidden_dim``
    wide); the other clips in the batch are the negatives; ``tau`` is InfoNCE's temperature.

    Raises:
        ValueError: ``tau`` or a size is not positive.
    """

    def __init__(self, encoder, dim: int = 128, hidden_dim: int = 512, tau=DEFAULT_TAU):
        super().__init__(encoder, ProjectionHead(_dim(encoder), hidden_dim, dim))
        self.tau = check_positive("tau", tau)

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)  # (batch, dim) each
        return StepOutput(losses.info_nce(z1, z2, tau=self.tau), z1, z2)


class MultiFormatContrastive(SSLMethod):
    """Multi-format contrastive learning: the waveform view and the log-mel view of the same
    clip are a positive pair (CLAR, https://arxiv.org/abs/2010.09542; Wang and van den Oord,
    https://arxiv.org/abs/2103.06508).

    ``x1`` goes through ``wave_encoder``, ``x2`` through ``mel_encoder``, each with its own
    projection head (the two feature spaces differ), and InfoNCE pulls the pair together.
    :meth:`project` is the log-mel side; :meth:`embed` returns the features of ``embed_with``:
    ``"mel"``, ``"wave"`` or ``"both"`` (concatenated).

    Raises:
        ValueError: ``tau`` not positive or ``embed_with`` unknown.
    """

    EMBED_WITH = ("mel", "wave", "both")

    def __init__(
        self, wave_encoder, mel_encoder, dim=128, hidden_dim=512, tau=DEFAULT_TAU, embed_with="mel"
    ) -> None:
        super().__init__(mel_encoder, ProjectionHead(_dim(mel_encoder), hidden_dim, dim))
        self.tau = check_positive("tau", tau)
        self.embed_with = check_choice("embed_with", embed_with, self.EMBED_WITH)
        self.wave_encoder = wave_encoder
        self.wave_projector = ProjectionHead(_dim(wave_encoder), hidden_dim, dim)

    def views(self, x1, x2) -> tuple[torch.Tensor, torch.Tensor]:
        _check_views(x1, x2)
        return self.wave_projector(self.wave_encoder(x1)), self.project(x2)  # wave, log-mel

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)
        return StepOutput(losses.info_nce(z1, z2, tau=self.tau), z1, z2)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        parts = {"wave": [self.wave_encoder], "mel": [self.encoder]}
        parts["both"] = parts["wave"] + parts["mel"]
        return torch.cat([encoder(wave) for encoder in parts[self.embed_with]], dim=1)


class Supervised(SSLMethod):
    """The supervised baseline: the same encoder plus a linear classifier, trained end to end
    with cross-entropy on both augmented views. It has no projection head: ``project`` and
    ``z1``/``z2`` are the encoder features.

    Raises:
        ValueError: ``num_classes`` < 2; in ``training_step``, missing or mismatched labels.
    """

    needs_labels = True

    def __init__(self, encoder: nn.Module, num_classes: int = 10) -> None:
        super().__init__(encoder)
        check_int("num_classes", num_classes, minimum=2)
        self.head = nn.Linear(encoder.dim, num_classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, num_classes)``."""
        return self.head(self.encoder(wave))

    def training_step(self, x1, x2, label=None) -> StepOutput:
        h1, h2 = self.views(x1, x2)  # encoder features
        if label is None or label.shape != (x1.shape[0],):
            got = None if label is None else tuple(label.shape)
            raise ValueError(f"Supervised needs label of shape ({x1.shape[0]},), got {got}")
        loss = (F.cross_entropy(self.head(h1), label) + F.cross_entropy(self.head(h2), label)) / 2
        return StepOutput(loss, h1, h2)


#: The method names; ``"infonce"`` is SimCLR's two-view InfoNCE.
METHODS = (
    *("supervised", "infonce", "multiformat", "byol", "simsiam", "barlow", "vicreg"),
    "data2vec",
)
#: What ``python -m dlsaudio.ssl`` trains unless told otherwise.
DEFAULT_METHOD = "infonce"
#: Methods with an InfoNCE temperature ``tau``.
TAU_METHODS = ("infonce", "multiformat")


def make_method(
    name: str, *, config="small", encoder="mel", num_classes=10, mel_options=None, **kwargs
) -> SSLMethod:
    """Build a method by name with fresh default encoders.

    Args:
        name: one of :data:`METHODS`. ``"infonce"`` (the command line's default) is SimCLR's
            two-view InfoNCE through the log-mel encoder: on FSDD it beat multi-format
            training (the seminar's waveform-view vs log-mel-view model) in the same time,
            with a probe at 10 labels per class of 0.91 against 0.81 after 340 steps.
        config: encoder size, ``"small"`` (CPU) or ``"resnet18"`` (GPU).
        encoder: ``"mel"`` or ``"wave"``, the encoder of single-encoder methods; ``"data2vec"``
            has its own log-mel :class:`~dlsaudio.ssl.masked.FrameEncoder` (``"mel"`` only).
        mel_options: keyword arguments of every :class:`~dlsaudio.ssl.encoders.MelEncoder` or
            :class:`~dlsaudio.ssl.masked.FrameEncoder` built (``n_mels``, ``mean_norm``), to
            compare front ends.
        **kwargs: passed to the method's constructor (``tau``, ``dim``, ``tau_base``, ...).

    Raises:
        ValueError: unknown ``name``, ``config`` or ``encoder``; ``"data2vec"`` with
            ``encoder="wave"``.
    """
    if name not in METHODS:
        raise ValueError(f"method {name!r} is unknown; choose one of {METHODS}")
    check_choice("config", config, CONFIGS)
    check_choice("encoder", encoder, sorted(ENCODERS))
    mel_options = dict(mel_options or {})
    if name == "data2vec":
        from dlsaudio.ssl.masked import Data2Vec, FrameEncoder

        if encoder != "mel":
            raise ValueError(
                f"data2vec predicts masked log-mel frames; encoder={encoder!r} does not apply, use 'mel'"
            )
        return Data2Vec(FrameEncoder(config, **mel_options), **kwargs)
    if name == "multiformat":
        return MultiFormatContrastive(
            make_encoder("wave", config), make_encoder("mel", config, **mel_options), **kwargs
        )
    from dlsaudio.ssl.non_contrastive import BYOL, BarlowTwins, SimSiam, VICReg

    enc = make_encoder(encoder, config, **(mel_options if encoder == "mel" else {}))
    if name == "supervised":
        return Supervised(enc, num_classes=num_classes, **kwargs)
    classes = dict(infonce=SimCLR, byol=BYOL, simsiam=SimSiam, barlow=BarlowTwins, vicreg=VICReg)
    return classes[name](enc, **kwargs)
