"""Health monitors for self-supervised embeddings: is the representation collapsing?

Non-contrastive methods (BYOL, SimSiam) have a trivial solution: map every input to the same
vector. These numbers, computed on a batch of projections ``z`` ``(batch, dim)``, show it
while training: :func:`embedding_std` falls to 0 and :func:`effective_rank` (how many
dimensions are really used) to 1; :func:`alignment` and :func:`uniformity` say whether
positives are close together and embeddings spread out. :class:`CollapseMonitor` warns.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from dlsaudio.validation import check_embeddings, check_int, check_positive


@torch.no_grad()
def embedding_std(z: torch.Tensor) -> float:
    """Std of the l2-normalised embeddings along the batch, averaged over dimensions: SimSiam's
    collapse monitor (https://arxiv.org/abs/2011.10566, Fig. 2). 0 for a collapsed embedding;
    about ``1 / sqrt(dim)`` for embeddings spread uniformly over the unit sphere (each
    coordinate of a random unit vector has variance ``1 / dim``).

    Raises:
        ValueError: if ``z`` is not ``(batch, dim)`` with batch >= 2.
    """
    check_embeddings("z", z, "z", z, min_batch=2)
    zn = F.normalize(z.detach().float(), dim=1)
    return float(zn.std(dim=0).mean())


@torch.no_grad()
def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """Effective rank: ``exp`` of the entropy of the normalised singular values (Roy & Vetterli,
    "The effective rank: a measure of effective dimensionality", EUSIPCO 2007). RankMe
    (https://arxiv.org/abs/2210.02885) shows it tracks the downstream quality of SSL
    embeddings and drops under dimensional collapse. With singular values ``s_k`` of ``z`` and
    ``p_k = s_k / sum(s)``, ``erank = exp(-sum p_k log p_k)``, in ``[1, min(batch, dim)]`` (0
    for an all-zero matrix). The matrix is not centred, as in the definition, so a collapsed
    embedding (all rows equal) has effective rank 1.

    Raises:
        ValueError: if ``z`` is not ``(batch, dim)``.
    """
    check_embeddings("z", z, "z", z)
    s = torch.linalg.svdvals(z.detach().double())
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return float(torch.exp(entropy))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Alignment of positive pairs: ``mean ||f(x) - f(y)||^alpha`` on l2-normalised embeddings
    (Wang & Isola, https://arxiv.org/abs/2005.10242, with ``alpha = 2``). Lower is better: 0
    when the two views map to the same point, at most ``2^alpha``. Differentiable: a loss too.

    Raises:
        ValueError: on mismatched shapes or ``alpha <= 0``.
    """
    check_embeddings("z1", z1, "z2", z2)
    check_positive("alpha", alpha)
    d = F.normalize(z1, dim=1) - F.normalize(z2, dim=1)
    return d.norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity: ``log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)`` on l2-normalised embeddings
    (Wang & Isola, https://arxiv.org/abs/2005.10242). Lower is better: 0 when collapsed, about
    -4 for the paper's ``t = 2`` and many points spread over a high-dimensional sphere.

    Raises:
        ValueError: if ``z`` is not ``(batch, dim)`` with batch >= 2, or ``t <= 0``.
    """
    check_embeddings("z", z, "z", z, min_batch=2)
    check_positive("t", t)
    sq_dist = torch.pdist(F.normalize(z, dim=1), p=2).pow(2)  # (batch * (batch - 1) / 2,)
    return torch.logsumexp(-t * sq_dist, dim=0) - math.log(sq_dist.numel())


@torch.no_grad()
def health_metrics(z1: torch.Tensor, z2: torch.Tensor) -> dict[str, float]:
    """All health numbers for paired views: ``std`` and ``effective_rank`` of ``z1``,
    ``std_healthy = 1 / sqrt(dim)`` for reference, ``alignment`` of the pairs, ``uniformity``
    averaged over both views (as Wang & Isola do).

    Raises:
        ValueError: on mismatched shapes or batch < 2.
    """
    z1, z2 = z1.detach().float(), z2.detach().float()
    a = float(alignment(z1, z2))  # first: its check names z1 and z2
    return {
        "std": embedding_std(z1),
        "std_healthy": 1.0 / math.sqrt(z1.shape[1]),
        "effective_rank": effective_rank(z1),
        "alignment": a,
        "uniformity": float((uniformity(z1) + uniformity(z2)) / 2),
    }


class CollapseMonitor:
    """Warns once when the embedding std falls below ``threshold / sqrt(dim)``.

    Call it on each batch of projections ``z`` ``(batch, dim)`` inside the training loop (or
    on the std you already computed); ``1 / sqrt(dim)`` is the healthy level. Once
    ``patience`` batches in a row are collapsed, it issues a ``UserWarning`` and returns True;
    later calls return whether the current batch looks collapsed, without warning again.

    Raises:
        ValueError: if ``dim < 1``, ``threshold`` is not in (0, 1] or ``patience < 1``.
    """

    def __init__(self, dim: int, threshold: float = 0.1, patience: int = 1) -> None:
        check_int("dim", dim, minimum=1)
        check_int("patience", patience, minimum=1)
        if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
            raise ValueError(
                f"threshold must be in (0, 1] (a fraction of 1/sqrt(dim)), got {threshold!r}"
            )
        self.dim, self.threshold, self.patience = dim, float(threshold), patience
        self.warned, self.streak = False, 0
        self.last_std: float | None = None

    @property
    def limit(self) -> float:
        """The std below which a batch counts as collapsed."""
        return self.threshold / math.sqrt(self.dim)

    def __call__(self, z: torch.Tensor | float) -> bool:
        """True when this batch (or std) is collapsed and patience is exhausted.

        Raises:
            ValueError: if ``z`` is a tensor whose dim differs from the monitor's.
        """
        std = embedding_std(z) if isinstance(z, torch.Tensor) else float(z)  # checks z's shape
        if isinstance(z, torch.Tensor) and z.shape[1] != self.dim:
            raise ValueError(
                f"z has dim {z.shape[1]}, but the monitor was built with dim={self.dim}"
            )
        self.last_std = std
        self.streak = self.streak + 1 if std < self.limit else 0
        collapsed = self.streak >= self.patience
        if collapsed and not self.warned:
            self.warned = True
            warnings.warn(
                f"embeddings are collapsing: std of the normalised embeddings is {std:.2e}, "
                f"below {self.limit:.2e} ({self.threshold} x the healthy 1/sqrt({self.dim})). "
                "Check the stop-gradient, the predictor, the learning rate and the EMA momentum.",
                UserWarning,
                stacklevel=2,
            )
        return collapsed
