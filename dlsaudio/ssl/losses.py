"""Self-supervised losses: pure functions and thin ``nn.Module`` wrappers.

Every function takes projections ``z`` (and predictions ``p``) of shape ``(batch, dim)``, one
row per example, and returns a scalar. Nothing here reads global settings or needs a
distributed setup: for a multi-GPU run, gather the embeddings before calling the loss.
Losses are computed in at least float32 with autocast off (half-precision inputs are widened),
so mixed-precision training gets the same, finite value as full precision.

Contrastive: :func:`info_nce` (NT-Xent, SimCLR). Non-contrastive: :func:`byol_loss`,
:func:`simsiam_loss`, :func:`barlow_twins_loss`, :func:`vicreg_loss`.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_TAU",
    "BYOLLoss",
    "BarlowTwinsLoss",
    "InfoNCE",
    "SimSiamLoss",
    "VICRegLoss",
    "barlow_twins_loss",
    "byol_loss",
    "covariance_term",
    "cross_correlation",
    "info_nce",
    "info_nce_shared_denominator",
    "invariance_term",
    "off_diagonal",
    "simsiam_loss",
    "variance_term",
    "vicreg_loss",
]


#: InfoNCE temperature of SimCLR's ImageNet runs (https://arxiv.org/abs/2002.05709), the default
#: of every contrastive loss and method here.
DEFAULT_TAU = 0.1


def _check_pair(name1: str, a: torch.Tensor, name2: str, b: torch.Tensor, min_batch: int) -> None:
    for name, x in ((name1, a), (name2, b)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor of shape (batch, dim), got {type(x).__name__}"
            )
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(
                f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                f"convert it with {name}.float()"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"{name1} and {name2} must have the same shape (batch, dim), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < min_batch:
        raise ValueError(f"{name1} has batch size {a.shape[0]}, expected at least {min_batch}")
    if a.shape[1] < 1:
        raise ValueError(f"{name1} has dim {a.shape[1]}, expected at least 1")


def _at_least_float32(loss):
    """Compute ``loss`` in float32 (or float64) with autocast off.

    In float16, ``s / tau`` overflows at a small ``tau`` and Barlow Twins' sum over ``dim**2``
    correlations overflows at a large ``dim``: both return inf. Half-precision inputs are
    widened to float32 (gradients flow back in their own dtype) and autocast, which would
    narrow the matrix products again, is switched off inside the loss.
    """

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        def widen(x):
            if isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16):
                return x.float()
            return x

        args = [widen(x) for x in args]
        kwargs = {k: widen(v) for k, v in kwargs.items()}
        device = next((x.device.type for x in args if isinstance(x, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return loss(*args, **kwargs)

    return wrapper


def _is_number(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive(name: str, value: float) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")


class _PairLoss(nn.Module):
    """A thin module around a pure loss of two views ``(z1, z2)`` with float hyper-parameters.

    A subclass sets :attr:`loss` and calls ``super().__init__(check, name=value, ...)``: each
    value is validated by ``check(name, value)``, stored as a float attribute of that name and
    passed to the loss by name.
    """

    loss: Callable[..., torch.Tensor]
    """The pure function, called as ``loss(z1, z2, **hparams)``."""

    def __init__(self, check: Callable[[str, float], None], **hparams: float) -> None:
        super().__init__()
        for name, value in hparams.items():
            check(name, value)
            setattr(self, name, float(value))
        self._hparams = tuple(hparams)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.loss(z1, z2, **{name: getattr(self, name) for name in self._hparams})

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in self._hparams)


# --------------------------------------------------------------------------- contrastive


def _view_logits(
    z1: torch.Tensor, z2: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(2N, 2N)`` cosine logits of all views over ``tau``, without ``k == i`` terms, and
    the ``(2N,)`` column of each row's positive (its other view).

    Raises:
        ValueError: as :func:`info_nce`.
    """
    _check_pair("z1", z1, "z2", z2, min_batch=2)
    _check_positive("tau", tau)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2N, dim)
    logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))  # (2N, 2N), no k == i terms
    idx = torch.arange(n, device=z.device)
    return logits, torch.cat([idx + n, idx])  # the positive of row i is its other view


@_at_least_float32
def info_nce(z1: torch.Tensor, z2: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """NT-Xent, the InfoNCE loss of SimCLR over the 2N views (https://arxiv.org/abs/2002.05709).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are two views of one example (a positive
    pair); all other ``2N - 2`` views in the batch are negatives. With cosine similarity
    ``s_ik`` and ``j`` the positive of ``i``::

        loss = mean_i  -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) )

    The denominator is computed PER ROW. Computed as one cross-entropy over the masked
    ``(2N, 2N)`` logits: the diagonal (``k == i``) is filled with ``-inf``.

    Args:
        z1: ``(batch, dim)`` projections of the first views.
        z2: ``(batch, dim)`` projections of the second views.
        tau: temperature; SimCLR uses 0.1 to 0.5 (0.1 here, as in its CIFAR/ImageNet tables).

    Returns:
        The mean loss over the ``2 * batch`` anchors, a scalar.

    Raises:
        ValueError: if the shapes differ, are not floating-point ``(batch, dim)`` tensors, batch < 2, or tau <= 0.
    """
    logits, targets = _view_logits(z1, z2, tau)
    return F.cross_entropy(logits, targets)


@_at_least_float32
def info_nce_shared_denominator(
    z1: torch.Tensor, z2: torch.Tensor, tau: float = DEFAULT_TAU
) -> torch.Tensor:
    """A defective NT-Xent, shown in the seminar as a common mistake. Do not train with it.

    It divides every positive by ONE normaliser, the sum of ``exp(s_ik / tau)`` over the whole
    ``(2N, 2N)`` matrix without its diagonal, instead of each row's own sum. That sum is
    about 2N times a typical row sum, so the loss is off by about ``log(2N)``, and the
    gradient no longer pushes each anchor away from its own hardest negatives. Kept so that
    the seminar and the tests can show the difference with :func:`info_nce`.

    Args:
        z1: ``(batch, dim)`` projections of the first views.
        z2: ``(batch, dim)`` projections of the second views.
        tau: temperature.

    Returns:
        A scalar.

    Raises:
        ValueError: as :func:`info_nce`.
    """
    logits, targets = _view_logits(z1, z2, tau)
    positives = logits[torch.arange(len(targets), device=logits.device), targets]  # (2N,)
    return (torch.logsumexp(logits.flatten(), dim=0) - positives).mean()


class InfoNCE(_PairLoss):
    """NT-Xent / InfoNCE loss module; see :func:`info_nce`.

    Raises:
        ValueError: if ``tau`` is not positive.
    """

    loss = staticmethod(info_nce)

    def __init__(self, tau: float = DEFAULT_TAU) -> None:
        super().__init__(_check_positive, tau=tau)


# --------------------------------------------------------------------------- BYOL, SimSiam


@_at_least_float32
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL regression loss for one direction (https://arxiv.org/abs/2006.07733).

    ``mean_batch( 2 - 2 * cos(p, stopgrad(z)) )``, i.e. the squared distance between the
    l2-normalised online prediction ``p`` and target projection ``z``. ``z`` comes from the
    EMA target network and is detached here, so no gradient reaches it. The paper
    symmetrises by adding the loss with the views swapped; call this twice.

    Args:
        p: ``(batch, dim)`` predictions of the online network.
        z: ``(batch, dim)`` projections of the target network (for the other view).

    Returns:
        A scalar in [0, 4].

    Raises:
        ValueError: if the shapes differ or are not floating-point ``(batch, dim)`` tensors.
    """
    _check_pair("p", p, "z", z, min_batch=1)
    cos = F.cosine_similarity(p, z.detach(), dim=1)  # (batch,)
    return (2 - 2 * cos).mean()


@_at_least_float32
def simsiam_loss(
    p1: torch.Tensor,
    p2: torch.Tensor,
    z1: torch.Tensor,
    z2: torch.Tensor,
    stop_gradient: bool = True,
) -> torch.Tensor:
    """Symmetric SimSiam loss (https://arxiv.org/abs/2011.10566).

    ``-(cos(p1, stopgrad(z2)) + cos(p2, stopgrad(z1))) / 2``, averaged over the batch. The
    stop-gradient on ``z`` is what keeps SimSiam from collapsing (Table 1 of the paper).

    Args:
        p1: ``(batch, dim)`` predictions for view 1.
        p2: ``(batch, dim)`` predictions for view 2.
        z1: ``(batch, dim)`` projections of view 1.
        z2: ``(batch, dim)`` projections of view 2.
        stop_gradient: detach ``z1`` and ``z2``; ``False`` lets gradients reach them too, the
            ablation with which the paper shows the collapse.

    Returns:
        A scalar in [-1, 1]; -1 when every prediction points along its target.

    Raises:
        ValueError: if the four shapes differ or are not floating-point ``(batch, dim)`` tensors.
    """
    _check_pair("p1", p1, "z2", z2, min_batch=1)
    _check_pair("p2", p2, "z1", z1, min_batch=1)
    _check_pair("p1", p1, "p2", p2, min_batch=1)
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

    def forward(
        self, p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
    ) -> torch.Tensor:
        return simsiam_loss(p1, p2, z1, z2)


# --------------------------------------------------------------------------- Barlow Twins


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(dim, dim)`` matrix as a flat ``(dim*dim - dim,)`` tensor.

    Raises:
        ValueError: if ``m`` is not a square matrix.
    """
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"m must be a square (dim, dim) matrix, got shape {tuple(m.shape)}")
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


@_at_least_float32
def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins' cross-correlation matrix ``C`` of shape ``(dim, dim)``.

    Each dimension is standardised along the batch (as ``BatchNorm1d(affine=False)``: biased
    variance, ``eps`` added), then ``C = z1n.T @ z2n / batch``.

    Raises:
        ValueError: if the shapes differ, are not floating-point ``(batch, dim)`` tensors or batch < 2.
    """
    _check_pair("z1", z1, "z2", z2, min_batch=2)

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)

    return standardise(z1).T @ standardise(z2) / z1.shape[0]  # (dim, dim)


@_at_least_float32
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins redundancy-reduction loss (https://arxiv.org/abs/2103.03230).

    ``sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2`` with ``C`` the cross-correlation
    of the batch-standardised projections (:func:`cross_correlation`).

    The default ``lambd = 5e-3`` is the paper's (the official code uses 0.0051). The paper's
    projector has 8192 dimensions; with a much smaller ``dim`` the off-diagonal sum has far
    fewer terms, so a larger ``lambd`` (about ``1 / dim``) balances the two terms better.
    The loss is not divided by anything: its scale grows with ``dim`` (an early version of
    the official code multiplied it by a ``scale_loss`` of 1/32); tune the learning rate
    accordingly.

    Args:
        z1: ``(batch, dim)`` projections of the first views.
        z2: ``(batch, dim)`` projections of the second views.
        lambd: weight of the redundancy-reduction (off-diagonal) term.

    Returns:
        A non-negative scalar.

    Raises:
        ValueError: if the shapes differ, are not floating-point ``(batch, dim)`` tensors, batch < 2, or lambd < 0.
    """
    _check_non_negative("lambd", lambd)
    c = cross_correlation(z1, z2)
    on_diag = (1 - torch.diagonal(c)).pow(2).sum()
    off_diag = off_diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag


class BarlowTwinsLoss(_PairLoss):
    """Barlow Twins loss module; see :func:`barlow_twins_loss`.

    Raises:
        ValueError: if ``lambd`` is negative.
    """

    loss = staticmethod(barlow_twins_loss)

    def __init__(self, lambd: float = 5e-3) -> None:
        super().__init__(_check_non_negative, lambd=lambd)


# --------------------------------------------------------------------------- VICReg


@_at_least_float32
def invariance_term(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """VICReg invariance: mean squared error between the two views' embeddings.

    Raises:
        ValueError: if the shapes differ or are not floating-point ``(batch, dim)`` tensors.
    """
    _check_pair("z1", z1, "z2", z2, min_batch=1)
    return F.mse_loss(z1, z2)


@_at_least_float32
def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance: hinge ``mean_d relu(gamma - sqrt(var_d(z) + eps))`` on each dimension's std.

    Keeps every dimension's standard deviation along the batch above ``gamma``, which rules
    out the collapsed (constant) solution.

    Raises:
        ValueError: if ``z`` is not a floating-point ``(batch, dim)`` tensor with batch >= 2.
    """
    _check_pair("z", z, "z", z, min_batch=2)
    std = torch.sqrt(z.var(dim=0) + eps)  # (dim,)
    return F.relu(gamma - std).mean()


@_at_least_float32
def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """VICReg covariance: sum of squared off-diagonal covariances divided by ``dim``.

    Decorrelates the dimensions so that they carry different information.

    Raises:
        ValueError: if ``z`` is not a floating-point ``(batch, dim)`` tensor with batch >= 2.
    """
    _check_pair("z", z, "z", z, min_batch=2)
    n, dim = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (n - 1)  # (dim, dim)
    return off_diagonal(cov).pow(2).sum() / dim


@_at_least_float32
def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
) -> torch.Tensor:
    """VICReg: variance-invariance-covariance regularisation (https://arxiv.org/abs/2105.04906).

    ``sim_coeff * invariance(z1, z2) + std_coeff * (variance(z1) + variance(z2)) / 2
    + cov_coeff * (covariance(z1) + covariance(z2))``, as in the official implementation;
    the defaults (25, 25, 1) are the paper's.

    Args:
        z1: ``(batch, dim)`` embeddings of the first views.
        z2: ``(batch, dim)`` embeddings of the second views.
        sim_coeff: weight of :func:`invariance_term`.
        std_coeff: weight of :func:`variance_term`.
        cov_coeff: weight of :func:`covariance_term`.

    Returns:
        A non-negative scalar.

    Raises:
        ValueError: if the shapes differ, are not floating-point ``(batch, dim)`` tensors, batch < 2, or a
            coefficient is negative.
    """
    for name, value in (
        ("sim_coeff", sim_coeff),
        ("std_coeff", std_coeff),
        ("cov_coeff", cov_coeff),
    ):
        _check_non_negative(name, value)
    _check_pair("z1", z1, "z2", z2, min_batch=2)
    return (
        sim_coeff * invariance_term(z1, z2)
        + std_coeff * (variance_term(z1) + variance_term(z2)) / 2
        + cov_coeff * (covariance_term(z1) + covariance_term(z2))
    )


class VICRegLoss(_PairLoss):
    """VICReg loss module; see :func:`vicreg_loss`.

    Raises:
        ValueError: if a coefficient is negative.
    """

    loss = staticmethod(vicreg_loss)

    def __init__(
        self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0
    ) -> None:
        super().__init__(
            _check_non_negative, sim_coeff=sim_coeff, std_coeff=std_coeff, cov_coeff=cov_coeff
        )
