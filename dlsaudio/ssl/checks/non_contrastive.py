"""Checks of the losses without negatives: BYOL, SimSiam, Barlow Twins and VICReg.

BYOL and SimSiam are checked for their value, the mistakes that give a wrong one, and where
the stop-gradient cuts the graph; Barlow Twins and VICReg for their value and its invariances.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dlsaudio.delegation import refuses_delegation
from dlsaudio.ssl import losses
from dlsaudio.ssl.checks import answers
from dlsaudio.ssl.checks.calls import _diagnose, _name, _randn, _scalar, _value
from dlsaudio.ssl.checks.loss_properties import (
    _gradients,
    _reference_gradients,
    _same_gradients,
    _scale_invariance,
)
from dlsaudio.student_calls import call_student

# --------------------------------------------------------------------------- BYOL and SimSiam

BYOL_LOSS = "byol_loss(p, z)"
SIMSIAM_LOSS = "simsiam_loss(p1, p2, z1, z2, stop_gradient=True)"


@refuses_delegation(*answers.BYOL_LOSS)
def check_byol_loss(fn: Callable) -> None:
    """Check ``fn(p, z)`` against ``mean(2 - 2 cos(p, stopgrad(z)))`` (BYOL, one direction).

    Order: a scalar; the same value when ``p`` or ``z`` is rescaled (normalisation); 0 when
    ``p == z``; the value on random inputs; the stop-gradient into ``z``.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    p, z = _randn(0, 8, 16), _randn(1, 8, 16)
    got = float(_scalar(fn, call_student(fn, (p, z), expected=BYOL_LOSS)))
    _scale_invariance(fn, BYOL_LOSS, (p, z), ("p", "z"), got)
    same = float(_scalar(fn, call_student(fn, (p, p.clone()), expected=BYOL_LOSS)))
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


@refuses_delegation(*answers.SIMSIAM_LOSS)
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
    got = float(_scalar(fn, call_student(fn, args, expected=SIMSIAM_LOSS)))
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
        float(_scalar(fn, call_student(fn, (2 * z2, z1, z1, z2), expected=SIMSIAM_LOSS))),
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


# --------------------------------------------------------------------------- Barlow Twins, VICReg

BARLOW_TWINS_LOSS = "barlow_twins_loss(z1, z2)"
VICREG_LOSS = "vicreg_loss(z1, z2)"


@refuses_delegation(*answers.BARLOW_TWINS_LOSS)
def check_barlow_twins_loss(fn: Callable) -> None:
    """Check ``fn(z1, z2)`` (default ``lambd = 5e-3``) against the Barlow Twins loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = _randn(30, 32, 8), _randn(31, 32, 8)
    out = _scalar(fn, call_student(fn, (z1, z2), expected=BARLOW_TWINS_LOSS))
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
        float(_scalar(fn, call_student(fn, (z1, 2 * z1 + 4), expected=BARLOW_TWINS_LOSS))),
        float(losses.barlow_twins_loss(z1, z1)),
        "Standardise along the batch (dim=0)",
    )
    print(f"OK: `{_name(fn)}` matches the Barlow Twins loss.")


@refuses_delegation(*answers.VICREG_LOSS)
def check_vicreg_loss(fn: Callable) -> None:
    """Check ``fn(z1, z2)`` (default coefficients 25, 25, 1) against the VICReg loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = 0.3 * _randn(40, 32, 8), 0.3 * _randn(41, 32, 8)
    got = float(_scalar(fn, call_student(fn, (z1, z2), expected=VICREG_LOSS)))
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
