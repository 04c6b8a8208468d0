"""Self-supervised losses: pure functions and thin ``nn.Module`` wrappers.

Every function takes projections ``z`` (and predictions ``p``) of shape ``(batch, dim)``, one
row per example, and returns a scalar. Its body is the paper's formula; the inputs are checked
once, at the entry, by :func:`dlsaudio.validation.check_embeddings`, which raises
``ValueError`` for anything but floating-point ``(batch, dim)`` tensors of one shape, and for a
batch of one where the loss needs batch statistics. Nothing here reads global settings or
needs a distributed setup: for a multi-GPU run, gather the embeddings first.

Each loss runs in at least float32 with autocast off (:func:`full_precision`): in float16,
``s / tau`` overflows at a small ``tau`` and Barlow Twins' sum of ``dim**2`` correlations at a
large ``dim``, so mixed-precision training would see inf.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.validation import check_embeddings, check_non_negative, check_positive

# By method: InfoNCE (with the shared pieces), BYOL and SimSiam, Barlow Twins, VICReg.
__all__ = ["DEFAULT_TAU", "full_precision", "info_nce", "InfoNCE"]
__all__ += ["byol_loss", "BYOLLoss", "simsiam_loss", "SimSiamLoss"]
__all__ += ["barlow_twins_loss", "BarlowTwinsLoss", "cross_correlation", "off_diagonal"]
__all__ += ["vicreg_loss", "VICRegLoss", "invariance_term", "variance_term", "covariance_term"]

#: InfoNCE temperature of SimCLR's ImageNet runs (https://arxiv.org/abs/2002.05709), the default
#: of every contrastive loss and method here.
DEFAULT_TAU = 0.1


def full_precision(loss):
    """Run ``loss`` with float16/bfloat16 tensor arguments widened to float32 and autocast off
    (which would narrow the matrix products again); gradients flow back in their own dtype."""

    def widen(x):
        half = isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16)
        return x.float() if half else x

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        args = [widen(x) for x in args]
        kwargs = {k: widen(v) for k, v in kwargs.items()}
        device = next((x.device.type for x in args if isinstance(x, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return loss(*args, **kwargs)

    return wrapper


@full_precision
def info_nce(z1: torch.Tensor, z2: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """NT-Xent, the InfoNCE loss of SimCLR over the 2N views (https://arxiv.org/abs/2002.05709).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are two views of one example (a positive
    pair); all other ``2N - 2`` views in the batch are negatives. With cosine similarity
    ``s_ik`` and ``j`` the positive of ``i``::

        loss = mean_i  -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) )

    The denominator is computed PER ROW: one cross-entropy over the ``(2N, 2N)`` logits with
    the diagonal (``k == i``) masked out, averaged over the ``2N`` anchors. The temperature
    ``tau`` sharpens the softmax: SimCLR uses 0.1 to 0.5; 0.1 here, as in its tables.

    Raises:
        ValueError: bad shapes (see the module docstring), batch < 2, or ``tau <= 0``.
    """
    check_embeddings("z1", z1, "z2", z2, min_batch=2)
    check_positive("tau", tau)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, dim)
    logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))  # (2N, 2N), no k == i terms
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # (2N,)
    return F.cross_entropy(logits, partner)


class InfoNCE(nn.Module):
    """NT-Xent / InfoNCE loss module; see :func:`info_nce` (raises ValueError if ``tau <= 0``)."""

    def __init__(self, tau: float = DEFAULT_TAU) -> None:
        super().__init__()
        self.tau = check_positive("tau", tau)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return info_nce(z1, z2, self.tau)


@full_precision
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL regression loss for one direction (https://arxiv.org/abs/2006.07733).

    ``mean_batch( 2 - 2 * cos(p, stopgrad(z)) )`` in [0, 4], the squared distance between the
    l2-normalised online prediction ``p`` and the target projection ``z`` of the other view,
    which comes from the EMA target network and is detached here, so no gradient reaches it.
    The paper symmetrises by adding the loss with the views swapped; call this twice.

    Raises:
        ValueError: bad shapes (see the module docstring).
    """
    check_embeddings("p", p, "z", z)
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


@full_precision
def simsiam_loss(p1, p2, z1, z2, stop_gradient: bool = True) -> torch.Tensor:
    """Symmetric SimSiam loss (https://arxiv.org/abs/2011.10566), in [-1, 1].

    ``-(cos(p1, stopgrad(z2)) + cos(p2, stopgrad(z1))) / 2``, averaged over the batch: -1 when
    every prediction ``p`` points along the other view's projection ``z``. The stop-gradient
    on ``z`` is what keeps SimSiam from collapsing (Table 1 of the paper); ``stop_gradient=
    False`` lets gradients reach ``z`` too, the ablation with which the paper shows the collapse.

    Raises:
        ValueError: bad shapes (see the module docstring).
    """
    check_embeddings("p1", p1, "z2", z2)
    check_embeddings("p2", p2, "z1", z1)
    check_embeddings("p1", p1, "p2", p2)
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    c1 = F.cosine_similarity(p1, z2, dim=1).mean()
    c2 = F.cosine_similarity(p2, z1, dim=1).mean()
    return -(c1 + c2) / 2


class BYOLLoss(nn.Module):
    """BYOL loss module for one direction; see :func:`byol_loss`."""

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return byol_loss(p, z)


class SimSiamLoss(nn.Module):
    """SimSiam loss module; see :func:`simsiam_loss`."""

    def forward(self, p1, p2, z1, z2) -> torch.Tensor:
        return simsiam_loss(p1, p2, z1, z2)


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(dim, dim)`` matrix, flat: ``(dim*dim - dim,)``.

    Raises:
        ValueError: if ``m`` is not a square matrix.
    """
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"m must be a square (dim, dim) matrix, got shape {tuple(m.shape)}")
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def _correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    def standardise(z: torch.Tensor) -> torch.Tensor:  # as BatchNorm1d(affine=False)
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)

    return standardise(z1).T @ standardise(z2) / z1.shape[0]  # (dim, dim)


@full_precision
def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins' cross-correlation matrix ``C = z1n.T @ z2n / batch``, ``(dim, dim)``, where
    each dimension is standardised along the batch as ``BatchNorm1d(affine=False)`` does.

    Raises:
        ValueError: bad shapes (see the module docstring) or batch < 2.
    """
    check_embeddings("z1", z1, "z2", z2, min_batch=2)
    return _correlation(z1, z2, eps)


@full_precision
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins redundancy-reduction loss (https://arxiv.org/abs/2103.03230).

    ``sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2`` with ``C`` the cross-correlation
    of the batch-standardised projections (:func:`cross_correlation`).

    The default ``lambd = 5e-3`` is the paper's, for an 8192-dimensional projector; with a much
    smaller ``dim`` the off-diagonal sum has far fewer terms, so a larger ``lambd`` (about
    ``1 / dim``) balances the two terms better. The loss grows with ``dim``: tune the learning
    rate accordingly.

    Raises:
        ValueError: bad shapes (see the module docstring), batch < 2, or ``lambd < 0``.
    """
    check_non_negative("lambd", lambd)
    check_embeddings("z1", z1, "z2", z2, min_batch=2)
    c = _correlation(z1, z2)
    return (1 - torch.diagonal(c)).pow(2).sum() + lambd * off_diagonal(c).pow(2).sum()


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins loss module; see :func:`barlow_twins_loss` (ValueError if ``lambd < 0``)."""

    def __init__(self, lambd: float = 5e-3) -> None:
        super().__init__()
        self.lambd = check_non_negative("lambd", lambd)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambd)


def _std_hinge(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()  # std per dim: (dim,)


def _covariance(z: torch.Tensor) -> torch.Tensor:
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (z.shape[0] - 1)  # (dim, dim)
    return off_diagonal(cov).pow(2).sum() / z.shape[1]


@full_precision
def invariance_term(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """VICReg invariance: mean squared error between the two views' embeddings.

    Raises:
        ValueError: bad shapes (see the module docstring).
    """
    check_embeddings("z1", z1, "z2", z2)
    return F.mse_loss(z1, z2)


@full_precision
def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance ``mean_d relu(gamma - sqrt(var_d(z) + eps))``: keeps each dimension's std
    along the batch above ``gamma``, which rules out the collapsed (constant) solution.

    Raises:
        ValueError: bad shape (see the module docstring) or batch < 2.
    """
    check_embeddings("z", z, "z", z, min_batch=2)
    return _std_hinge(z, gamma, eps)


@full_precision
def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """VICReg covariance: sum of squared off-diagonal covariances divided by ``dim``; it
    decorrelates the dimensions so that they carry different information.

    Raises:
        ValueError: bad shape (see the module docstring) or batch < 2.
    """
    check_embeddings("z", z, "z", z, min_batch=2)
    return _covariance(z)


@full_precision
def vicreg_loss(z1, z2, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0) -> torch.Tensor:
    """VICReg: variance-invariance-covariance regularisation (https://arxiv.org/abs/2105.04906).

    ``sim_coeff * invariance(z1, z2) + std_coeff * (variance(z1) + variance(z2)) / 2
    + cov_coeff * (covariance(z1) + covariance(z2))``, as in the official implementation;
    the defaults (25, 25, 1) are the paper's.

    Raises:
        ValueError: bad shapes (see the module docstring), batch < 2, or a negative coefficient.
    """
    check_non_negative("sim_coeff", sim_coeff)
    check_non_negative("std_coeff", std_coeff)
    check_non_negative("cov_coeff", cov_coeff)
    check_embeddings("z1", z1, "z2", z2, min_batch=2)
    return (
        sim_coeff * F.mse_loss(z1, z2)
        + std_coeff * (_std_hinge(z1) + _std_hinge(z2)) / 2
        + cov_coeff * (_covariance(z1) + _covariance(z2))
    )


class VICRegLoss(nn.Module):
    """VICReg loss module; see :func:`vicreg_loss` (ValueError if a coefficient is negative)."""

    def __init__(self, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0) -> None:
        super().__init__()
        self.sim_coeff = check_non_negative("sim_coeff", sim_coeff)
        self.std_coeff = check_non_negative("std_coeff", std_coeff)
        self.cov_coeff = check_non_negative("cov_coeff", cov_coeff)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return vicreg_loss(z1, z2, self.sim_coeff, self.std_coeff, self.cov_coeff)
