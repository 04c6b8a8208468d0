"""Homework self-checks: right answers written in many ways pass, typical mistakes fail with a
message that names them.

Each check has a list of wrong solutions, each with the message it must get, and a list of
right solutions written differently from the reference. The training-history check is tested
on hand-built histories and on two tiny real ``fit`` runs (model identity).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ssl_fit import tiny_fit
from torch.utils.data import DataLoader, TensorDataset

from dlsaudio.ssl import checks, losses


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def wrong(check, cases):
    """Test parameters ``(check, fn, match)`` from ``(fn, match)`` pairs: wrong solutions of one task."""
    return [
        pytest.param(check, fn, match, id=f"{check.__name__}-{fn.__name__}") for fn, match in cases
    ]


def right(check, fns):
    """Test parameters ``(check, fn)``: right solutions of one task, written in different ways."""
    return [pytest.param(check, fn, id=f"{check.__name__}-{fn.__name__}") for fn in fns]


# --------------------------------------------------------------------------- BYOL loss


def byol_reference(p, z):
    p = F.normalize(p, dim=1)
    z = F.normalize(z.detach(), dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


def byol_squared_distance(p, z):
    return (F.normalize(p, dim=-1) - F.normalize(z.detach(), dim=-1)).pow(2).sum(-1).mean()


def byol_no_grad_target(p, z):
    with torch.no_grad():
        z = z / z.norm(dim=1, keepdim=True)
    return torch.mean(2 - 2 * torch.einsum("bd,bd->b", p / p.norm(dim=1, keepdim=True), z))


def byol_float64(p, z):
    return 2 - 2 * F.cosine_similarity(p.double(), z.detach().double(), dim=1).mean()


def byol_mse_per_row(p, z):
    pn, zn = F.normalize(p, dim=1), F.normalize(z, dim=1).detach()
    return F.mse_loss(pn, zn, reduction="none").sum(dim=1).mean()


def byol_no_detach(p, z):
    return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()


def byol_dot(p, z):
    return (2 - 2 * (p * z.detach()).sum(1)).mean()


def byol_normalises_p_only(p, z):
    return (2 - 2 * (F.normalize(p, dim=1) * z.detach()).sum(1)).mean()


def byol_normalises_batch_dim(p, z):
    return (2 - 2 * (F.normalize(p, dim=0) * F.normalize(z.detach(), dim=0)).sum(1)).mean()


def byol_cosine_batch_dim(p, z):
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=0)).mean()


def byol_minus_two_cos(p, z):
    return (-2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


def byol_negative_cosine(p, z):
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def byol_one_minus_cos(p, z):
    return (1 - F.cosine_similarity(p, z.detach(), dim=1)).mean()


def byol_mse(p, z):
    return F.mse_loss(F.normalize(p, dim=1), F.normalize(z.detach(), dim=1))


def byol_sum(p, z):
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).sum()


def byol_distance(p, z):
    return (F.normalize(p, dim=1) - F.normalize(z.detach(), dim=1)).norm(dim=1).mean()


def byol_detaches_p(p, z):
    return (2 - 2 * F.cosine_similarity(p.detach(), z, dim=1)).mean()


def byol_detaches_both(p, z):
    return byol_reference(p.detach(), z)


def byol_item(p, z):
    return byol_reference(p, z).item()


def byol_per_row(p, z):
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)


def byol_three_args(p, z, tau):
    return byol_reference(p, z)


def byol_matmul(p, z):
    return (2 - 2 * F.normalize(p, dim=1) @ F.normalize(z.detach(), dim=1)).mean()


def byol_detached_norm(p, z):
    pn = p / p.norm(dim=1, keepdim=True).detach()  # right value, but the gradient misses the norm
    return (2 - 2 * (pn * F.normalize(z.detach(), dim=1)).sum(1)).mean()


BYOL_WRONG = wrong(
    checks.check_byol_loss,
    [
        (
            byol_no_detach,
            "missing stop-gradient: gradient flows into z",
        ),
        (
            byol_dot,
            "changes when p or z is multiplied by 2",
        ),
        (
            byol_normalises_p_only,
            "changes when z is multiplied by 2",
        ),
        (
            byol_normalises_batch_dim,
            "changes when p or z has each row multiplied by its own positive factor",
        ),
        (byol_cosine_batch_dim, r"each ROW is one embedding"),
        (byol_minus_two_cos, r"computes -2 cos: the loss is 2 - 2 \* cos"),
        (byol_negative_cosine, r"computes -cos, SimSiam's loss"),
        (byol_one_minus_cos, r"computes 1 - cos: BYOL's loss is 2 - 2 \* cos"),
        (byol_mse, r"averages over the features too \(F.mse_loss does\)"),
        (byol_sum, r"sums over the batch: average with .mean\(\)"),
        (
            byol_distance,
            r"averages the distance \|\|p - z\|\|, not its square",
        ),
        (
            byol_detaches_p,
            "stop-gradient on the wrong argument",
        ),
        (byol_detaches_both, r"no gradient: .* do not detach p"),
        (byol_item, r"must return a scalar torch.Tensor"),
        (byol_per_row, r"wrong shape: expected a scalar, got \(8,\)"),
        (
            byol_three_args,
            r"wrong signature: .*missing a required argument: 'tau'",
        ),
        (
            byol_matmul,
            r"raised RuntimeError: .*The check called byol_matmul\(",
        ),
        (
            byol_detached_norm,
            r"wrong gradient: .* gradient into p is not that of",
        ),
    ],
)
BYOL_RIGHT = right(
    checks.check_byol_loss,
    [
        byol_reference,
        byol_squared_distance,
        byol_no_grad_target,
        byol_float64,
        byol_mse_per_row,
    ],
)

# --------------------------------------------------------------------------- SimSiam loss


def simsiam_reference(p1, p2, z1, z2, stop_gradient=True):
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    return _negcos(p1, p2, z1, z2)


def _negcos(p1, p2, z1, z2):
    return (
        -(F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean()) / 2
    )


def simsiam_paper(p1, p2, z1, z2, stop_gradient=True):
    def D(p, z):  # the paper's pseudocode
        if stop_gradient:
            z = z.detach()
        p = F.normalize(p, dim=1)
        z = F.normalize(z, dim=1)
        return -(p * z).sum(dim=1).mean()

    return D(p1, z2) / 2 + D(p2, z1) / 2


def simsiam_keyword_only(p1, p2, z1, z2, *, stop_gradient=True):
    sg = (lambda t: t.detach()) if stop_gradient else (lambda t: t)
    c = torch.stack(
        [F.cosine_similarity(p1, sg(z2)), F.cosine_similarity(p2, sg(z1))]
    )  # (2, batch)
    return -c.mean()


def simsiam_float64(p1, p2, z1, z2, stop_gradient=True):
    p1, p2, z1, z2 = (t.double() for t in (p1, p2, z1, z2))
    if stop_gradient:
        with torch.no_grad():
            z1, z2 = z1.clone(), z2.clone()
    return _negcos(p1, p2, z1, z2)


def simsiam_no_stop_gradient(p1, p2, z1, z2, stop_gradient=True):
    return _negcos(p1, p2, z1, z2)


def simsiam_always_detached(p1, p2, z1, z2, stop_gradient=True):
    return _negcos(p1, p2, z1.detach(), z2.detach())


def simsiam_inverted(p1, p2, z1, z2, stop_gradient=True):
    if not stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    return _negcos(p1, p2, z1, z2)


def simsiam_default_off(p1, p2, z1, z2, stop_gradient=False):
    return simsiam_reference(p1, p2, z1, z2, stop_gradient)


def simsiam_old_signature(p1, p2, z1, z2):
    return simsiam_reference(p1, p2, z1, z2)


def simsiam_same_view(p1, p2, z1, z2, stop_gradient=True):
    return simsiam_reference(p1, p2, z2, z1, stop_gradient)


def simsiam_dot(p1, p2, z1, z2, stop_gradient=True):
    return -((p1 * z2.detach()).sum(1).mean() + (p2 * z1.detach()).sum(1).mean()) / 2


def simsiam_positive(p1, p2, z1, z2, stop_gradient=True):
    return -simsiam_reference(p1, p2, z1, z2, stop_gradient)


def simsiam_no_half(p1, p2, z1, z2, stop_gradient=True):
    return 2 * simsiam_reference(p1, p2, z1, z2, stop_gradient)


def simsiam_one_direction(p1, p2, z1, z2, stop_gradient=True):
    return (
        -F.cosine_similarity(p1, z2.detach() if stop_gradient else z2, dim=1).mean()
        + 0 * p2.sum()
        + 0 * z1.sum()
    )


def simsiam_sum(p1, p2, z1, z2, stop_gradient=True):
    return p1.shape[0] * simsiam_reference(p1, p2, z1, z2, stop_gradient)


def simsiam_byol_form(p1, p2, z1, z2, stop_gradient=True):
    return 2 + 2 * simsiam_reference(p1, p2, z1, z2, stop_gradient)


def simsiam_detaches_p(p1, p2, z1, z2, stop_gradient=True):
    return _negcos(p1.detach(), p2.detach(), z1, z2)


def simsiam_batch_dim(p1, p2, z1, z2, stop_gradient=True):
    return (
        -(
            F.cosine_similarity(p1, z2.detach(), dim=0).mean()
            + F.cosine_similarity(p2, z1.detach(), dim=0).mean()
        )
        / 2
    )


def simsiam_value_changes(p1, p2, z1, z2, stop_gradient=True):
    loss = simsiam_reference(p1, p2, z1, z2, stop_gradient)
    return loss if stop_gradient else 2 * loss


def simsiam_detaches_z1_only(p1, p2, z1, z2, stop_gradient=True):
    return _negcos(p1, p2, z1.detach() if stop_gradient else z1, z2)


SIMSIAM_WRONG = wrong(
    checks.check_simsiam_loss,
    [
        (
            simsiam_no_stop_gradient,
            r"missing stop-gradient: with stop_gradient=True gradient flows into z1 and z2",
        ),
        (
            simsiam_always_detached,
            r"with stop_gradient=False no gradient reaches z1 and z2",
        ),
        (simsiam_inverted, r"stop_gradient is inverted"),
        (
            simsiam_default_off,
            r"the default of `simsiam_default_off` lets the gradient into z",
        ),
        (
            simsiam_old_signature,
            "wrong signature: .*unexpected keyword argument 'stop_gradient'",
        ),
        (
            simsiam_same_view,
            "compares p1 with z1",
        ),
        (
            simsiam_dot,
            r"changes when p1, p2, z1 or z2 is multiplied by 2",
        ),
        (simsiam_batch_dim, r"each ROW is one embedding"),
        (simsiam_positive, r"has the wrong sign"),
        (simsiam_no_half, r"adds the two terms: average them"),
        (simsiam_one_direction, r"has only one direction, D\(p1, z2\)"),
        (simsiam_sum, r"sums the cosines over the batch"),
        (simsiam_byol_form, r"computes BYOL's 2 - 2 cos"),
        (simsiam_detaches_p, r"stop-gradient on the wrong arguments"),
        (simsiam_value_changes, r"stop_gradient must not change the value"),
        (
            simsiam_detaches_z1_only,
            r"missing stop-gradient: with stop_gradient=True gradient flows into z2 in",
        ),
    ],
)
SIMSIAM_RIGHT = right(
    checks.check_simsiam_loss,
    [
        simsiam_reference,
        simsiam_paper,
        simsiam_keyword_only,
        simsiam_float64,
    ],
)

# --------------------------------------------------------------------------- InfoNCE


def _views(z1, z2):
    """Normalised (2N, dim) views, the (2N,) index of each row's positive and the diagonal mask."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    idx = torch.arange(n)
    return z, torch.cat([idx + n, idx]), torch.eye(2 * n, dtype=torch.bool)


def info_nce_finite_mask(z1, z2, tau):
    z, targets, eye = _views(z1, z2)
    logits = z @ z.T / tau - 1e9 * eye
    return F.cross_entropy(logits, targets)


def info_nce_loops(z1, z2, tau):
    n = z1.shape[0]
    z = [v / v.norm() for v in torch.cat([z1, z2])]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(torch.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(z[i] @ z[j] / tau) / denominator)
    return total / (2 * n)


def info_nce_shared_denominator(z1, z2, tau):
    """The common mistake: one normaliser, the sum over the whole matrix without its diagonal."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    e = torch.exp(z @ z.T / tau) * ~torch.eye(2 * n, dtype=torch.bool)
    positives = torch.cat([e.diagonal(n), e.diagonal(-n)])
    return -torch.log(positives / e.sum()).mean()


def info_nce_log_softmax(z1, z2, tau):
    z, targets, eye = _views(z1, z2)
    log_prob = (z @ z.T / tau).masked_fill(eye, float("-inf")).log_softmax(dim=1)
    return -log_prob[torch.arange(len(targets)), targets].mean()


def info_nce_cosine_broadcast(z1, z2, tau):
    z = torch.cat([z1, z2])
    sim = F.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=2) / tau  # (2N, 2N)
    n = z1.shape[0]
    sim = sim - torch.diag(torch.full((2 * n,), float("inf")))
    positives = torch.cat([sim.diagonal(n), sim.diagonal(-n)])
    return (torch.logsumexp(sim, dim=1) - positives).mean()


def info_nce_float64(z1, z2, tau=0.1):
    return info_nce_log_softmax(z1.double(), z2.double(), tau)


def info_nce_interleaved(z1, z2, tau):
    n = z1.shape[0]
    z = F.normalize(torch.stack([z1, z2], dim=1).reshape(2 * n, -1), dim=1)  # rows z1_0, z2_0, ...
    logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))
    return F.cross_entropy(logits, torch.arange(2 * n) ^ 1)


def info_nce_explicit_exp(z1, z2, tau):
    z, targets, eye = _views(z1, z2)
    e = torch.exp(z @ z.T / tau - 1 / tau) * ~eye  # shifted by the largest possible logit
    return -torch.log(e[torch.arange(len(targets)), targets] / e.sum(dim=1)).mean()


def info_nce_blocks(z1, z2, tau):
    """The block layout of lightly's NTXentLoss: [z1 @ z2.T, masked z1 @ z1.T] per anchor of z1."""
    a, b = F.normalize(z1, dim=1) / math.sqrt(tau), F.normalize(z2, dim=1) / math.sqrt(tau)
    eye = torch.eye(len(a), dtype=torch.bool)
    top = torch.cat([a @ b.T, (a @ a.T).masked_fill(eye, float("-inf"))], dim=1)
    bottom = torch.cat([b @ a.T, (b @ b.T).masked_fill(eye, float("-inf"))], dim=1)
    labels = torch.arange(len(a)).repeat(2)  # the positive sits in the first block
    return F.cross_entropy(torch.cat([top, bottom]), labels)


def info_nce_whole_with_diagonal(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    logits = z @ z.T / tau
    return (
        torch.logsumexp(logits.flatten(), 0) - logits[torch.arange(len(targets)), targets]
    ).mean()


def info_nce_keeps_diagonal(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(z @ z.T / tau, targets)


def _masked(z, tau):
    return (z @ z.T / tau).fill_diagonal_(float("-inf"))


def info_nce_dot_product(z1, z2, tau):
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    return F.cross_entropy(_masked(z, tau), torch.cat([torch.arange(n) + n, torch.arange(n)]))


def info_nce_no_temperature(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, 1.0), targets)


def info_nce_tau_twice(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, tau) / tau, targets)


def info_nce_times_tau(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, 1 / tau), targets)


def info_nce_first_half(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    n = z1.shape[0]
    return F.cross_entropy(_masked(z, tau)[:n], targets[:n])


def info_nce_cross_view_only(z1, z2, tau):
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / tau  # (N, N)
    return F.cross_entropy(logits, torch.arange(len(z1)))


def info_nce_cross_view_symmetric(z1, z2, tau):
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / tau
    targets = torch.arange(len(z1))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def info_nce_self_positive(z1, z2, tau):
    z, _, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, tau), torch.arange(len(z)))


def info_nce_shifted_positive(z1, z2, tau):
    z, _, _ = _views(z1, z2)
    n = z1.shape[0]
    return F.cross_entropy(_masked(z, tau), (torch.arange(2 * n) + n + 1) % (2 * n))


def info_nce_interleaved_targets(z1, z2, tau):
    n = z1.shape[0]
    z = F.normalize(torch.stack([z1, z2], dim=1).reshape(2 * n, -1), dim=1)
    return F.cross_entropy(_masked(z, tau), torch.cat([torch.arange(n) + n, torch.arange(n)]))


def info_nce_sum(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, tau), targets, reduction="sum")


def info_nce_halves_added(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    logits, n = _masked(z, tau), z1.shape[0]
    return F.cross_entropy(logits[:n], targets[:n]) + F.cross_entropy(logits[n:], targets[n:])


def info_nce_mean_denominator(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    logits = _masked(z, tau)
    log_mean = torch.logsumexp(logits, dim=1) - math.log(len(z) - 1)
    return (log_mean - logits[torch.arange(len(z)), targets]).mean()


def info_nce_row_mean_denominator(z1, z2, tau):
    z, targets, eye = _views(z1, z2)
    e = torch.exp(z @ z.T / tau) * ~eye
    return -torch.log(e[torch.arange(len(z)), targets] / e.mean(dim=1)).mean()


def info_nce_plus_log_2n(z1, z2, tau):
    return info_nce_log_softmax(z1, z2, tau) + math.log(2 * len(z1))


def info_nce_fixed_tau(z1, z2, tau):
    return info_nce_log_softmax(z1, z2, 0.1)


def info_nce_tau_of_the_check(z1, z2, tau):
    return info_nce_log_softmax(z1, z2, 0.5)  # right only at the check's own temperature


def info_nce_detaches_z2(z1, z2, tau):
    return info_nce_log_softmax(z1, z2.detach(), tau)


def info_nce_detached_denominator(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    logits = _masked(z, tau)
    return (torch.logsumexp(logits, 1).detach() - logits[torch.arange(len(z)), targets]).mean()


def info_nce_unnormalised_unmasked(z1, z2, tau):
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    return F.cross_entropy(z @ z.T / tau, torch.cat([torch.arange(n) + n, torch.arange(n)]))


def info_nce_unmasked_summed(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(z @ z.T / tau, targets, reduction="sum")


def info_nce_batch_dim(z1, z2, tau):
    n = z1.shape[0]
    z = torch.cat([F.normalize(z1, dim=0), F.normalize(z2, dim=0)])
    return F.cross_entropy(_masked(z, tau), torch.cat([torch.arange(n) + n, torch.arange(n)]))


def info_nce_per_row(z1, z2, tau):
    z, targets, _ = _views(z1, z2)
    return F.cross_entropy(_masked(z, tau), targets, reduction="none")


def info_nce_unnormalised_exp(z1, z2, tau):
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    e = torch.exp(z @ z.T / tau).fill_diagonal_(0)  # overflows for large dot products
    positives = torch.cat([e.diagonal(n), e.diagonal(-n)])
    return -torch.log(positives / e.sum(dim=1)).mean()


def info_nce_one_argument(z):
    return z.sum()


def info_nce_cat_typo(z1, z2, tau):
    return torch.cat(z1, z2).sum()


INFO_NCE_WRONG = wrong(
    checks.check_info_nce,
    [
        (info_nce_shared_denominator, "WHOLE 2N x 2N matrix"),
        (info_nce_whole_with_diagonal, "WHOLE 2N x 2N matrix"),
        (
            info_nce_keeps_diagonal,
            "keeps k == i in the denominator",
        ),
        (info_nce_dot_product, "does not l2-normalise the embeddings"),
        (
            info_nce_no_temperature,
            "does not use the temperature",
        ),
        (info_nce_tau_twice, r"divides by tau twice"),
        (info_nce_times_tau, r"multiplies the similarities by tau"),
        (
            info_nce_first_half,
            "averages over only the N anchors of z1",
        ),
        (
            info_nce_cross_view_only,
            r"compares z1 only with z2 \(the N x N matrix",
        ),
        (info_nce_cross_view_symmetric, r"compares z1 only with z2"),
        (
            info_nce_self_positive,
            r"returned inf: the target of some row is a masked",
        ),
        (
            info_nce_shifted_positive,
            r"the target index .* points at a negative",
        ),
        (
            info_nce_interleaved_targets,
            r"for 12 of the 2N = 12 rows the target index",
        ),
        (info_nce_sum, r"sums the loss over the 2N anchors: average it"),
        (info_nce_halves_added, r"adds the mean losses of the two halves"),
        (info_nce_mean_denominator, r"is NT-Xent minus log\(2N - 1\)"),
        (info_nce_row_mean_denominator, r"is NT-Xent minus log\(2N\)"),
        (
            info_nce_plus_log_2n,
            r"is NT-Xent plus log\(2N\)",
        ),
        (
            info_nce_fixed_tau,
            "it ignores its tau argument",
        ),
        (
            info_nce_tau_of_the_check,
            "it ignores its tau argument",
        ),
        (info_nce_detaches_z2, r"no gradient reaches z2 .* detach neither"),
        (
            info_nce_detached_denominator,
            "wrong gradient: .* gradient into z1",
        ),
        (
            info_nce_unnormalised_unmasked,
            "changes when z1 or z2 is multiplied by 2",
        ),
        (
            info_nce_unmasked_summed,
            r"collinear embeddings .* NT-Xent is log\(2N - 1\)",
        ),
        (info_nce_batch_dim, r"each ROW is one embedding"),
        (info_nce_unnormalised_exp, "does not l2-normalise the embeddings"),
        (info_nce_per_row, r"wrong shape: expected a scalar, got \(12,\)"),
        (
            info_nce_one_argument,
            "wrong signature: .*info_nce",
        ),
        (
            info_nce_cat_typo,
            r"raised TypeError: .*info_nce_cat_typo\(",
        ),
    ],
)
INFO_NCE_RIGHT = right(
    checks.check_info_nce,
    [
        info_nce_finite_mask,
        info_nce_loops,
        info_nce_log_softmax,
        info_nce_cosine_broadcast,
        info_nce_float64,
        info_nce_interleaved,
        info_nce_explicit_exp,
        info_nce_blocks,
    ],
)


def test_info_nce_check_uses_the_temperature_it_is_given(capsys) -> None:
    checks.check_info_nce(info_nce_log_softmax, tau=0.1)
    checks.check_info_nce(info_nce_explicit_exp, tau=0.05)
    assert capsys.readouterr().out.count("OK: ") == 2
    with pytest.raises(AssertionError, match="does not use the temperature"):
        checks.check_info_nce(info_nce_no_temperature, tau=0.1)
    with pytest.raises(AssertionError, match="returned (inf|nan) on random z1, z2"):
        checks.check_info_nce(info_nce_unnormalised_exp, tau=0.05)


# --------------------------------------------------------------------------- BYOL momentum


def momentum_reference(progress, tau_base=0.996):
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2


def momentum_float32(progress, tau_base=0.996):
    return np.float32(1 - (1 - tau_base) * (np.cos(np.pi * progress) + 1) / 2)


def momentum_numpy(progress, tau_base=0.996):
    return tau_base + (1 - tau_base) * (1 - np.cos(np.pi * progress)) / 2


def momentum_tensor(progress, tau_base=0.996):
    return 1 - (1 - tau_base) * torch.cos(torch.tensor(math.pi * progress / 2)) ** 2  # 0-dim


def momentum_int_at_end(progress, tau_base=0.996):
    if progress >= 1:
        return 1
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2


def momentum_constant(progress, tau_base=0.996):
    return tau_base


def momentum_ignores_base(progress, tau_base=0.996):
    return momentum_reference(progress, 0.996)


def momentum_fixed_base(progress, tau_base=0.996):
    return momentum_reference(progress, 0.99)  # right only when tau_base is 0.99


def momentum_backwards(progress, tau_base=0.996):
    return momentum_reference(1 - progress, tau_base)


def momentum_no_half(progress, tau_base=0.996):
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1)


def momentum_online_weight(progress, tau_base=0.996):
    return 1 - momentum_reference(progress, tau_base)


def momentum_linear(progress, tau_base=0.996):
    return tau_base + (1 - tau_base) * progress


def momentum_no_pi(progress, tau_base=0.996):
    return 1 - (1 - tau_base) * (math.cos(progress) + 1) / 2


def momentum_no_default(progress, tau_base):
    return momentum_reference(progress, tau_base)


def momentum_wrong_default(progress, tau_base=0.99):
    return momentum_reference(progress, tau_base)


def momentum_string(progress, tau_base=0.996):
    return "0.99"


def momentum_vector(progress, tau_base=0.996):
    return torch.tensor([momentum_reference(progress, tau_base)])


MOMENTUM_WRONG = wrong(
    checks.check_byol_momentum,
    [
        (
            momentum_constant,
            "stays at tau_base",
        ),
        (momentum_ignores_base, r"ignores its tau_base argument"),
        (momentum_fixed_base, r"ignores its tau_base argument \(it uses 0.99\)"),
        (momentum_backwards, r"runs backwards"),
        (momentum_no_half, r"is missing the / 2"),
        (
            momentum_online_weight,
            "returns 1 - momentum",
        ),
        (
            momentum_linear,
            "rises linearly",
        ),
        (
            momentum_no_pi,
            r"progress=1.0, tau_base=0.99 \(the end\).*ends at 1",
        ),
        (
            momentum_no_default,
            r"wrong signature: the check calls momentum_no_default\(0.0\)",
        ),
        (momentum_wrong_default, r"Make tau_base=0.996 the default"),
        (
            momentum_string,
            "wrong type: the momentum .* must be a number",
        ),
        (
            momentum_vector,
            "wrong shape: the momentum .* must be one number",
        ),
    ],
)
MOMENTUM_RIGHT = right(
    checks.check_byol_momentum,
    [
        momentum_reference,
        momentum_float32,
        momentum_numpy,
        momentum_tensor,
        momentum_int_at_end,
    ],
)

# --------------------------------------------------------------------------- EMA update


def ema_reference(target, online, momentum):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(momentum).add_(o, alpha=1 - momentum)


@torch.no_grad()
def ema_lerp(target, online, momentum):
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, 1 - momentum)


def ema_data(target, online, momentum):
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.data = momentum * t.data + (1 - momentum) * o.data


@torch.no_grad()
def ema_state_dict_floats(target, online, momentum):
    source = online.state_dict()
    for key, value in target.state_dict().items():
        if value.dtype.is_floating_point:
            value.mul_(momentum).add_((1 - momentum) * source[key])


@torch.no_grad()
def ema_foreach(target, online, momentum):
    t, o = list(target.parameters()), list(online.parameters())
    torch._foreach_mul_(t, momentum)
    torch._foreach_add_(t, o, alpha=1 - momentum)


def ema_swapped(target, online, m):
    ema_reference(target, online, 1 - m)


def ema_rebinding(target, online, m):
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t = m * t + (1 - m) * o  # noqa: F841, B007 - the mistake under test


def ema_moves_online(target, online, m):
    ema_reference(online, target, m)


def ema_fixed_momentum(target, online, m):
    ema_reference(target, online, 0.5)


def ema_hard_copy(target, online, m):
    target.load_state_dict(online.state_dict())


def ema_no_one_minus(target, online, m):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(m).add_(o)


def ema_no_momentum_on_target(target, online, m):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.add_((1 - m) * o)


def ema_weights_only(target, online, m):
    with torch.no_grad():
        for (name, t), o in zip(target.named_parameters(), online.parameters(), strict=True):
            if name.endswith("weight"):
                t.mul_(m).add_(o, alpha=1 - m)


def ema_without_no_grad(target, online, m):
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(m).add_(o, alpha=1 - m)


def ema_state_dict(target, online, m):
    with torch.no_grad():
        source = online.state_dict()
        for key, value in target.state_dict().items():
            value.mul_(m).add_(source[key], alpha=1 - m)


def ema_wrong_signature(target, online):
    ema_reference(target, online, 0.99)


EMA_WRONG = wrong(
    checks.check_ema_update,
    [
        (
            ema_swapped,
            "swapped the weights",
        ),
        (ema_rebinding, r"did not change the target parameters"),
        (ema_moves_online, r"changed the ONLINE network"),
        (
            ema_fixed_momentum,
            "moves the target with momentum 0.5, not with its momentum argument",
        ),
        (
            ema_hard_copy,
            "copies the online weights into the target",
        ),
        (
            ema_no_one_minus,
            "adds the whole online weight",
        ),
        (
            ema_no_momentum_on_target,
            r"does not multiply the target by momentum",
        ),
        (
            ema_weights_only,
            "did not update '0.bias'",
        ),
        (
            ema_without_no_grad,
            "left an autograd graph in the target",
        ),
        (
            ema_state_dict,
            "raised RuntimeError: .*num_batches_tracked",
        ),
        (
            ema_wrong_signature,
            "wrong signature: .*ema_update",
        ),
    ],
)
EMA_RIGHT = right(
    checks.check_ema_update,
    [
        ema_reference,
        ema_lerp,
        ema_data,
        ema_state_dict_floats,
        ema_foreach,
    ],
)


def test_ema_in_place_on_a_target_that_requires_grad() -> None:
    """Without no_grad, an in-place update of a leaf that requires grad fails; say how to fix it."""
    target = torch.nn.Linear(2, 2)

    def student(t, o, m):
        ema_without_no_grad(target, o, m)

    with pytest.raises(
        AssertionError, match=r"in-place operation.*inside `with torch.no_grad\(\):`"
    ):
        checks.check_ema_update(student)


# --------------------------------------------------------------------------- validation metrics


def validation_reference(model, waves, labels, batch_size=64):
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(waves), batch_size):
            logits = model(waves[i : i + batch_size])
            y = labels[i : i + batch_size]
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    return total / len(waves), correct / len(waves)


def validation_loader(model, waves, labels, batch_size=64):
    was_training = model.training
    model.eval()
    losses_, hits = [], []
    with torch.inference_mode():
        for x, y in DataLoader(TensorDataset(waves, labels), batch_size=batch_size):
            logits = model(x)
            losses_.append(F.nll_loss(logits.log_softmax(dim=1), y, reduction="none"))
            hits.append(logits.argmax(dim=1) == y)
    model.train(was_training)
    return torch.cat(losses_).mean(), torch.cat(hits).float().mean()  # 0-dim tensors


def validation_split(model, waves, labels, batch_size=64):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x) for x in torch.split(waves, batch_size)])
    loss = F.cross_entropy(logits, labels)
    return np.float32(loss), np.float64((logits.argmax(1) == labels).double().mean())


def validation_two_passes(model, waves, labels, batch_size=64):
    model.eval()
    n = len(waves)
    with torch.no_grad():
        loss = sum(
            F.cross_entropy(
                model(waves[i : i + batch_size]), labels[i : i + batch_size], reduction="sum"
            )
            for i in range(0, n, batch_size)
        )
        hits = sum(
            int((model(waves[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum())
            for i in range(0, n, batch_size)
        )
    return loss / n, hits / n


def validation_train_mode(model, waves, labels, batch_size=64):
    with torch.no_grad():
        logits = model(waves[:batch_size])
        rest = [model(waves[i : i + batch_size]) for i in range(batch_size, len(waves), batch_size)]
    logits = torch.cat([logits, *rest])
    return float(F.cross_entropy(logits, labels)), float(
        (logits.argmax(1) == labels).float().mean()
    )


def validation_with_gradients(model, waves, labels, batch_size=64):
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(waves), batch_size):
        logits = model(waves[i : i + batch_size])
        y = labels[i : i + batch_size]
        total += float(F.cross_entropy(logits, y, reduction="sum").detach())
        correct += int((logits.argmax(1) == y).sum())
    return total / len(waves), correct / len(waves)


def _eval_batches(model, waves, labels, batch_size, starts):
    model.eval()
    with torch.no_grad():
        return [(model(waves[i : i + batch_size]), labels[i : i + batch_size]) for i in starts]


def validation_drops_last_batch(model, waves, labels, batch_size=64):
    starts = range(0, len(waves) // batch_size * batch_size, batch_size)
    batches = _eval_batches(model, waves, labels, batch_size, starts)
    logits, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def validation_first_batch_only(model, waves, labels, batch_size=64):
    ((logits, y),) = _eval_batches(model, waves, labels, batch_size, [0])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def validation_whole_set(model, waves, labels, batch_size=64):
    ((logits, y),) = _eval_batches(model, waves, labels, len(waves), [0])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def validation_swapped(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return acc, loss


def validation_mean_of_means(model, waves, labels, batch_size=64):
    batches = _eval_batches(model, waves, labels, batch_size, range(0, len(waves), batch_size))
    means = [float(F.cross_entropy(x, y)) for x, y in batches]
    return sum(means) / len(means), validation_reference(model, waves, labels, batch_size)[1]


def _with_loss(loss_of_batch):
    def validation(model, waves, labels, batch_size=64):
        batches = _eval_batches(model, waves, labels, batch_size, range(0, len(waves), batch_size))
        total = sum(float(loss_of_batch(x, y)) for x, y in batches)
        return total / len(waves), validation_reference(model, waves, labels, batch_size)[1]

    return validation


validation_double_softmax = _with_loss(
    lambda x, y: F.cross_entropy(x.softmax(1), y, reduction="sum")
)
validation_double_softmax.__name__ = "validation_double_softmax"
validation_nll_on_logits = _with_loss(lambda x, y: F.nll_loss(x, y, reduction="sum"))
validation_nll_on_logits.__name__ = "validation_nll_on_logits"
validation_nll_on_probabilities = _with_loss(
    lambda x, y: F.nll_loss(x.softmax(1), y, reduction="sum")
)
validation_nll_on_probabilities.__name__ = "validation_nll_on_probabilities"


def validation_summed_loss(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return loss * len(waves), acc


def validation_per_batch_division(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return loss * len(waves) / math.ceil(len(waves) / batch_size), acc


def validation_percent(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return loss, 100 * acc


def validation_count(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return loss, round(acc * len(waves))


def validation_mean_batch_accuracy(model, waves, labels, batch_size=64):
    batches = _eval_batches(model, waves, labels, batch_size, range(0, len(waves), batch_size))
    accs = [float((x.argmax(1) == y).float().mean()) for x, y in batches]
    return validation_reference(model, waves, labels, batch_size)[0], sum(accs) / len(accs)


def validation_dict(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return {"loss": loss, "accuracy": acc}


def validation_vector_accuracy(model, waves, labels, batch_size=64):
    loss, acc = validation_reference(model, waves, labels, batch_size)
    return loss, torch.tensor([acc])


def validation_calls_head(model, waves, labels, batch_size=64):
    model.eval()
    with torch.no_grad():
        logits = model.head(model.encoder(waves))
    return float(F.cross_entropy(logits, labels)), float(
        (logits.argmax(1) == labels).float().mean()
    )


def validation_no_batch_size(model, waves, labels):
    return validation_reference(model, waves, labels)


VALIDATION_WRONG = wrong(
    checks.check_validation_metrics,
    [
        (
            validation_train_mode,
            "ran the model in training mode",
        ),
        (
            validation_with_gradients,
            r"with gradients on: wrap the loop in",
        ),
        (
            validation_drops_last_batch,
            "dropped the last, smaller batch",
        ),
        (
            validation_first_batch_only,
            r"ran the model on 4 of the 10 clips",
        ),
        (
            validation_whole_set,
            "ran the model on 10 clips at once",
        ),
        (
            validation_swapped,
            r"returns \(accuracy, loss\)",
        ),
        (
            validation_mean_of_means,
            "averages the batch means",
        ),
        (
            validation_double_softmax,
            r"applies softmax before F.cross_entropy",
        ),
        (validation_nll_on_logits, r"uses F.nll_loss on raw logits"),
        (
            validation_nll_on_probabilities,
            r"uses F.nll_loss on probabilities",
        ),
        (
            validation_summed_loss,
            "returns the summed loss",
        ),
        (
            validation_per_batch_division,
            r"divides the summed loss by the number of batches",
        ),
        (validation_percent, r"returns a percentage"),
        (validation_count, r"returns the number of correct clips"),
        (
            validation_mean_batch_accuracy,
            r"averages the batch accuracies",
        ),
        (validation_dict, r"must return a pair \(loss, accuracy\)"),
        (
            validation_vector_accuracy,
            r"wrong shape: the accuracy .* must be one number",
        ),
        (
            validation_calls_head,
            "raised AttributeError: .*has no attribute 'head'",
        ),
        (
            validation_no_batch_size,
            "wrong signature: .*validation_metrics",
        ),
    ],
)
VALIDATION_RIGHT = right(
    checks.check_validation_metrics,
    [
        validation_reference,
        validation_loader,
        validation_split,
        validation_two_passes,
    ],
)

# --------------------------------------------------------------------------- all function checks


WRONG = BYOL_WRONG + SIMSIAM_WRONG + INFO_NCE_WRONG + MOMENTUM_WRONG + EMA_WRONG + VALIDATION_WRONG
RIGHT = BYOL_RIGHT + SIMSIAM_RIGHT + INFO_NCE_RIGHT + MOMENTUM_RIGHT + EMA_RIGHT + VALIDATION_RIGHT


@pytest.mark.parametrize("check,fn,match", WRONG)
def test_wrong_solution_gets_its_message(check, fn, match) -> None:
    with pytest.raises(AssertionError, match=match):
        check(fn)


@pytest.mark.parametrize("check,fn", RIGHT)
def test_right_solution_passes(check, fn, capsys) -> None:
    check(fn)
    assert capsys.readouterr().out.startswith("OK: ")


FUNCTION_CHECKS = [
    checks.check_byol_loss,
    checks.check_simsiam_loss,
    checks.check_info_nce,
    checks.check_barlow_twins_loss,
    checks.check_vicreg_loss,
    checks.check_ema_update,
    checks.check_byol_momentum,
    checks.check_validation_metrics,
]


@pytest.mark.parametrize("check", FUNCTION_CHECKS, ids=lambda c: c.__name__)
def test_not_implemented(check) -> None:
    with pytest.raises(
        NotImplementedError, match="not implemented yet: fill the cell marked # YOUR CODE HERE"
    ):
        check(not_implemented)


# --------------------------------------------------------------------------- Barlow Twins, VICReg


def barlow_twins_reference(z1, z2, lambd=5e-3):
    """Barlow Twins from the paper's pseudocode, written here (not the package's)."""
    n = z1.shape[0]
    z1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False).clamp_min(1e-5)
    z2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False).clamp_min(1e-5)
    c = z1.T @ z2 / n  # (dim, dim)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    return on + lambd * off


def _vicreg_variance(z, gamma=1.0, eps=1e-4):
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()


def _vicreg_covariance(z):
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / (n - 1)  # (dim, dim)
    return (cov - torch.diag(torch.diagonal(cov))).pow(2).sum() / d


def vicreg_reference(z1, z2):
    """VICReg with the paper's coefficients (25, 25, 1), written here (not the package's)."""
    invariance = F.mse_loss(z1, z2)
    variance = (_vicreg_variance(z1) + _vicreg_variance(z2)) / 2
    covariance = _vicreg_covariance(z1) + _vicreg_covariance(z2)
    return 25 * invariance + 25 * variance + covariance


@pytest.mark.parametrize("check", [checks.check_barlow_twins_loss, checks.check_vicreg_loss])
def test_optional_losses(check, capsys) -> None:
    reference = {checks.check_barlow_twins_loss: barlow_twins_reference}.get(
        check, vicreg_reference
    )
    check(reference)
    assert capsys.readouterr().out.startswith("OK: ")
    with pytest.raises(AssertionError, match="wrong shape: expected a scalar"):
        check(lambda z1, z2: torch.zeros(32, requires_grad=True))
    with pytest.raises(AssertionError, match="must return a scalar torch.Tensor"):
        check(lambda z1, z2: 0.5)


def test_vicreg_missing_term() -> None:
    def no_covariance(z1, z2):
        return 25 * F.mse_loss(z1, z2) + 25 * (_vicreg_variance(z1) + _vicreg_variance(z2)) / 2

    with pytest.raises(AssertionError, match="is missing the covariance term"):
        checks.check_vicreg_loss(no_covariance)


def test_barlow_not_standardised() -> None:
    def raw(z1, z2):
        c = z1.T @ z2 / z1.shape[0]
        return (1 - c.diagonal()).pow(2).sum() + 5e-3 * losses.off_diagonal(c).pow(2).sum()

    with pytest.raises(AssertionError, match="Standardise each dimension along the batch"):
        checks.check_barlow_twins_loss(raw)


# --------------------------------------------------------------------------- training history


def history(losses_, std=0.17, rank=15.0, dim=32, **kw):
    """A History as fit writes it: one row per step with the health numbers."""
    from dlsaudio.history import History

    def per_step(value):
        return value if isinstance(value, list) else [value] * len(losses_)

    rows = [
        {
            "step": i + 1,
            "loss": loss,
            "std": s,
            "std_healthy": 1 / math.sqrt(dim),
            "effective_rank": r,
        }
        for i, (loss, s, r) in enumerate(zip(losses_, per_step(std), per_step(rank), strict=True))
    ]
    return History(steps=rows, **kw)


FALLING = [3.0 - i / 20 for i in range(40)]


def test_training_history_basics(capsys) -> None:
    from dlsaudio.history import History

    checks.check_training_history(history([3.0, 2.5, 2.0, 1.8]), min_steps=4)
    assert capsys.readouterr().out.startswith(
        "OK: 4 steps, mean loss 3.0000 (first quarter) -> 1.8000"
    )
    checks.check_training_history(History(steps=[{"loss": v} for v in (1.0, 1.1)]))
    assert "too short to judge" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected the History returned by fit"):
        checks.check_training_history([1.0, 2.0])
    with pytest.raises(AssertionError, match="the history is empty"):
        checks.check_training_history(History())
    with pytest.raises(AssertionError, match="the loss became nan at step 2"):
        checks.check_training_history(History(steps=[{"loss": 1.0}, {"loss": float("nan")}]))
    with pytest.raises(AssertionError, match="the loss did not go down"):
        checks.check_training_history(history([1.0 + v / 10 for v in range(20)]))


def test_collapse_seen_by_the_std() -> None:
    std = [0.17] * 20 + [0.001] * 20
    with pytest.raises(
        AssertionError,
        match=r"collapsed \(the std shows it",
    ):
        checks.check_training_history(history(FALLING, std=std, rank=[15.0] * 20 + [12.0] * 20))


def test_collapse_seen_by_the_effective_rank_only() -> None:
    """SimSiam without a stop-gradient: std 0.087 (healthy 0.088), effective rank 1.29, loss -0.90."""
    loss = [-0.1 - 0.8 * i / 159 for i in range(160)]
    rank = [20.0 - 18.71 * min(i / 80, 1.0) for i in range(160)]
    with pytest.raises(
        AssertionError,
        match="the effective rank shows it, although the std looks healthy",
    ):
        checks.check_training_history(history(loss, std=0.087, rank=rank, dim=128))


def test_collapse_seen_by_a_falling_effective_rank() -> None:
    """The rank fell from 20 to 4: below a quarter of where it started."""
    rank = [20.0] * 10 + [12.0] * 10 + [4.0] * 20
    with pytest.raises(
        AssertionError,
        match=r"effective rank shows it.*over the first quarter",
    ):
        checks.check_training_history(history(FALLING, rank=rank))
    checks.check_training_history(history(FALLING[:8], rank=rank[::5]))  # too short to judge
    checks.check_training_history(history(FALLING, rank=[20.0] * 20 + [6.0] * 20))  # 0.3 of it


def test_collapse_seen_by_both() -> None:
    with pytest.raises(AssertionError, match="shown by both the std and the effective rank"):
        checks.check_training_history(history(FALLING, std=0.001, rank=1.0))


def test_collapse_flag_without_health_numbers() -> None:
    from dlsaudio.history import History

    rows = [{"loss": v} for v in (3.0, 2.5, 2.0, 1.8)]
    with pytest.raises(AssertionError, match="the collapse monitor fired"):
        checks.check_training_history(History(steps=rows, collapsed=True))
    checks.check_training_history(
        History(steps=rows, collapsed=True), allow_collapse=True, min_steps=4
    )


def test_healthy_histories_pass(capsys) -> None:
    """Health numbers of short healthy runs on the bundled sample: BYOL's rank fell from 15 to 9,
    SimCLR's std was about half the healthy level, the supervised features' rank was about 6."""
    checks.check_training_history(history(FALLING, std=0.13, rank=[14.9] * 10 + [8.7] * 30))
    checks.check_training_history(history(FALLING, std=0.08, rank=11.0))
    checks.check_training_history(history(FALLING, std=0.1, rank=6.0, dim=16))
    assert capsys.readouterr().out.count("OK: 40 steps") == 3


def test_expect_collapse(capsys) -> None:
    collapsed = history(FALLING, std=0.087, rank=[20.0] * 10 + [1.29] * 30, dim=128)
    checks.check_training_history(collapsed, expect_collapse=True)
    assert "collapsed, as expected" in capsys.readouterr().out
    partly = history(FALLING, std=0.125, rank=[13.6] * 10 + [9.0] * 20 + [4.9] * 10)
    checks.check_training_history(partly, expect_collapse=True)  # smoke-sized, rank kept 0.36
    assert "collapsed, as expected" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="meant to collapse and did not"):
        checks.check_training_history(history(FALLING), expect_collapse=True)
    checks.check_training_history(history(FALLING[:8]), expect_collapse=True)  # too short to judge
    assert "too short" in capsys.readouterr().out


# --------------------------------------------------------------------------- the model that was trained


TINY = {"channels": (4, 8), "blocks": (1, 1)}


class StudentContrastive(torch.nn.Module):
    """A contrastive model written in a notebook cell: its own training_step and loss."""

    needs_labels = False

    def __init__(self) -> None:
        super().__init__()
        from dlsaudio.ssl.encoders import MelEncoder

        self.encoder = MelEncoder(**TINY)
        self.projector = torch.nn.Linear(self.encoder.dim, 8)

    def training_step(self, x1, x2, label=None):
        from dlsaudio.ssl import StepOutput

        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        return StepOutput(info_nce_log_softmax(z1, z2, 0.5), z1, z2)

    def on_step_end(self, progress):
        pass


def _byol():
    from dlsaudio.ssl import BYOL
    from dlsaudio.ssl.encoders import MelEncoder

    torch.manual_seed(0)
    return BYOL(MelEncoder(**TINY), dim=8, hidden_dim=16)


def test_the_history_records_the_model_it_trained(capsys) -> None:
    model = StudentContrastive()
    trained = tiny_fit(model)
    assert trained.model["class"] == f"{__name__}.StudentContrastive"
    assert trained.model["id"] == id(model)
    assert trained.model["clip_samples"] > 0  # a check can run one step of it again
    checks.check_training_history(trained, model=model)
    assert capsys.readouterr().out.startswith("OK: 2 steps")

    with pytest.raises(
        AssertionError, match=r"comes from training another .*StudentContrastive object"
    ):
        checks.check_training_history(trained, model=StudentContrastive())
    with pytest.raises(
        AssertionError,
        match="but the model passed is a dlsaudio.ssl.non_contrastive.BYOL",
    ):
        checks.check_training_history(trained, model=_byol())

    from dlsaudio.history import History

    again = History.from_dict(trained.to_dict())
    assert again == trained
    old = History.from_dict({k: v for k, v in trained.to_dict().items() if k != "model"})
    with pytest.raises(AssertionError, match="does not record which model it trained"):
        checks.check_training_history(old, model=model)


def test_training_the_package_model_does_not_pass() -> None:
    byol = _byol()
    trained = tiny_fit(byol)
    with pytest.raises(
        AssertionError,
        match="`training_step` of your BYOL comes from the package",
    ):
        checks.check_training_history(trained, model=byol)


def _byol_subclass(**methods):
    from dlsaudio.ssl import BYOL

    return type("StudentBYOL", (BYOL,), {"__module__": "__main__", **methods})


def test_task_methods_must_be_the_students() -> None:
    """Histories are stamped by hand here (as fit does) to keep the test fast."""

    def training_step(self, x1, x2, label=None):
        raise AssertionError("not called by the check")

    def on_step_end(self, progress):
        pass

    def stamped(model):
        h = history(FALLING)
        h.model = {"class": f"{type(model).__module__}.{type(model).__qualname__}", "id": id(model)}
        return h

    from dlsaudio.ssl import BYOL, SSLMethod
    from dlsaudio.ssl.encoders import MelEncoder

    own = _byol_subclass(training_step=training_step, on_step_end=on_step_end)(MelEncoder(**TINY))
    checks.check_training_history(stamped(own), model=own, methods=("training_step", "on_step_end"))

    inherits_hook = _byol_subclass(training_step=training_step)(MelEncoder(**TINY))
    with pytest.raises(
        AssertionError,
        match="`on_step_end` of your StudentBYOL comes from the package",
    ):
        checks.check_training_history(stamped(inherits_hook), model=inherits_hook)

    copied = _byol_subclass(training_step=BYOL.training_step, on_step_end=on_step_end)(
        MelEncoder(**TINY)
    )
    with pytest.raises(
        AssertionError, match=r"`training_step` of your StudentBYOL comes from the package"
    ):
        checks.check_training_history(stamped(copied), model=copied)

    no_hook = type(
        "StudentBYOL", (SSLMethod,), {"__module__": "__main__", "training_step": training_step}
    )(MelEncoder(**TINY))
    with pytest.raises(AssertionError, match=r"SSLMethod.on_step_end \(which does nothing\)"):
        checks.check_training_history(
            stamped(no_hook), model=no_hook, methods=("training_step", "on_step_end")
        )


# --------------------------------------------------------------------------- comparison table


def test_comparison(capsys) -> None:
    import pandas as pd

    columns = [
        "probe k=1",
        "probe k=2",
        "probe k=5",
        "probe k=10",
        "probe all",
        "knn",
        "std",
        "effective_rank",
    ]
    methods = ["supervised", "contrastive", "byol", "simsiam"]
    table = pd.DataFrame([[0.5] * 6 + [0.05, 12.0]] * 4, index=methods, columns=columns)
    checks.check_comparison(table)
    assert capsys.readouterr().out.startswith("OK: ")
    with pytest.raises(AssertionError, match=r"missing rows \['simsiam'\]"):
        checks.check_comparison(table.drop(index="simsiam"))
    with pytest.raises(AssertionError, match=r"columns \['knn'\]"):
        checks.check_comparison(table.drop(columns="knn"))
    with pytest.raises(AssertionError, match="empty cells"):
        checks.check_comparison(table.assign(knn=float("nan")))
    with pytest.raises(AssertionError, match="not percentages"):
        checks.check_comparison(table.assign(knn=90.0))
    with pytest.raises(AssertionError, match="expected a pandas DataFrame"):
        checks.check_comparison({"a": 1})
