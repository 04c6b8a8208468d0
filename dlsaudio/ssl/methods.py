"""Self-supervised methods (and the supervised baseline) behind one interface.

Every method is an ``nn.Module`` with:

- ``training_step(x1, x2, label=None) -> StepOutput(loss, z1, z2)``: ``x1``/``x2`` are two
  views ``(batch, time)`` of the same clips, made by the data pipeline (augmentations do not
  live in the models); ``z1``/``z2`` are the projections ``(batch, dim)`` used for the
  health metrics;
- ``embed(wave) -> (batch, dim)``: encoder features (before the projection head), the
  representation that probes and plots evaluate;
- ``project(wave) -> (batch, dim)``: projections, the space the loss acts on; ``views(x1, x2)``
  gives both views' projections as the loss compares them;
- ``on_step_end(progress)``: called after each optimizer step with the fraction of training
  done, in [0, 1] (BYOL moves its target network there).

:func:`make_method` builds any of them by name with the default encoders.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.ssl import losses
from dlsaudio.ssl.encoders import CONFIGS, ENCODERS, PredictionHead, ProjectionHead, make_encoder
from dlsaudio.validation import check_fraction, check_int, check_non_negative, check_positive


class StepOutput(NamedTuple):
    """What ``training_step`` returns: the scalar loss and the two projections ``(batch, dim)``."""

    loss: torch.Tensor
    z1: torch.Tensor
    z2: torch.Tensor


def _check_views(x1: torch.Tensor, x2: torch.Tensor) -> None:
    if x1.ndim != 2 or x1.shape != x2.shape:
        raise ValueError(
            f"x1 and x2 must be two views of shape (batch, time), got {tuple(x1.shape)} "
            f"and {tuple(x2.shape)}"
        )


def _dim(encoder: nn.Module) -> int:
    if not hasattr(encoder, "dim"):
        raise ValueError(
            f"encoder must expose its output size as .dim, got {type(encoder).__name__}"
        )
    return encoder.dim


class SSLMethod(nn.Module):
    """Base class: an ``encoder`` and a ``projector`` head plus method-specific parts (see the
    module docstring). Without a projector, projections are the encoder's features."""

    needs_labels = False

    def __init__(self, encoder: nn.Module, projector: nn.Module | None = None) -> None:
        super().__init__()
        _dim(encoder)
        self.encoder = encoder
        self.projector = projector if projector is not None else nn.Identity()

    def training_step(
        self, x1: torch.Tensor, x2: torch.Tensor, label: torch.Tensor | None = None
    ) -> StepOutput:
        raise NotImplementedError

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Encoder features ``(batch, dim)`` of waves ``(batch, time)``."""
        return self.encoder(wave)

    def project(self, wave: torch.Tensor) -> torch.Tensor:
        """Projections ``(batch, dim)`` of waves ``(batch, time)``: the space the loss acts on."""
        return self.projector(self.encoder(wave))

    def views(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``z1, z2`` ``(batch, dim)`` of two views ``(batch, time)``, as the loss
        compares them."""
        _check_views(x1, x2)
        return self.project(x1), self.project(x2)

    def on_step_end(self, progress: float) -> None:
        """Hook after each optimizer step; ``progress`` is the fraction of training done."""


class SimCLR(SSLMethod):
    """Two-view contrastive learning with InfoNCE (SimCLR, https://arxiv.org/abs/2002.05709).

    Both views go through the same encoder and projection head; the other clips in the batch
    are the negatives.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        dim: projection size.
        hidden_dim: hidden width of the projection head.
        tau: InfoNCE temperature.

    Raises:
        ValueError: ``tau`` or a size is not positive.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 128,
        hidden_dim: int = 512,
        tau: float = losses.DEFAULT_TAU,
    ) -> None:
        super().__init__(encoder, ProjectionHead(_dim(encoder), hidden_dim, dim))
        self.tau = check_positive("tau", tau)

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)  # (batch, dim) each
        return StepOutput(losses.info_nce(z1, z2, tau=self.tau), z1, z2)


class MultiFormatContrastive(SSLMethod):
    """Multi-format contrastive learning: the waveform view and the log-mel view of the same
    clip are a positive pair (CLAR, https://arxiv.org/abs/2010.09542; Wang and van den Oord,
    https://arxiv.org/abs/2103.06508).

    ``x1`` goes through the waveform encoder, ``x2`` through the log-mel encoder, each with its
    own projection head (the two feature spaces differ), and InfoNCE pulls the pair together.
    :meth:`project` is the log-mel side (``encoder`` and ``projector``); :meth:`views` the pair.

    Args:
        wave_encoder: the 1D encoder, ``(batch, time)`` -> ``(batch, dim)``.
        mel_encoder: the 2D encoder, ``(batch, time)`` -> ``(batch, dim)``.
        dim: projection size.
        hidden_dim: hidden width of the projection heads.
        tau: InfoNCE temperature.
        embed_with: which features :meth:`embed` returns: ``"mel"``, ``"wave"`` or
            ``"both"`` (concatenated).

    Raises:
        ValueError: ``tau`` not positive or ``embed_with`` unknown.
    """

    EMBED_WITH = ("mel", "wave", "both")

    def __init__(
        self,
        wave_encoder: nn.Module,
        mel_encoder: nn.Module,
        dim: int = 128,
        hidden_dim: int = 512,
        tau: float = losses.DEFAULT_TAU,
        embed_with: str = "mel",
    ) -> None:
        super().__init__(mel_encoder, ProjectionHead(_dim(mel_encoder), hidden_dim, dim))
        self.tau = check_positive("tau", tau)
        if embed_with not in self.EMBED_WITH:
            raise ValueError(
                f"embed_with={embed_with!r} is unknown; choose one of {self.EMBED_WITH}"
            )
        self.embed_with = embed_with
        self.wave_encoder = wave_encoder
        self.wave_projector = ProjectionHead(_dim(wave_encoder), hidden_dim, dim)

    def views(self, x1, x2) -> tuple[torch.Tensor, torch.Tensor]:
        _check_views(x1, x2)
        return self.wave_projector(self.wave_encoder(x1)), self.project(x2)  # wave, log-mel

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)
        return StepOutput(losses.info_nce(z1, z2, tau=self.tau), z1, z2)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        if self.embed_with == "mel":
            return self.encoder(wave)
        if self.embed_with == "wave":
            return self.wave_encoder(wave)
        return torch.cat([self.wave_encoder(wave), self.encoder(wave)], dim=1)


def byol_momentum(progress: float, tau_base: float = 0.996) -> float:
    """BYOL's target momentum at a fraction ``progress = k / K`` of training.

    ``tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2``: ``tau_base`` at the start, 1 at
    the end (https://arxiv.org/abs/2006.07733, section 3.2).

    Raises:
        ValueError: ``progress`` outside [0, 1] or ``tau_base`` outside [0, 1].
    """
    check_fraction("progress", progress)
    check_fraction("tau_base", tau_base)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter.

    Buffers (batch-norm statistics) are copied from the online network.
    """
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


class BYOL(SSLMethod):
    """Bootstrap Your Own Latent (https://arxiv.org/abs/2006.07733).

    The online network (encoder, projector, predictor) predicts the target network's
    projection of the other view; the target is an exponential moving average of the online
    encoder and projector and gets no gradient. The loss is symmetrised over the two views.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        dim: projection size (256 in the paper; 128 here for CPU budgets).
        hidden_dim: hidden width of projector and predictor (4096 in the paper).
        tau_base: initial target momentum, raised to 1 by :func:`byol_momentum`. The paper
            uses 0.996 for 300+ epochs; 0.99 (the default) suits the short CPU runs here.
        stop_gradient: the target networks are frozen and computed without a gradient (the
            paper's stop-gradient, built in). ``False`` leaves them trainable and their output
            attached, so that the loss alone must stop the gradient (``z.detach()`` in
            :func:`dlsaudio.ssl.losses.byol_loss`): the homework's BYOL, where that is the student's.

    Raises:
        ValueError: ``tau_base`` outside [0, 1] or a size not positive.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 128,
        hidden_dim: int = 512,
        tau_base: float = 0.99,
        stop_gradient: bool = True,
    ) -> None:
        super().__init__(encoder, ProjectionHead(_dim(encoder), hidden_dim, dim))
        self.tau_base = self.momentum = check_fraction("tau_base", tau_base)
        self.stop_gradient = bool(stop_gradient)
        self.predictor = PredictionHead(dim, hidden_dim)
        trainable = not self.stop_gradient  # the loss must then stop the gradient
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(trainable)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(trainable)

    def target(self, wave: torch.Tensor) -> torch.Tensor:
        """Target projections ``(batch, dim)``: without a gradient, unless ``stop_gradient`` is
        False, when the loss must stop it."""
        if not self.stop_gradient:
            return self.target_projector(self.target_encoder(wave))
        with torch.no_grad():
            return self.target_projector(self.target_encoder(wave))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        """Return six tensors ``p1, p2, t1, t2, z1, z2``, each ``(batch, dim)``: online
        predictions, target projections and online projections of both views."""
        z1, z2 = self.views(x1, x2)
        return self.predictor(z1), self.predictor(z2), self.target(x1), self.target(x2), z1, z2

    def training_step(self, x1, x2, label=None) -> StepOutput:
        p1, p2, t1, t2, z1, z2 = self(x1, x2)
        loss = losses.byol_loss(p1, t2) + losses.byol_loss(p2, t1)
        return StepOutput(loss, z1, z2)

    def on_step_end(self, progress: float) -> None:
        # The momentum is a function of the step alone (tau_base at the first step, 1 at the
        # end), so a run resumed from a checkpoint updates the target exactly as an
        # uninterrupted one.
        self.momentum = byol_momentum(progress, self.tau_base)
        ema_update(self.target_encoder, self.encoder, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)


class SimSiam(SSLMethod):
    """Simple Siamese networks (https://arxiv.org/abs/2011.10566).

    Like BYOL without the moving-average target: the stop-gradient on ``z`` alone prevents
    collapse. :meth:`forward` returns ``p1, p2, z1.detach(), z2.detach()`` so it is visible.

    The two switches exist to watch what the paper shows (Section 4.1 and Table 1): without the
    stop-gradient, or without the predictor, every clip soon maps to the same direction.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        dim: projection size (2048 in the paper).
        hidden_dim: hidden width of the 3-layer projector.
        pred_hidden_dim: the predictor's bottleneck (dim / 4 in the paper); defaults to dim // 4.
        stop_gradient: detach the projections that the predictions are compared with.
        predictor: use the predictor (without it, ``p = z``).

    Raises:
        ValueError: a size is not positive.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 256,
        hidden_dim: int = 512,
        pred_hidden_dim: int | None = None,
        stop_gradient: bool = True,
        predictor: bool = True,
    ) -> None:
        projector = ProjectionHead(_dim(encoder), hidden_dim, dim, num_layers=3, last_bn=True)
        super().__init__(encoder, projector)
        self.stop_gradient = bool(stop_gradient)
        self.predictor = (
            PredictionHead(dim, pred_hidden_dim or max(dim // 4, 1)) if predictor else nn.Identity()
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        z1, z2 = self.views(x1, x2)  # (batch, dim) each
        p1, p2 = self.predictor(z1), self.predictor(z2)
        if not self.stop_gradient:
            return p1, p2, z1, z2
        return p1, p2, z1.detach(), z2.detach()

    def training_step(self, x1, x2, label=None) -> StepOutput:
        p1, p2, z1, z2 = self(x1, x2)
        loss = losses.simsiam_loss(p1, p2, z1, z2, stop_gradient=self.stop_gradient)
        return StepOutput(loss, z1, z2)


class BarlowTwins(SSLMethod):
    """Barlow Twins (https://arxiv.org/abs/2103.03230): the cross-correlation of the two views'
    projections is pushed to the identity.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        dim: projection size (8192 in the paper; 512 suffices for digits).
        hidden_dim: hidden width of the 3-layer projector.
        lambd: weight of the off-diagonal term.

    Raises:
        ValueError: ``lambd`` negative or a size not positive.
    """

    def __init__(
        self, encoder: nn.Module, dim: int = 512, hidden_dim: int = 512, lambd: float = 5e-3
    ) -> None:
        super().__init__(encoder, ProjectionHead(_dim(encoder), hidden_dim, dim, num_layers=3))
        self.lambd = check_non_negative("lambd", lambd)

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)
        return StepOutput(losses.barlow_twins_loss(z1, z2, lambd=self.lambd), z1, z2)


class VICReg(SSLMethod):
    """VICReg (https://arxiv.org/abs/2105.04906): invariance, variance and covariance terms.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        dim: projection size (8192 in the paper; 512 suffices for digits).
        hidden_dim: hidden width of the 3-layer projector.
        sim_coeff, std_coeff, cov_coeff: the paper's weights (25, 25, 1).

    Raises:
        ValueError: a coefficient negative or not finite, or a size not positive.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 512,
        hidden_dim: int = 512,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__(encoder, ProjectionHead(_dim(encoder), hidden_dim, dim, num_layers=3))
        coeffs = {"sim_coeff": sim_coeff, "std_coeff": std_coeff, "cov_coeff": cov_coeff}
        self.coeffs = {name: check_non_negative(name, value) for name, value in coeffs.items()}

    def training_step(self, x1, x2, label=None) -> StepOutput:
        z1, z2 = self.views(x1, x2)
        return StepOutput(losses.vicreg_loss(z1, z2, **self.coeffs), z1, z2)


class Supervised(SSLMethod):
    """The supervised baseline: the same encoder plus a linear classifier, trained end to end
    with cross-entropy on both augmented views. It has no projection head: ``project`` and
    ``z1``/``z2`` are the encoder features.

    Args:
        encoder: maps ``(batch, time)`` to ``(batch, encoder.dim)``.
        num_classes: number of labels (10 digits).

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
METHODS = ("supervised", "infonce", "multiformat", "byol", "simsiam", "barlow", "vicreg")
#: What ``python -m dlsaudio.ssl`` trains unless told otherwise.
DEFAULT_METHOD = "infonce"
#: Methods with an InfoNCE temperature ``tau``.
TAU_METHODS = ("infonce", "multiformat")


def make_method(
    name: str,
    *,
    config: str = "small",
    encoder: str = "mel",
    num_classes: int = 10,
    mel_options: dict | None = None,
    **kwargs,
) -> SSLMethod:
    """Build a method by name with fresh default encoders.

    Args:
        name: one of :data:`METHODS`. ``"infonce"`` (the default of ``python -m dlsaudio.ssl``)
            is two-view InfoNCE on augmented copies through the log-mel encoder (SimCLR): on
            FSDD it beat multi-format training in the same time (probe with 10
            labels per class 0.91 against 0.81 after 340 one-thread steps).
            ``"multiformat"`` is the seminar's waveform-view vs log-mel-view contrastive model.
        config: encoder size, ``"small"`` (CPU) or ``"resnet18"`` (GPU).
        encoder: ``"mel"`` or ``"wave"``: the encoder of single-encoder methods.
        num_classes: classes of the supervised baseline.
        mel_options: keyword arguments of every :class:`~dlsaudio.ssl.encoders.MelEncoder` built
            (``n_mels``, ``mean_norm``), to compare front ends.
        **kwargs: passed to the method's constructor (``tau``, ``dim``, ``tau_base``, ...).

    Raises:
        ValueError: unknown ``name``, ``config`` or ``encoder``.
    """
    if name not in METHODS:
        raise ValueError(f"method {name!r} is unknown; choose one of {METHODS}")
    if config not in CONFIGS:
        raise ValueError(f"config={config!r} is unknown; choose one of {CONFIGS}")
    if encoder not in ENCODERS:
        raise ValueError(f"encoder={encoder!r} is unknown; choose one of {sorted(ENCODERS)}")
    mel_options = dict(mel_options or {})
    if name == "multiformat":
        return MultiFormatContrastive(
            make_encoder("wave", config), make_encoder("mel", config, **mel_options), **kwargs
        )
    enc = make_encoder(encoder, config, **(mel_options if encoder == "mel" else {}))
    if name == "supervised":
        return Supervised(enc, num_classes=num_classes, **kwargs)
    cls = {
        "infonce": SimCLR,
        "byol": BYOL,
        "simsiam": SimSiam,
        "barlow": BarlowTwins,
        "vicreg": VICReg,
    }[name]
    return cls(enc, **kwargs)
