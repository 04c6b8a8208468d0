"""Non-contrastive self-supervised methods: BYOL, SimSiam, Barlow Twins and VICReg.

They share the interface of :mod:`dlsaudio.ssl.methods`; none needs negatives. BYOL and SimSiam
predict one view's projection from the other's behind a stop-gradient; Barlow Twins and VICReg
regularise the projections' statistics instead.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from dlsaudio.ssl import losses
from dlsaudio.ssl.encoders import PredictionHead, ProjectionHead
from dlsaudio.ssl.methods import SSLMethod, StepOutput, _dim
from dlsaudio.validation import check_fraction, check_non_negative


def byol_momentum(progress: float, tau_base: float = 0.996) -> float:
    """BYOL's target momentum at a fraction ``progress = k / K`` of training (section 3.2 of
    https://arxiv.org/abs/2006.07733), from ``tau_base`` at the start to 1 at the end:
    ``tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2``.

    Raises:
        ValueError: ``progress`` outside [0, 1] or ``tau_base`` outside [0, 1].
    """
    check_fraction("progress", progress)
    check_fraction("tau_base", tau_base)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter;
    buffers (batch-norm statistics) are copied from the online network."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


class BYOL(SSLMethod):
    """Bootstrap Your Own Latent (https://arxiv.org/abs/2006.07733).

    The online network (encoder, projector, predictor) predicts the target network's
    projection of the other view; the target is an exponential moving average of the online
    encoder and projector and gets no gradient. The loss is symmetrised over the two views.

    The paper's ``dim`` is 256 (128 here for CPU budgets), its ``hidden_dim`` 4096.

    Args:
        tau_base: initial target momentum, raised to 1 by :func:`byol_momentum`. The paper
            uses 0.996 for 300+ epochs; 0.99 (the default) suits the short CPU runs here.
        stop_gradient: the target networks are frozen and computed without a gradient (the
            paper's stop-gradient, built in). ``False`` leaves them trainable and their output
            attached, so that the loss alone must stop the gradient (``z.detach()`` in
            :func:`~dlsaudio.ssl.losses.byol_loss`): the homework's BYOL, where that is the
            student's.

    Raises:
        ValueError: ``tau_base`` outside [0, 1] or a size not positive.
    """

    def __init__(
        self, encoder: nn.Module, dim=128, hidden_dim=512, tau_base=0.99, stop_gradient=True
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
        # A function of the step alone, so a resumed run updates the target as an unbroken one
        self.momentum = byol_momentum(progress, self.tau_base)
        ema_update(self.target_encoder, self.encoder, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)


class SimSiam(SSLMethod):
    """Simple Siamese networks (https://arxiv.org/abs/2011.10566).

    Like BYOL without the moving-average target: the stop-gradient on ``z`` alone prevents
    collapse. :meth:`forward` returns ``p1, p2, z1.detach(), z2.detach()`` so it is visible.

    The switches ``stop_gradient`` and ``predictor`` (without it, ``p = z``) exist to watch
    what the paper shows (Section 4.1 and Table 1): without either, every clip soon maps to
    the same direction. ``dim`` is 2048 in the paper, the predictor's bottleneck
    ``pred_hidden_dim`` ``dim // 4`` as there; the projector has 3 layers.

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

    ``dim`` is 8192 in the paper; 512 suffices for digits. ``lambd`` weighs the off-diagonal
    term of :func:`~dlsaudio.ssl.losses.barlow_twins_loss`.

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

    ``dim`` is 8192 in the paper; 512 suffices for digits. The weights ``sim_coeff``,
    ``std_coeff``, ``cov_coeff`` default to the paper's (25, 25, 1).

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
