"""Self-checks for the module-3 homework cells.

Each ``check_*`` calls the student's function on known inputs and tests one property per case,
in an order that lets the most specific hint fire first (scale invariance before random values,
eval mode before the loss value). A wrong answer raises ``AssertionError`` with a message that
names the mistake and what to change:

- ``not implemented yet: fill the cell marked # YOUR CODE HERE ...`` (``NotImplementedError``,
  so an unfinished notebook stops where a student expects it to);
- ``wrong signature: the check calls ...`` or ``... raised TypeError: ...`` with the call the
  check made and the signature the task asks for;
- ``wrong shape: expected a scalar, got (...)``;
- ``wrong value on a known case: ... expected ..., got ...`` with the mistake recognised;
- ``missing stop-gradient: gradient flows into z ...``.

Where a number is meant, any real number passes: ``int``, ``float``, NumPy scalars, 0-dim
tensors and arrays. On success a check prints one line starting with ``OK``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio import losses

__all__ = [
    "check_barlow_twins_loss",
    "check_byol_loss",
    "check_byol_momentum",
    "check_comparison",
    "check_ema_update",
    "check_info_nce",
    "check_simsiam_loss",
    "check_training_history",
    "check_validation_metrics",
    "check_vicreg_loss",
]

RTOL = 1e-4
ATOL = 1e-5

# Errors whose text says more to a student once translated.
_KNOWN_ERRORS = (
    (
        "a leaf Variable that requires grad is being used in an in-place operation",
        "update parameters in place only inside `with torch.no_grad():` (or decorate the "
        "function with @torch.no_grad())",
    ),
    (
        "'_RecordingClassifier' object has no attribute",
        "the check's model only maps waves (batch, time) to logits (batch, classes): call model(x)",
    ),
    (
        "can't be cast to the desired output type Long",
        "an integer tensor was multiplied by a float: state_dict() also holds batch norm's "
        "integer counter num_batches_tracked; update target.parameters() (and copy the buffers)",
    ),
)


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"<{str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, nn.Module):
        return f"<{type(value).__name__} module>"
    return repr(value)


def _call(fn: Callable, expected: str, *args, **kwargs):
    """Call the student's function; when it fails, say how it was called and what was expected.

    Args:
        fn: the student's function.
        expected: the signature the task asks for, e.g. ``"info_nce(z1, z2, tau)"``.
        *args, **kwargs: passed to ``fn``.

    Raises:
        NotImplementedError: ``fn`` is still the stub.
        AssertionError: ``fn`` does not accept the arguments or raised an exception.
    """
    shown = ", ".join(
        [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    )
    call = f"{_name(fn)}({shown})"
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        raise AssertionError(
            f"wrong signature: the check calls {call}, which `{_name(fn)}` does not accept "
            f"({err}); define it as {expected}"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): the call itself decides
        pass
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedError(
            f"not implemented yet: fill the cell marked # YOUR CODE HERE in `{_name(fn)}` "
            "(and run that cell) before this check"
        ) from None
    except Exception as err:
        hint = next((h for text, h in _KNOWN_ERRORS if text in str(err)), "")
        raise AssertionError(
            f"`{_name(fn)}` raised {type(err).__name__}: {err}. The check called {call}, "
            f"expecting {expected} to work on these inputs"
            + (f"; {hint}" if hint else "; the traceback above shows the line that failed")
        ) from err


def _scalar(fn: Callable, out) -> torch.Tensor:
    """The output must be a 0-dim finite tensor."""
    if not isinstance(out, torch.Tensor):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a scalar torch.Tensor (so that .backward() "
            f"works), got {type(out).__name__}"
        )
    if out.ndim != 0:
        raise AssertionError(
            f"wrong shape: expected a scalar, got {tuple(out.shape)} from `{_name(fn)}`; "
            "average over the batch with .mean()"
        )
    if not torch.isfinite(out):
        raise AssertionError(
            f"wrong value: `{_name(fn)}` returned {float(out)}; expected a finite number"
        )
    return out


def _number(fn: Callable, value, what: str) -> float:
    """``value`` as a float: Python and NumPy numbers, 0-dim tensors and arrays all pass."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim != 0:
            raise AssertionError(
                f"wrong shape: {what} from `{_name(fn)}` must be one number, got a "
                f"{type(value).__name__} of shape {tuple(value.shape)}; return a scalar "
                "(e.g. .item() of a 0-dim tensor)"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(
            f"wrong type: {what} from `{_name(fn)}` must be a number, got {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise AssertionError(
            f"wrong value: {what} from `{_name(fn)}` is {value}; expected a finite number"
        )
    return value


def _close(got: float, expected: float) -> bool:
    return math.isclose(got, expected, rel_tol=RTOL, abs_tol=ATOL)


def _value(fn: Callable, case: str, got: float, expected: float, hint: str = "") -> None:
    if not _close(got, expected):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` on {case}: expected {expected:.6f}, "
            f"got {got:.6f}" + (f". {hint}" if hint else "")
        )


def _known_mistake(fn: Callable, case: str, got: float, expected: float, mistakes) -> None:
    """Fail with the message of the first known mistake that explains a wrong ``got``.

    ``mistakes`` are ``(value, message)`` pairs: what a known mistake gives on this case and
    what to say about it. A mistake that gives the right value here cannot explain a wrong one.
    """
    if _close(got, expected):
        return
    for value, message in mistakes:
        if _close(got, float(value)) and not _close(float(value), expected):
            raise AssertionError(
                f"wrong value on a known case: `{_name(fn)}` {message} ({case}: expected "
                f"{expected:.6f}, got {got:.6f})"
            )


def _diagnose(fn: Callable, case: str, got: float, expected: float, mistakes, hint: str) -> None:
    """Fail when ``got`` is not ``expected``: with a known mistake's message, else with ``hint``."""
    _known_mistake(fn, case, got, expected, mistakes)
    _value(fn, case, got, expected, hint)


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _loose_value(fn: Callable, expected: str, *args, **kwargs) -> float:
    """The student's loss as a float; ``nan`` when it is not a finite scalar (e.g. overflow)."""
    out = _call(fn, expected, *args, **kwargs)
    if isinstance(out, torch.Tensor) and out.ndim == 0 and torch.isfinite(out):
        return float(out)
    return math.nan


def _scale_invariance(
    fn: Callable,
    expected: str,
    args: Sequence[torch.Tensor],
    names: Sequence[str],
    base: float,
    *extra,
    **kwargs,
) -> None:
    """A loss of cosine similarities must not change when an embedding is rescaled.

    First every row of one argument by the same factor (no normalisation at all fails), then
    each row by its own factor (normalising along the batch instead of the features fails).
    """
    rows = torch.linspace(0.5, 2.0, args[0].shape[0]).unsqueeze(1)  # (batch, 1)
    for factor, change, fix in (
        (
            2.0,
            "is multiplied by 2",
            "normalise {} (F.normalize(x, dim=1)) or use F.cosine_similarity",
        ),
        (
            rows,
            "has each row multiplied by its own positive factor",
            "each ROW is one embedding, so normalise along the features, F.normalize(x, dim=1) "
            "(or F.cosine_similarity(a, b, dim=1)), not along the batch (dim=0)",
        ),
    ):
        changed = []
        for i, name in enumerate(names):
            scaled = list(args)
            scaled[i] = factor * args[i]
            if not _close(_loose_value(fn, expected, *scaled, *extra, **kwargs), base):
                changed.append(name)
        if changed:
            which = ", ".join(changed[:-1]) + (" or " if len(changed) > 1 else "") + changed[-1]
            both = ", ".join(changed[:-1]) + (" and " if len(changed) > 1 else "") + changed[-1]
            raise AssertionError(
                f"wrong value on a known case: `{_name(fn)}` changes when {which} {change}, but a "
                f"loss of cosine similarities depends only on directions: {fix.format(both)}"
            )


def _gradients(
    fn: Callable,
    expected: str,
    args: Sequence[torch.Tensor],
    names: Sequence[str],
    *extra,
    **kwargs,
) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """Backpropagate ``fn(*args, *extra, **kwargs)``; the gradient of each of ``args``,
    ``None`` where it is zero or absent."""
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = _scalar(fn, _call(fn, expected, *leaves, *extra, **kwargs))
    if out.requires_grad:
        out.backward()
    grads = {}
    for name, leaf in zip(names, leaves, strict=True):
        grad = leaf.grad
        grads[name] = grad if grad is not None and torch.count_nonzero(grad) > 0 else None
    return out, grads


def _reference_gradients(
    loss: Callable, args: Sequence[torch.Tensor], names: Sequence[str]
) -> dict[str, torch.Tensor | None]:
    leaves = [a.detach().clone().requires_grad_() for a in args]
    loss(*leaves).backward()
    return {name: leaf.grad for name, leaf in zip(names, leaves, strict=True)}


def _same_gradients(
    fn: Callable, got: dict, reference: dict, names: Sequence[str], formula: str
) -> None:
    for name in names:
        if got[name] is not None and not torch.allclose(
            got[name], reference[name], rtol=1e-3, atol=1e-6
        ):
            raise AssertionError(
                f"wrong gradient: the value of `{_name(fn)}` is right but its gradient into "
                f"{name} is not that of {formula}: part of the computation is cut from autograd "
                "(.detach(), .data, .item(), numpy or torch.no_grad()); keep it differentiable"
            )


# --------------------------------------------------------------------------- BYOL and SimSiam

BYOL_LOSS = "byol_loss(p, z)"
SIMSIAM_LOSS = "simsiam_loss(p1, p2, z1, z2, stop_gradient=True)"


def check_byol_loss(fn: Callable) -> None:
    """Check ``fn(p, z)`` against ``mean(2 - 2 cos(p, stopgrad(z)))`` (BYOL, one direction).

    Order: a scalar; the same value when ``p`` or ``z`` is rescaled (normalisation); 0 when
    ``p == z``; the value on random inputs; the stop-gradient into ``z``.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    p, z = _randn(0, 8, 16), _randn(1, 8, 16)
    got = float(_scalar(fn, _call(fn, BYOL_LOSS, p, z)))
    _scale_invariance(fn, BYOL_LOSS, (p, z), ("p", "z"), got)
    same = float(_scalar(fn, _call(fn, BYOL_LOSS, p, p.clone())))
    _diagnose(
        fn,
        "p == z (identical directions)",
        same,
        0.0,
        [
            (
                -2.0,
                "computes -2 cos: the loss is 2 - 2 * cos(p, z), 0 when p and z point the same way",
            ),
            (
                -1.0,
                "computes -cos, SimSiam's loss: BYOL's is 2 - 2 * cos(p, z), 0 when p and z point the same way",
            ),
        ],
        "Identical directions give 2 - 2 * cos = 0",
    )
    cos = F.cosine_similarity(p, z, dim=1)  # (batch,)
    expected = float(losses.byol_loss(p, z))
    _diagnose(
        fn,
        "random p, z of shape (8, 16)",
        got,
        expected,
        [
            (
                expected / 2,
                "computes 1 - cos: BYOL's loss is 2 - 2 * cos, the squared distance between the normalised p and z",
            ),
            (
                expected / p.shape[1],
                "averages over the features too (F.mse_loss does): sum the squared differences over dim=1, then average over the batch (or use 2 - 2 * cos)",
            ),
            (expected * p.shape[0], "sums over the batch: average with .mean()"),
            (
                (2 - 2 * cos).sqrt().mean(),
                "averages the distance ||p - z||, not its square: the loss is ||p/|p| - z/|z|||^2 = 2 - 2 * cos",
            ),
        ],
        "The loss is 2 - 2 * cosine similarity per row, averaged over the batch",
    )
    _, grads = _gradients(fn, BYOL_LOSS, (p, z), ("p", "z"))
    if grads["z"] is not None and grads["p"] is None:
        raise AssertionError(
            f"stop-gradient on the wrong argument: in `{_name(fn)}` the gradient flows into z and "
            "not into p; p (the online prediction, first argument) is trained, z (the target "
            "projection, second argument) is not: detach z, not p"
        )
    if grads["z"] is not None:
        raise AssertionError(
            f"missing stop-gradient: gradient flows into z in `{_name(fn)}`; "
            "use z.detach() so that only the predictions are trained"
        )
    if grads["p"] is None:
        raise AssertionError(
            f"no gradient: the output of `{_name(fn)}` does not carry a gradient into the "
            "predictions p; do not detach p, call .item() or wrap the loss in torch.no_grad()"
        )
    _same_gradients(
        fn,
        grads,
        _reference_gradients(losses.byol_loss, (p, z), ("p", "z")),
        ("p",),
        "mean(2 - 2 cos(p, z))",
    )
    print(f"OK: `{_name(fn)}` matches the BYOL loss and stops the gradient into the target z.")


def _simsiam_no_stop_gradient(p1, p2, z1, z2) -> torch.Tensor:
    c1 = F.cosine_similarity(p1, z2, dim=1).mean()
    c2 = F.cosine_similarity(p2, z1, dim=1).mean()
    return -(c1 + c2) / 2


def check_simsiam_loss(fn: Callable) -> None:
    """Check ``fn(p1, p2, z1, z2, stop_gradient=True)`` against SimSiam's symmetric loss.

    The loss is ``-(cos(p1, stopgrad(z2)) + cos(p2, stopgrad(z1))) / 2``. With
    ``stop_gradient=False`` the value is the same and the gradient also flows into ``z1`` and
    ``z2`` (the homework trains that variant to watch it collapse).

    Order: a scalar; rescaling invariance; pairing of each prediction with the other view;
    the value on random inputs; the minimum -1; then the gradients with ``stop_gradient=True``,
    with the default, and with ``stop_gradient=False``.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    names = ("p1", "p2", "z1", "z2")
    args = tuple(_randn(s, 8, 16) for s in (10, 11, 12, 13))
    p1, p2, z1, z2 = args
    got = float(_scalar(fn, _call(fn, SIMSIAM_LOSS, *args)))
    _scale_invariance(fn, SIMSIAM_LOSS, args, names, got)
    expected = float(losses.simsiam_loss(*args))
    one = -float(F.cosine_similarity(p1, z2, dim=1).mean())
    _diagnose(
        fn,
        "random inputs of shape (8, 16)",
        got,
        expected,
        [
            (
                losses.simsiam_loss(p1, p2, z2, z1),
                "compares p1 with z1; each prediction must predict the OTHER view: D(p1, z2) / 2 + D(p2, z1) / 2",
            ),
            (-expected, "has the wrong sign: the loss is the NEGATIVE cosine, -1 at best"),
            (2 * expected, "adds the two terms: average them, D(p1, z2) / 2 + D(p2, z1) / 2"),
            (one, "has only one direction, D(p1, z2): add D(p2, z1) and average the two"),
            (
                -float(F.cosine_similarity(p2, z1, dim=1).mean()),
                "has only one direction, D(p2, z1): add D(p1, z2) and average the two",
            ),
            (expected * p1.shape[0], "sums the cosines over the batch: average each with .mean()"),
            (
                2 + 2 * expected,
                "computes BYOL's 2 - 2 cos: SimSiam's loss is the negative cosine, -1 at best",
            ),
        ],
        "The loss is -(cos(p1, z2) + cos(p2, z1)) / 2, each cosine averaged over the batch",
    )
    _value(
        fn,
        "p1 = 2 * z2, p2 = z1 (the minimum)",
        float(_scalar(fn, _call(fn, SIMSIAM_LOSS, 2 * z2, z1, z1, z2))),
        -1.0,
        "The minimum is -1, reached when each prediction points along the other view's z",
    )
    reference = _reference_gradients(_simsiam_no_stop_gradient, args, names)
    formula = "-(cos(p1, z2) + cos(p2, z1)) / 2"
    _, stopped = _gradients(fn, SIMSIAM_LOSS, args, names, stop_gradient=True)
    out, flowing = _gradients(fn, SIMSIAM_LOSS, args, names, stop_gradient=False)
    leaks = [n for n in ("z1", "z2") if stopped[n] is not None]
    if leaks and all(stopped[n] is None for n in ("p1", "p2")):
        raise AssertionError(
            f"stop-gradient on the wrong arguments: with stop_gradient=True `{_name(fn)}` sends "
            "the gradient into z and not into p: detach z1 and z2 (the targets), not p1 and p2"
        )
    if leaks and all(flowing[n] is None for n in ("z1", "z2")):
        raise AssertionError(
            f"stop_gradient is inverted in `{_name(fn)}`: it detaches z when stop_gradient=False "
            "and not when stop_gradient=True; detach z1 and z2 exactly when stop_gradient is True"
        )
    if leaks:
        raise AssertionError(
            f"missing stop-gradient: with stop_gradient=True gradient flows into {' and '.join(leaks)} "
            f"in `{_name(fn)}`; use z1.detach() and z2.detach() when stop_gradient is True"
        )
    for name in ("p1", "p2"):
        if stopped[name] is None:
            raise AssertionError(
                f"no gradient reaches {name} in `{_name(fn)}`: only the targets z1 and z2 are "
                "detached, the predictions p1 and p2 are trained"
            )
    _same_gradients(fn, stopped, reference, ("p1", "p2"), formula)
    _, default = _gradients(fn, SIMSIAM_LOSS, args, names)
    if any(default[n] is not None for n in ("z1", "z2")):
        raise AssertionError(
            f"the default of `{_name(fn)}` lets the gradient into z: make stop_gradient=True "
            "the default, as in simsiam_loss(p1, p2, z1, z2, stop_gradient=True)"
        )
    _value(
        fn,
        "random inputs with stop_gradient=False (only the gradients change, not the value)",
        float(out.detach()),
        expected,
        "stop_gradient must not change the value of the loss",
    )
    missing = [n for n in ("z1", "z2") if flowing[n] is None]
    if missing:
        raise AssertionError(
            f"with stop_gradient=False no gradient reaches {' and '.join(missing)} in "
            f"`{_name(fn)}`: detach z1 and z2 only when stop_gradient is True (without the "
            "stop-gradient SimSiam collapses, which the homework lets you watch)"
        )
    _same_gradients(fn, flowing, reference, names, formula)
    print(
        f"OK: `{_name(fn)}` matches the SimSiam loss; it stops the gradient into z1 and z2 "
        "unless stop_gradient=False."
    )


# --------------------------------------------------------------------------- InfoNCE

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
    out = _call(fn, INFO_NCE, z1, z2, tau)
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


# --------------------------------------------------------------------------- Barlow Twins, VICReg

BARLOW_TWINS_LOSS = "barlow_twins_loss(z1, z2)"
VICREG_LOSS = "vicreg_loss(z1, z2)"


def check_barlow_twins_loss(fn: Callable) -> None:
    """Check ``fn(z1, z2)`` (default ``lambd = 5e-3``) against the Barlow Twins loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = _randn(30, 32, 8), _randn(31, 32, 8)
    out = _scalar(fn, _call(fn, BARLOW_TWINS_LOSS, z1, z2))
    _value(
        fn,
        "random z1, z2 of shape (32, 8), lambd=5e-3",
        float(out),
        float(losses.barlow_twins_loss(z1, z2)),
        "Standardise each dimension along the batch, C = z1n.T @ z2n / batch, then "
        "sum (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2",
    )
    _value(
        fn,
        "z2 = 2 * z1 + 4 (the loss must be invariant)",
        float(_scalar(fn, _call(fn, BARLOW_TWINS_LOSS, z1, 2 * z1 + 4))),
        float(losses.barlow_twins_loss(z1, z1)),
        "Standardise along the batch (dim=0)",
    )
    print(f"OK: `{_name(fn)}` matches the Barlow Twins loss.")


def check_vicreg_loss(fn: Callable) -> None:
    """Check ``fn(z1, z2)`` (default coefficients 25, 25, 1) against the VICReg loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = 0.3 * _randn(40, 32, 8), 0.3 * _randn(41, 32, 8)
    got = float(_scalar(fn, _call(fn, VICREG_LOSS, z1, z2)))
    expected = float(losses.vicreg_loss(z1, z2))
    terms = {
        "invariance": 25 * float(losses.invariance_term(z1, z2)),
        "variance": 25 * float(losses.variance_term(z1) + losses.variance_term(z2)) / 2,
        "covariance": float(losses.covariance_term(z1) + losses.covariance_term(z2)),
    }
    _diagnose(
        fn,
        "random z1, z2 of shape (32, 8)",
        got,
        expected,
        [(expected - value, f"is missing the {name} term") for name, value in terms.items()],
        "25 * mse + 25 * mean(relu(1 - std)) averaged over both branches + "
        "sum of squared off-diagonal covariances / dim for each branch",
    )
    print(f"OK: `{_name(fn)}` matches the VICReg loss.")


# --------------------------------------------------------------------------- BYOL target

BYOL_MOMENTUM = "byol_momentum(progress, tau_base=0.996)"
EMA_UPDATE = "ema_update(target, online, momentum)"


def _cosine_momentum(progress: float, tau_base: float) -> float:
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2


def check_byol_momentum(fn: Callable) -> None:
    """Check ``fn(progress, tau_base=0.996)``: BYOL's cosine schedule from ``tau_base`` to 1.

    Order: a number; ``tau_base`` at the start; 1 at the end; the cosine shape in between;
    the default ``tau_base``. Any real number type passes (float, NumPy scalar, 0-dim tensor).

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    formula = "tau = 1 - (1 - tau_base) * (cos(pi * progress) + 1) / 2"

    def momentum(progress: float, *tau_base: float) -> float:
        return _number(fn, _call(fn, BYOL_MOMENTUM, progress, *tau_base), "the momentum")

    start = momentum(0.0, 0.99)
    _diagnose(
        fn,
        "progress=0.0, tau_base=0.99 (the start)",
        start,
        0.99,
        [
            (
                0.996,
                "ignores its tau_base argument (0.996 is only the default): use the tau_base it is given",
            ),
            (
                1.0,
                "runs backwards: the momentum starts at tau_base (progress=0) and rises to 1 (progress=1)",
            ),
            (0.98, "is missing the / 2: (cos(pi * progress) + 1) / 2 goes from 1 to 0"),
            (
                0.01,
                "returns 1 - momentum, the weight of the online network: return the target's momentum",
            ),
        ],
        f"The schedule starts at tau_base: {formula}",
    )
    _diagnose(
        fn,
        "progress=1.0, tau_base=0.99 (the end)",
        momentum(1.0, 0.99),
        1.0,
        [(0.99, "stays at tau_base: the momentum must rise to 1 at the end of training")],
        f"The schedule ends at 1, when the target stops moving: {formula}",
    )
    for progress, tau_base in ((0.25, 0.9), (0.5, 0.99), (0.9, 0.996)):
        _diagnose(
            fn,
            f"progress={progress}, tau_base={tau_base}",
            momentum(progress, tau_base),
            _cosine_momentum(progress, tau_base),
            [
                (
                    tau_base + (1 - tau_base) * progress,
                    "rises linearly: BYOL's schedule follows a cosine",
                ),
                *(
                    (
                        _cosine_momentum(progress, fixed),
                        f"ignores its tau_base argument (it uses {fixed}): use the tau_base it "
                        "is given",
                    )
                    for fixed in (0.99, 0.996)
                ),
            ],
            formula,
        )
    _value(
        fn,
        "progress=0.0 without tau_base (the default)",
        momentum(0.0),
        0.996,
        "Make tau_base=0.996 the default, as in the paper",
    )
    print(f"OK: `{_name(fn)}` follows BYOL's cosine momentum schedule.")


def _ema_networks(seed: int) -> tuple[nn.Module, nn.Module]:
    """Two small networks with different weights; batch norm gives them buffers too."""
    torch.manual_seed(seed)

    def net() -> nn.Module:
        layers = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
        with torch.no_grad():
            layers[1].weight.uniform_(0.5, 1.5)
            layers[1].bias.uniform_(-0.5, 0.5)
        return layers

    online = net()
    return net().requires_grad_(False), online


def check_ema_update(fn: Callable) -> None:
    """Check ``fn(target, online, momentum)`` updates ``target`` in place by EMA.

    Expected: ``target <- momentum * target + (1 - momentum) * online`` for every parameter,
    without gradient, leaving ``online`` unchanged. Buffers (batch norm statistics) may be
    copied, averaged or left alone; they only must not break the update. Checked with two
    momenta, so a fixed momentum inside the function is found.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    for seed, m in ((0, 0.9), (1, 0.6)):
        target, online = _ema_networks(seed)
        names = [name for name, _ in target.named_parameters()]
        before_t = [p.detach().clone() for p in target.parameters()]
        before_o = [p.detach().clone() for p in online.parameters()]
        _call(fn, EMA_UPDATE, target, online, m)
        for o, o0 in zip(online.parameters(), before_o, strict=True):
            if not torch.equal(o.detach(), o0):
                raise AssertionError(
                    f"`{_name(fn)}` changed the ONLINE network; only the target moves"
                )
        after = [p.detach() for p in target.parameters()]
        if all(torch.allclose(a, b) for a, b in zip(after, before_t, strict=True)):
            raise AssertionError(
                f"`{_name(fn)}` did not change the target parameters; update them in place "
                "(e.g. t.mul_(momentum).add_(o, alpha=1 - momentum)) rather than rebinding a name"
            )
        for name, a, t, o in zip(names, after, before_t, before_o, strict=True):
            expected = m * t + (1 - m) * o
            if not torch.allclose(a, expected, atol=1e-6):
                shown = ", ".join(f"{v:.4f}" for v in a.flatten()[:3].tolist())
                wanted = ", ".join(f"{v:.4f}" for v in expected.flatten()[:3].tolist())
                raise AssertionError(
                    f"wrong value on a known case: with momentum={m} `{_name(fn)}` "
                    f"{_ema_mistake(a, t, o, m, name)} (parameter '{name}' of the target: expected "
                    f"momentum * target + (1 - momentum) * online = [{wanted}, ...], got "
                    f"[{shown}, ...])"
                )
        if any(p.grad_fn is not None for p in target.parameters()):
            raise AssertionError(
                f"`{_name(fn)}` left an autograd graph in the target; use torch.no_grad()"
            )
    print(f"OK: `{_name(fn)}` moves the target towards the online network by EMA.")


def _ema_mistake(after: torch.Tensor, t: torch.Tensor, o: torch.Tensor, m: float, name: str) -> str:
    """Name what an EMA step did to one parameter when it is not the expected average."""
    if torch.allclose(after, t):
        return (
            f"did not update '{name}': put every parameter in the loop, e.g. "
            "zip(target.parameters(), online.parameters()), biases and batch norm included"
        )
    if torch.allclose(after, m * t + o, atol=1e-6):
        return "adds the whole online weight: multiply it by (1 - momentum)"
    if torch.allclose(after, t + (1 - m) * o, atol=1e-6):
        return "does not multiply the target by momentum before adding (1 - momentum) * online"
    apart = (t - o).abs() > 1e-3
    implied = (after - o)[apart] / (t - o)[apart]  # the momentum each entry was moved with
    if implied.numel() and torch.allclose(implied, implied.mean().expand_as(implied), atol=1e-4):
        used = float(implied.mean())
        if abs(used) < 1e-4:
            return (
                "copies the online weights into the target (a hard copy ignores the momentum): "
                "keep momentum * target and add (1 - momentum) * online"
            )
        if abs(used - (1 - m)) < 1e-4:
            return (
                f"swapped the weights: with momentum={m} the target keeps {m:.0%} of itself, "
                "momentum * target + (1 - momentum) * online"
            )
        return f"moves the target with momentum {used:.4g}, not with its momentum argument {m}"
    return "does not compute the moving average"


# --------------------------------------------------------------------------- training and evaluation

VALIDATION_METRICS = "validation_metrics(model, waves, labels, batch_size=64)"


class _RecordingClassifier(nn.Module):
    """A known classifier whose logits are ``2 * wave[:, :3]``, with dropout so that train mode
    changes them; it records the mode, the gradient switch and the clips of every call.

    The last sample of each wave holds the clip's index, so the clips a call saw are known.
    """

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.calls: list[tuple[bool, bool, list[int]]] = []

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        clips = wave[:, -1].detach().round().long().tolist()
        self.calls.append((self.training, torch.is_grad_enabled(), clips))
        return self.drop(wave[:, :3] * self.scale)  # (batch, 3) logits


def check_validation_metrics(fn: Callable) -> None:
    """Check ``fn(model, waves, labels, batch_size) -> (loss, accuracy)`` on a known classifier.

    Expected: the mean cross-entropy over all clips (not the mean of batch means), the
    fraction of correct argmax predictions, in eval mode and without gradients, in batches of
    ``batch_size`` that cover every clip. Order: a pair of numbers; eval mode; no gradients;
    every clip seen, in batches of at most ``batch_size``; the order of the pair; the loss;
    the accuracy.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    n, batch_size = 10, 4
    waves = _randn(50, n, 8)
    waves[:, -1] = torch.arange(n)  # clip ids, see _RecordingClassifier
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 0, 2])  # batch accuracies 0.5, 0.5, 1
    model = _RecordingClassifier().train()
    out = _call(fn, VALIDATION_METRICS, model, waves, labels, batch_size=batch_size)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a pair (loss, accuracy), got {out!r}"
        )
    loss, acc = _number(fn, out[0], "the loss"), _number(fn, out[1], "the accuracy")
    if not model.calls:
        raise AssertionError(f"`{_name(fn)}` never ran the model on the waves")
    if any(training for training, _, _ in model.calls):
        raise AssertionError(
            f"`{_name(fn)}` ran the model in training mode: call model.eval() first (dropout "
            "and batch norm behave differently in training mode)"
        )
    if any(grad for _, grad, _ in model.calls):
        raise AssertionError(
            f"`{_name(fn)}` runs the model with gradients on: wrap the loop in "
            "`with torch.no_grad():` so evaluation keeps no activations for a backward pass"
        )
    seen = {clip for _, _, clips in model.calls for clip in clips}
    missing = sorted(set(range(n)) - seen)
    if missing == list(range(n - n % batch_size, n)):
        raise AssertionError(
            f"`{_name(fn)}` dropped the last, smaller batch (clips {missing} of {n} with "
            f"batch_size={batch_size}): loop over range(0, len(waves), batch_size); the last "
            "slice waves[start:start + batch_size] is simply shorter"
        )
    if missing:
        raise AssertionError(
            f"`{_name(fn)}` ran the model on {n - len(missing)} of the {n} clips (never on "
            f"clips {missing}); every validation clip must be evaluated"
        )
    largest = max(len(clips) for _, _, clips in model.calls)
    if largest > batch_size:
        raise AssertionError(
            f"`{_name(fn)}` ran the model on {largest} clips at once with batch_size={batch_size}: "
            "split the waves into batches of batch_size so that a large set fits in memory"
        )
    logits = waves[:, :3] * 2.0
    expected_loss = float(F.cross_entropy(logits, labels))
    expected_acc = float((logits.argmax(1) == labels).float().mean())
    if _close(loss, expected_acc) and _close(acc, expected_loss):
        raise AssertionError(
            f"wrong order: `{_name(fn)}` returns (accuracy, loss); return (loss, accuracy)"
        )
    starts = range(0, n, batch_size)
    batches = [(logits[i : i + batch_size], labels[i : i + batch_size]) for i in starts]
    per_clip = F.cross_entropy(logits, labels, reduction="none")  # (clips,)
    _diagnose(
        fn,
        f"validation loss on {n} clips, batch_size={batch_size}",
        loss,
        expected_loss,
        [
            (
                np.mean([float(F.cross_entropy(x, y)) for x, y in batches]),
                "averages the batch means; the last batch is smaller, so sum the per-clip losses "
                "(reduction='sum') and divide by the number of clips",
            ),
            (
                F.cross_entropy(logits.softmax(1), labels),
                "applies softmax before F.cross_entropy, which applies log-softmax itself: "
                "pass the raw logits",
            ),
            (
                F.nll_loss(logits, labels),
                "uses F.nll_loss on raw logits; nll_loss expects log-probabilities: use "
                "F.cross_entropy(logits, labels) (or nll_loss(logits.log_softmax(1), labels))",
            ),
            (
                F.nll_loss(logits.softmax(1), labels),
                "uses F.nll_loss on probabilities; it expects log-probabilities: use "
                "F.cross_entropy on the logits",
            ),
            (per_clip.sum(), "returns the summed loss: divide it by the number of clips"),
            (
                per_clip.sum() / len(batches),
                "divides the summed loss by the number of batches: divide by the number of clips",
            ),
        ],
        "The loss is F.cross_entropy of the logits averaged over all clips: add "
        "F.cross_entropy(logits, y, reduction='sum') over the batches and divide by len(waves)",
    )
    correct = (logits.argmax(1) == labels).float()  # (clips,)
    _diagnose(
        fn,
        f"accuracy on {n} clips, batch_size={batch_size}",
        acc,
        expected_acc,
        [
            (100 * expected_acc, "returns a percentage: return a fraction in [0, 1]"),
            (
                correct.sum(),
                "returns the number of correct clips: divide it by the number of clips",
            ),
            (
                np.mean([float(correct[i : i + batch_size].mean()) for i in starts]),
                "averages the batch accuracies; the last batch is smaller: count the correct "
                "clips over all batches and divide by the number of clips",
            ),
        ],
        "The accuracy is the fraction of clips whose argmax logit is the label",
    )
    print(f"OK: `{_name(fn)}` computes the validation loss and accuracy.")


# The std of the l2-normalised projections counts as collapsed below this fraction of its
# healthy level 1/sqrt(dim), as for dlsaudio.health.CollapseMonitor.
STD_COLLAPSED = 0.1
# The effective rank counts as collapsed below RANK_COLLAPSED (all clips on about one line), or
# when it fell below a fraction of its value over the first quarter of the steps: RANK_DROP to
# fail a run, RANK_DROP_EXPECTED to accept a run meant to collapse. A check fails only on clear
# evidence either way. Measured on the bundled sample (smoke-sized models, about 100 steps):
# healthy runs kept 0.67 (BYOL) to 1.0 of their first-quarter rank, SimSiam without its
# stop-gradient 0.36; a seminar-sized SimSiam without it fell to rank 1.29 in 160 steps.
RANK_COLLAPSED = 2.0
RANK_DROP = 0.25
RANK_DROP_EXPECTED = 0.5


def _package_method(model: nn.Module, method: str) -> str | None:
    """The qualified name of ``method`` when the model runs dlsaudio's code for it, else None."""
    for klass in type(model).__mro__:
        if method in vars(klass):
            fn = vars(klass)[method]
            module = getattr(fn, "__module__", None) or klass.__module__
            if module == "dlsaudio" or module.startswith("dlsaudio."):
                qualname = getattr(fn, "__qualname__", f"{klass.__qualname__}.{method}")
                return f"{module}.{qualname}"
            return None
    return None


def _check_trained_model(history, model: nn.Module, methods: Sequence[str]) -> None:
    """The history must come from training ``model``, whose task methods are the student's."""
    record = getattr(history, "model", None) or {}
    mine = f"{type(model).__module__}.{type(model).__qualname__}"
    if not record:
        raise AssertionError(
            "this History does not record which model it trained (it was built by hand or by an "
            "older dlsaudio): train the model with fit(...) and pass the History it returns"
        )
    if record.get("class") != mine:
        raise AssertionError(
            f"the history comes from training a {record.get('class')}, but the model passed is a "
            f"{mine}: train your own model and keep the History that fit returned for it"
        )
    if record.get("id") != id(model):
        raise AssertionError(
            f"the history comes from training another {mine} object, not this one (was the model "
            "rebuilt after training?): train this model, or pass the one you trained"
        )
    hooks = list(methods)
    if "on_step_end" not in hooks and _package_method(model, "on_step_end") not in (
        None,
        "dlsaudio.ssl.methods.SSLMethod.on_step_end",
    ):
        hooks.append("on_step_end")  # a package hook that does work (BYOL's target update)
    for method in hooks:
        owner = _package_method(model, method)
        if owner is not None:
            empty = " (which does nothing)" if owner.endswith("SSLMethod.on_step_end") else ""
            raise AssertionError(
                f"`{method}` of your {type(model).__name__} comes from the package: it is "
                f"{owner}{empty}, so training ran the package's code, not yours. Define "
                f"`{method}` in your class in the notebook, calling the functions you wrote"
            )


def _collapse(history, min_steps: int, drop: float) -> tuple[str, str]:
    """Whether the history looks collapsed, naming the metric that shows it ('' when it does
    not), and the health numbers it was judged on."""
    rows = [r for r in history.steps if {"std", "std_healthy", "effective_rank"} <= set(r)]
    if not rows:
        if getattr(history, "collapsed", False):
            return (
                "the collapse monitor fired: the std of the normalised projections fell to ~0",
                "",
            )
        return "", "the history has no health numbers (std, effective_rank)"
    quarter = max(1, len(rows) // 4)
    std = sum(r["std"] for r in rows[-quarter:]) / quarter
    rank = sum(r["effective_rank"] for r in rows[-quarter:]) / quarter
    start = sum(r["effective_rank"] for r in rows[:quarter]) / quarter
    healthy = rows[-1]["std_healthy"]
    shown = (
        f"over the last quarter of the steps the std of the normalised projections is {std:.3g} "
        f"(healthy: 1/sqrt(dim) = {healthy:.3g}) and their effective rank {rank:.2f} (over the "
        f"first quarter {start:.2f})"
    )
    low_std = std < STD_COLLAPSED * healthy or getattr(history, "collapsed", False)
    low_rank = rank < RANK_COLLAPSED or (len(rows) >= min_steps and rank < drop * start)
    if low_std and low_rank:
        return f"shown by both the std and the effective rank: {shown}", shown
    if low_std:
        first = next((r for r in rows if r["std"] < STD_COLLAPSED * r["std_healthy"]), rows[-1])
        return (
            f"the std shows it: from step {first.get('step', '?')} it fell below "
            f"{STD_COLLAPSED} x 1/sqrt(dim); {shown}; every clip maps to nearly the same vector",
            shown,
        )
    if low_rank:
        return (
            f"the effective rank shows it, although the std looks healthy: {shown}; the clips "
            "spread along a few directions only (dimensional collapse)",
            shown,
        )
    return "", shown


def check_training_history(
    history,
    *,
    model: nn.Module | None = None,
    methods: Sequence[str] = ("training_step",),
    allow_collapse: bool = False,
    expect_collapse: bool = False,
    min_steps: int = 20,
) -> None:
    """Check a :class:`dlsaudio.ssl.train.History`: it has steps, finite losses, a falling loss,
    no collapse, and (with ``model``) that it comes from training the student's own model.

    Collapse is judged over the last quarter of the steps by two numbers of the projections
    (:mod:`dlsaudio.health`): the std of the l2-normalised projections (below 0.1 / sqrt(dim):
    every clip maps to one vector) and their effective rank (below 2, or once the run has
    ``min_steps`` steps below a quarter of its value over the first quarter: the clips lie along
    a few directions although the std can look healthy). A run meant to collapse
    (``expect_collapse``) passes with a rank fallen below half its first-quarter value.

    Args:
        history: what ``fit`` returned.
        model: the model the task trains. The history must come from training this very object
            (``fit`` records it), and ``methods`` of its class must be defined outside the
            ``dlsaudio`` package (in the notebook), not inherited unchanged from it. A package
            ``on_step_end`` that does work (BYOL's target update) is checked as well.
        methods: the methods the task asks the student to write.
        allow_collapse: do not fail when the embeddings collapsed.
        expect_collapse: fail when they did NOT collapse (a run meant to show collapse, e.g.
            SimSiam without its stop-gradient), once the run has ``min_steps`` steps.
        min_steps: the loss must fall (mean of the last quarter of the steps below the mean of
            the first quarter) once training ran at least this many steps; shorter runs
            (smoke mode) are too noisy to judge.

    Raises:
        AssertionError: with an actionable message when training went wrong.
    """
    steps = getattr(history, "steps", None)
    if steps is None:
        raise AssertionError(
            f"expected the History returned by fit(...), got {type(history).__name__}; "
            "assign it: history = fit(method, train_set, ...)"
        )
    if not steps:
        raise AssertionError("the history is empty: training did not run a single step")
    if model is not None:
        _check_trained_model(history, model, methods)
    loss = [row["loss"] for row in steps]
    if not all(math.isfinite(v) for v in loss):
        bad = next(i for i, v in enumerate(loss) if not math.isfinite(v))
        raise AssertionError(
            f"the loss became {loss[bad]} at step {bad + 1}; lower the learning rate or check the loss"
        )
    quarter = max(1, len(loss) // 4)
    first, last = sum(loss[:quarter]) / quarter, sum(loss[-quarter:]) / quarter
    long_enough = len(loss) >= min_steps
    drop = RANK_DROP_EXPECTED if expect_collapse else RANK_DROP
    collapse, numbers = _collapse(history, min_steps, drop)
    if expect_collapse:
        if long_enough and not collapse:
            raise AssertionError(
                f"this run was meant to collapse and did not: {numbers}. Check that nothing "
                "else stops the gradient on the path the model trains through "
                "(simsiam_loss(..., stop_gradient=False) must let it into z1 and z2, and the "
                "model's forward or training_step must not detach z), or train longer"
            )
    elif collapse and not allow_collapse:
        raise AssertionError(
            f"the embeddings collapsed ({collapse}). Check the stop-gradient, the predictor and "
            "the EMA update"
        )
    if long_enough and not last < first:
        raise AssertionError(
            f"the loss did not go down: {first:.4f} on average over the first quarter of the "
            f"steps, {last:.4f} over the last; train longer or change the learning rate"
        )
    verdict = (
        "" if long_enough else f" (fewer than {min_steps} steps: too short to judge the trend)"
    )
    state = " The embeddings collapsed, as expected." if expect_collapse and collapse else ""
    print(
        f"OK: {len(loss)} steps, mean loss {first:.4f} (first quarter) -> {last:.4f} "
        f"(last quarter){verdict}.{state}"
    )


def check_comparison(table, methods=("supervised", "contrastive", "byol", "simsiam")) -> None:
    """Check the comparison table: one row per method, probe accuracies at every k, kNN, health.

    Args:
        table: a pandas DataFrame indexed by method name.
        methods: the rows that must be present.

    Raises:
        AssertionError: with an actionable message when the table is incomplete.
    """
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
    if not hasattr(table, "loc") or not hasattr(table, "columns"):
        raise AssertionError(f"expected a pandas DataFrame, got {type(table).__name__}")
    missing_rows = [m for m in methods if m not in table.index]
    missing_cols = [c for c in columns if c not in table.columns]
    if missing_rows or missing_cols:
        raise AssertionError(
            f"the table is incomplete: missing rows {missing_rows} and columns {missing_cols}; "
            f"index it by method and include the columns {columns}"
        )
    values = table.loc[list(methods), columns].astype(float)
    if values.isna().any().any():
        raise AssertionError("the table has empty cells (NaN); fill every method and column")
    accuracy = values[[c for c in columns if c.startswith("probe") or c == "knn"]]
    if ((accuracy < 0) | (accuracy > 1)).any().any():
        raise AssertionError("accuracies must be fractions in [0, 1], not percentages")
    print(f"OK: the table compares {len(methods)} methods on {len(columns)} numbers.")
