"""The check of the contrastive loss, InfoNCE (NT-Xent), and the known mistakes it names.

A wrong value is first compared with every known mistake (:func:`_info_nce_mistakes`, computed
by :func:`_nt_xent_rows` with one mistake switched on), then narrowed down on cases with a
closed form: collinear and orthonormal embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dlsaudio.delegation import refuses_delegation
from dlsaudio.ssl import losses
from dlsaudio.ssl.checks import answers
from dlsaudio.ssl.checks.calls import (
    _close,
    _diagnose,
    _known_mistake,
    _loose_value,
    _name,
    _randn,
    _scalar,
    _value,
)
from dlsaudio.ssl.checks.loss_properties import (
    _gradients,
    _reference_gradients,
    _same_gradients,
    _scale_invariance,
)
from dlsaudio.student_calls import call_student

INFO_NCE = "info_nce(z1, z2, tau)"

_WHOLE = (
    "divides by the sum over the WHOLE 2N x 2N matrix; the denominator of row i sums "
    "exp(s_ik / tau) over k != i in that row only"
)


def _nt_xent_rows(
    z1: torch.Tensor,
    z2: torch.Tensor,
    tau: float,
    *,
    normalise: bool = True,
    mask: bool = True,
    tau_power: int = 1,
) -> torch.Tensor:
    """Per-anchor NT-Xent losses ``(2N,)``, or the same with one known mistake switched on."""
    n = z1.shape[0]
    z = torch.cat([z1, z2]).double()  # (2N, dim)
    if normalise:
        z = F.normalize(z, dim=1)
    logits = z @ z.T / tau**tau_power  # (2N, 2N)
    if mask:
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    idx = torch.arange(n)
    positives = logits[torch.arange(2 * n), torch.cat([idx + n, idx])]  # (2N,)
    return torch.logsumexp(logits, dim=1) - positives


def _info_nce_mistakes(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> list[tuple[float, str]]:
    """What each known InfoNCE mistake gives on ``(z1, z2, tau)``, with its message."""
    n = z1.shape[0]
    rows = _nt_xent_rows(z1, z2, tau)
    loss = float(rows.mean())
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    logits = z @ z.T / tau  # (2N, 2N)
    idx = torch.arange(n)
    positives = logits[torch.arange(2 * n), torch.cat([idx + n, idx])]
    masked = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    cross = z[:n] @ z[n:].T / tau  # (N, N)
    one_way = float(F.cross_entropy(cross, idx))
    return [
        (float((torch.logsumexp(masked.flatten(), 0) - positives).mean()), _WHOLE),
        (float((torch.logsumexp(logits.flatten(), 0) - positives).mean()), _WHOLE),
        (
            float(_nt_xent_rows(z1, z2, tau, mask=False).mean()),
            "keeps k == i in the denominator (each view's similarity with itself); mask the "
            "diagonal of the similarity matrix (fill it with -inf)",
        ),
        (
            float(_nt_xent_rows(z1, z2, tau, normalise=False).mean()),
            "does not l2-normalise the embeddings: s_ik is the cosine similarity, so "
            "F.normalize(z, dim=1) before the dot products (or use F.cosine_similarity)",
        ),
        (
            float(_nt_xent_rows(z1, z2, tau, tau_power=0).mean()),
            "does not use the temperature: divide the cosine similarities by tau",
        ),
        (
            float(_nt_xent_rows(z1, z2, tau, tau_power=2).mean()),
            "divides by tau twice (the logits are s / tau**2): divide the similarities by tau once",
        ),
        (
            float(_nt_xent_rows(z1, z2, tau, tau_power=-1).mean()),
            "multiplies the similarities by tau: divide them by tau",
        ),
        (
            float(rows[:n].mean()),
            "averages over only the N anchors of z1: NT-Xent averages over all 2N anchors, the "
            "rows of z1 (positives in z2) and the rows of z2 (positives in z1)",
        ),
        (
            float(rows[n:].mean()),
            "averages over only the N anchors of z2: NT-Xent averages over all 2N anchors, the "
            "rows of z1 (positives in z2) and the rows of z2 (positives in z1)",
        ),
        *(
            (
                value,
                "compares z1 only with z2 (the N x N matrix z1 @ z2.T): the negatives of an "
                "anchor are all 2N - 2 other views, those of its own side included; build the "
                "(2N, 2N) similarity matrix of torch.cat([z1, z2])",
            )
            for value in (one_way, (one_way + float(F.cross_entropy(cross.T, idx))) / 2)
        ),
        (float(rows.sum()), "sums the loss over the 2N anchors: average it with .mean()"),
        (float(rows[:n].sum()), "sums the loss over N anchors: average it over all 2N anchors"),
        (
            float(rows[:n].mean() + rows[n:].mean()),
            "adds the mean losses of the two halves: average them (divide by 2), or take one "
            "mean over all 2N rows",
        ),
        (
            loss - math.log(2 * n - 1),
            "is NT-Xent minus log(2N - 1): the denominator is the SUM of exp(s_ik / tau) over "
            "the 2N - 1 other views, not their mean, and no constant is subtracted",
        ),
        (
            loss - math.log(2 * n),
            "is NT-Xent minus log(2N): the denominator is the SUM of exp(s_ik / tau) over "
            "k != i, not a mean over the row, and no constant is subtracted",
        ),
        (
            loss + math.log(2 * n),
            "is NT-Xent plus log(2N): remove the constant; the loss of row i is "
            "-log(exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau)) with nothing added",
        ),
        (
            loss + math.log(2 * n - 1),
            "is NT-Xent plus log(2N - 1): remove the constant; the loss of row i is "
            "-log(exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau)) with nothing added",
        ),
    ]


@refuses_delegation(*answers.INFO_NCE)
def check_info_nce(fn: Callable, tau: float = 0.5) -> None:
    """Check ``fn(z1, z2, tau)`` against NT-Xent with a per-row denominator.

    First the value on random inputs is compared with the reference and with every known
    mistake (so that a single mistake is named exactly). A wrong value that matches none is
    then narrowed down one property at a time: rescaling invariance (normalisation); collinear
    embeddings, where NT-Xent is ``log(2N - 1)`` whatever tau (diagonal mask, mean over the 2N
    anchors, the denominator); orthonormal embeddings (temperature, positive index); random
    inputs. Last, the gradient must reach both views and equal NT-Xent's.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    n, dim = 6, 8
    z1, z2 = _randn(20, n, dim), _randn(21, n, dim)
    out = call_student(fn, (z1, z2, tau), expected=INFO_NCE)
    if isinstance(out, torch.Tensor) and out.ndim == 0 and not torch.isfinite(out):
        if math.isfinite(_loose_value(fn, INFO_NCE, z1 / 10, z2 / 10, tau)):
            raise AssertionError(
                f"wrong value: `{_name(fn)}` returned {float(out)} on random z1, z2 but a finite "
                "value when they are 10 times smaller: exp overflows. Use cosine similarities "
                "(normalise z) and compute the log of the softmax with F.cross_entropy, "
                "log_softmax or torch.logsumexp rather than exp then log"
            )
        if torch.isinf(out):
            raise AssertionError(
                f"wrong value: `{_name(fn)}` returned inf: the target of some row is a masked "
                "(-inf) entry, i.e. the row itself. With the views concatenated as "
                "torch.cat([z1, z2]), the positive of row i is row i + N for i < N and row "
                "i - N for i >= N"
            )
    got = float(_scalar(fn, out))
    expected = float(losses.info_nce(z1, z2, tau))
    case = f"random z1, z2 of shape ({n}, {dim}), tau={tau}"
    _known_mistake(fn, case, got, expected, _info_nce_mistakes(z1, z2, tau))
    _scale_invariance(fn, INFO_NCE, (z1, z2), ("z1", "z2"), got, tau)

    ones = torch.ones(n, dim)
    _diagnose(
        fn,
        f"collinear embeddings (z1 = 1, z2 = 2, N={n})",
        _loose_value(fn, INFO_NCE, ones, 2 * ones, tau),
        math.log(2 * n - 1),
        _info_nce_mistakes(ones, 2 * ones, tau),
        "With all embeddings pointing the same way every similarity is 1, so each row is one "
        "positive among 2N - 1 equal terms and NT-Xent is log(2N - 1): check the diagonal mask, "
        "the mean over the 2N anchors and that the denominator is a sum over k != i",
    )

    eye = torch.eye(n, dim)  # z1 = z2: each view equals its positive, orthogonal to the negatives

    def one_hot(t: float) -> tuple[float, float]:
        """The student's value on the orthonormal case at temperature t, and the right one."""
        right = -1 / t + math.log(math.exp(1 / t) + 2 * n - 2)
        return _loose_value(fn, INFO_NCE, eye, eye.clone(), t), right

    got_one_hot, right = one_hot(tau)
    case = f"orthonormal embeddings (z1 = z2 = rows of the identity, N={n}), tau={tau}"
    _known_mistake(fn, case, got_one_hot, right, _info_nce_mistakes(eye, eye.clone(), tau))
    other_tau = tau / 2.5
    got_other, right_other = one_hot(other_tau)
    if not _close(got_other, right_other) and _close(got_other, got_one_hot):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` gives the same value for tau={tau} and "
            f"tau={other_tau}: it ignores its tau argument (a fixed temperature inside?); divide "
            "the similarities by the tau it is given"
        )
    if not _close(got_one_hot, right):
        wrong = math.log(math.exp(1 / tau) + 2 * n - 2)  # a row whose "positive" is a negative
        rows = 2 * n * (got_one_hot - right) / (wrong - right)
        if 0.5 <= rows <= 2 * n + 0.5 and abs(rows - round(rows)) < 1e-3:
            raise AssertionError(
                f"wrong value on a known case: for {round(rows)} of the 2N = {2 * n} rows the "
                f"target index of `{_name(fn)}` points at a negative, not at the row's other view. "
                "With the views concatenated as torch.cat([z1, z2]), the positive of row i is "
                f"row i + N for i < N and row i - N for i >= N ({case}: expected {right:.6f}, "
                f"got {got_one_hot:.6f})"
            )
        _value(
            fn,
            case,
            got_one_hot,
            right,
            "Each view equals its positive (cosine 1) and is orthogonal to its negatives "
            "(cosine 0), so every row's loss is -1/tau + log(exp(1/tau) + 2N - 2): check the "
            "temperature and the index of each row's positive",
        )
    _value(
        fn,
        f"random z1, z2 of shape ({n}, {dim}), tau={tau}",
        got,
        expected,
        "Use cosine similarities divided by tau, mask the diagonal, take each row's other view "
        "as its positive and average over all 2N anchors",
    )
    _, grads = _gradients(fn, INFO_NCE, (z1, z2), ("z1", "z2"), tau)
    missing = [name for name, grad in grads.items() if grad is None]
    if missing:
        raise AssertionError(
            f"no gradient reaches {' and '.join(missing)} in `{_name(fn)}`: InfoNCE trains both "
            "views, so detach neither (and do not call .item() or use torch.no_grad())"
        )
    _same_gradients(
        fn,
        grads,
        _reference_gradients(lambda a, b: losses.info_nce(a, b, tau), (z1, z2), ("z1", "z2")),
        ("z1", "z2"),
        "NT-Xent",
    )
    print(f"OK: `{_name(fn)}` matches NT-Xent with a per-row denominator.")
