"""How InfoNCE treats its negatives: each anchor's softmax over its candidates, how the
temperature reshapes it, and the share of it that goes to false negatives (other clips of the
anchor's own class, which the loss pushes away like any other clip).

The gradient of InfoNCE pushes anchor ``i`` away from negative ``k`` with weight
``p_ik = softmax_k(s_ik / tau)`` within row ``i`` (SimCLR, https://arxiv.org/abs/2002.05709;
Wang and Liu, "Understanding the behaviour of contrastive loss", https://arxiv.org/abs/2012.09740),
so these probabilities are the push each negative receives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlsaudio.ssl.losses import info_nce


def candidate_probabilities(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """Each view's softmax over its ``2N - 1`` candidates, ``(2N, 2N)`` with a zero diagonal.

    Rows are the anchors ``[z1; z2]``; row ``i``'s positive is column ``i + N`` (or ``i - N``).

    Raises:
        ValueError: shapes or ``tau`` that :func:`dlsaudio.ssl.losses.info_nce` rejects.
    """
    info_nce(z1, z2, tau)  # the loss's own checks of shapes and tau
    z = F.normalize(torch.cat([z1, z2]).detach().float(), dim=1)  # (2N, dim)
    logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))  # (2N, 2N)
    return torch.softmax(logits, dim=1)


def negative_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(2N, 2N)`` bool: True where column ``k`` is a negative of anchor ``i`` (neither the
    anchor itself nor its other view)."""
    eye = torch.eye(2 * len(labels), dtype=torch.bool)
    return ~(eye | eye.roll(len(labels), dims=1))  # the positive of row i is column i + N


def _same_label_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(2N, 2N)`` bool: the negatives of each anchor that share its label."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (batch,), got shape {tuple(labels.shape)}")
    views = torch.cat([labels, labels])  # (2N,) the label of each view
    return (views[:, None] == views[None, :]) & negative_mask(labels)


def same_label_negatives(labels: torch.Tensor) -> torch.Tensor:
    """For each of the ``2N`` anchors, how many of its ``2N - 2`` negatives share its label.

    Raises:
        ValueError: ``labels`` is not one-dimensional.
    """
    return _same_label_mask(labels).sum(dim=1)


def same_label_weight(
    z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, tau: float
) -> dict[str, float]:
    """How much of InfoNCE's push goes to negatives of the anchor's own class.

    ``{"count_share", "push_share"}``: the share of negatives that share the anchor's label,
    and the share of the softmax mass on negatives (the push) that goes to them, each averaged
    over the anchors. ``push_share`` above ``count_share`` means the model already finds
    same-class clips similar and the loss pushes them apart harder than the rest.

    Raises:
        ValueError: shapes or ``tau`` that :func:`dlsaudio.ssl.losses.info_nce` rejects, or labels
            not of shape ``(batch,)`` matching ``z1``.
    """
    if len(labels) != z1.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries for a batch of {z1.shape[0]} clips")
    probs = candidate_probabilities(z1, z2, tau)
    same, negatives = _same_label_mask(labels), negative_mask(labels)
    count_share = same.sum(dim=1).float() / negatives.sum(dim=1).float()
    push = (probs * same).sum(dim=1) / (probs * negatives).sum(dim=1)
    return {"count_share": float(count_share.mean()), "push_share": float(push.mean())}
