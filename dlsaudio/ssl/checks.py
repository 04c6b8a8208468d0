"""Self-checks for the module-3 homework cells.

Each ``check_*`` calls the student's function on known inputs, compares it with the
reference in :mod:`dlsaudio.losses` (or a closed form), and raises ``AssertionError`` with a
message that says what to change (``NotImplementedError`` while the cell is still a stub, so an
unfinished notebook stops where a student expects it to):

- ``not implemented yet: fill the cell marked # YOUR CODE HERE ...``
- ``wrong shape: expected a scalar, got (...)``
- ``wrong value on a known case: ... expected ..., got ...``
- ``missing stop-gradient: gradient flows into z ...``

On success it prints one line starting with ``OK``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
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


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _call(fn: Callable, *args, **kwargs):
    """Call the student's function, turning NotImplementedError into an actionable message."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedError(
            f"not implemented yet: fill the cell marked # YOUR CODE HERE in `{_name(fn)}` "
            "(and run that cell) before this check"
        ) from None


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


def _close(got: float, expected: float) -> bool:
    return math.isclose(got, expected, rel_tol=RTOL, abs_tol=ATOL)


def _value(fn: Callable, case: str, got: float, expected: float, hint: str = "") -> None:
    if not _close(got, expected):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` on {case}: expected {expected:.6f}, "
            f"got {got:.6f}" + (f". {hint}" if hint else "")
        )


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _check_stop_gradient(fn: Callable, args: list[torch.Tensor], targets: dict[str, int]) -> None:
    """``targets`` maps a name to the position of an input that must get no gradient."""
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = _scalar(fn, _call(fn, *leaves))
    if not out.requires_grad:
        raise AssertionError(
            f"no gradient: the output of `{_name(fn)}` does not depend on the predictions p; "
            "do not detach p or wrap the loss in torch.no_grad()"
        )
    out.backward()
    for name, pos in targets.items():
        grad = leaves[pos].grad
        if grad is not None and torch.count_nonzero(grad) > 0:
            raise AssertionError(
                f"missing stop-gradient: gradient flows into {name} in `{_name(fn)}`; "
                f"use {name}.detach() so that only the predictions are trained"
            )
    for pos, leaf in enumerate(leaves):
        if pos not in targets.values() and (
            leaf.grad is None or torch.count_nonzero(leaf.grad) == 0
        ):
            raise AssertionError(
                f"no gradient reaches argument {pos + 1} of `{_name(fn)}`; only the targets "
                "z should be detached, not the predictions p"
            )


# --------------------------------------------------------------------------- losses


def check_byol_loss(fn: Callable) -> None:
    """Check ``fn(p, z)`` against ``mean(2 - 2 cos(p, stopgrad(z)))`` (BYOL, one direction).

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    p, z = _randn(0, 8, 16), _randn(1, 8, 16)
    out = _scalar(fn, _call(fn, p, z))
    _value(
        fn,
        "random p, z of shape (8, 16)",
        float(out),
        float(losses.byol_loss(p, z)),
        "The loss is 2 - 2 * cosine similarity per row, averaged over the batch",
    )
    _value(fn, "p == z", float(_call(fn, p, p.clone())), 0.0, "Identical directions give 0")
    _value(
        fn,
        "p = 3 * z (the loss must not depend on the norms)",
        float(_call(fn, 3 * z, z)),
        0.0,
        "Normalise p and z (F.normalize) before the dot product",
    )
    _check_stop_gradient(fn, [p, z], {"z": 1})
    print(f"OK: `{_name(fn)}` matches the BYOL loss and stops the gradient into the target z.")


def check_simsiam_loss(fn: Callable) -> None:
    """Check ``fn(p1, p2, z1, z2)`` against SimSiam's symmetric negative cosine loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    p1, p2, z1, z2 = (_randn(s, 8, 16) for s in (10, 11, 12, 13))
    out = _scalar(fn, _call(fn, p1, p2, z1, z2))
    expected = float(losses.simsiam_loss(p1, p2, z1, z2))
    swapped = float(losses.simsiam_loss(p1, p2, z2, z1))
    if _close(float(out), swapped) and not _close(float(out), expected):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` compares p1 with z1; each prediction "
            f"must predict the OTHER view: D(p1, z2) / 2 + D(p2, z1) / 2 (expected {expected:.6f}, "
            f"got {float(out):.6f})"
        )
    _value(
        fn,
        "random inputs of shape (8, 16)",
        float(out),
        expected,
        "The loss is -(cos(p1, z2) + cos(p2, z1)) / 2, each cosine averaged over the batch",
    )
    _value(
        fn,
        "p1 = 2 * z2, p2 = z1 (the minimum)",
        float(_call(fn, 2 * z2, z1, z1, z2)),
        -1.0,
        "The minimum is -1: use the cosine similarity, not the dot product",
    )
    _check_stop_gradient(fn, [p1, p2, z1, z2], {"z1": 2, "z2": 3})
    print(f"OK: `{_name(fn)}` matches the SimSiam loss and stops the gradient into z1 and z2.")


def check_info_nce(fn: Callable, tau: float = 0.5) -> None:
    """Check ``fn(z1, z2, tau)`` against NT-Xent with a per-row denominator.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = _randn(20, 6, 8), _randn(21, 6, 8)
    out = _scalar(fn, _call(fn, z1, z2, tau))
    got = float(out)
    expected = float(losses.info_nce(z1, z2, tau))
    if _close(got, float(losses.info_nce_shared_denominator(z1, z2, tau))):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` divides by the sum over the WHOLE 2N x 2N "
            f"matrix; the denominator of row i sums exp(s_ik / tau) over k != i in that row only "
            f"(expected {expected:.6f}, got {got:.6f})"
        )
    n = z1.shape[0]
    ones = torch.ones(n, 8)
    collinear = float(_call(fn, ones, 2 * ones, tau))
    if _close(collinear, math.log(2 * n)):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` keeps k == i in the denominator; "
            "mask the diagonal of the similarity matrix (fill it with -inf)"
        )
    _value(
        fn,
        f"collinear embeddings, N={n}",
        collinear,
        math.log(2 * n - 1),
        "With all similarities equal, NT-Xent is log(2N - 1)",
    )
    _value(
        fn,
        f"random z1, z2 of shape (6, 8), tau={tau}",
        got,
        expected,
        "Use cosine similarity divided by tau, and average over all 2N anchors",
    )
    _value(
        fn,
        "inputs scaled by 3",
        float(_call(fn, 3 * z1, 3 * z2, tau)),
        expected,
        "Normalise z (F.normalize) so that the similarity is a cosine",
    )
    print(f"OK: `{_name(fn)}` matches NT-Xent with a per-row denominator.")


def check_barlow_twins_loss(fn: Callable) -> None:
    """Check ``fn(z1, z2)`` (default ``lambd = 5e-3``) against the Barlow Twins loss.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    z1, z2 = _randn(30, 32, 8), _randn(31, 32, 8)
    out = _scalar(fn, _call(fn, z1, z2))
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
        float(_call(fn, z1, 2 * z1 + 4)),
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
    got = float(_scalar(fn, _call(fn, z1, z2)))
    expected = float(losses.vicreg_loss(z1, z2))
    terms = {
        "invariance": 25 * float(losses.invariance_term(z1, z2)),
        "variance": 25 * float(losses.variance_term(z1) + losses.variance_term(z2)) / 2,
        "covariance": float(losses.covariance_term(z1) + losses.covariance_term(z2)),
    }
    for name, value in terms.items():
        if _close(got, expected - value):
            raise AssertionError(
                f"wrong value on a known case: `{_name(fn)}` is missing the {name} term "
                f"(expected {expected:.6f}, got {got:.6f})"
            )
    _value(
        fn,
        "random z1, z2 of shape (32, 8)",
        got,
        expected,
        "25 * mse + 25 * mean(relu(1 - std)) averaged over both branches + "
        "sum of squared off-diagonal covariances / dim for each branch",
    )
    print(f"OK: `{_name(fn)}` matches the VICReg loss.")


# --------------------------------------------------------------------------- BYOL target


def check_byol_momentum(fn: Callable) -> None:
    """Check ``fn(progress, tau_base)``: BYOL's cosine schedule from ``tau_base`` to 1.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    for progress, tau_base in ((0.0, 0.996), (1.0, 0.996), (0.5, 0.99), (0.25, 0.9)):
        out = _call(fn, progress, tau_base)
        if isinstance(out, torch.Tensor):
            out = float(out)
        if not isinstance(out, (int, float)):
            raise AssertionError(
                f"wrong type: `{_name(fn)}` must return a float, got {type(out).__name__}"
            )
        expected = 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2
        _value(
            fn,
            f"progress={progress}, tau_base={tau_base}",
            float(out),
            expected,
            "tau = 1 - (1 - tau_base) * (cos(pi * progress) + 1) / 2: tau_base at the start, 1 at the end",
        )
    print(f"OK: `{_name(fn)}` follows BYOL's cosine momentum schedule.")


def check_ema_update(fn: Callable) -> None:
    """Check ``fn(target, online, momentum)`` updates ``target`` in place by EMA.

    Expected: ``target <- momentum * target + (1 - momentum) * online`` for every parameter,
    without gradient, leaving ``online`` unchanged.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    target = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).requires_grad_(False)
    before_t = [p.detach().clone() for p in target.parameters()]
    before_o = [p.detach().clone() for p in online.parameters()]
    m = 0.9
    try:
        _call(fn, target, online, m)
    except RuntimeError as err:
        if "in-place" in str(err):
            raise AssertionError(
                f"`{_name(fn)}` updates parameters in place inside autograd; wrap the update "
                "in `with torch.no_grad():` (or decorate the function with @torch.no_grad())"
            ) from None
        raise
    for o, o0 in zip(online.parameters(), before_o, strict=True):
        if not torch.equal(o.detach(), o0):
            raise AssertionError(f"`{_name(fn)}` changed the ONLINE network; only the target moves")
    after = [p.detach() for p in target.parameters()]
    expected = [m * t + (1 - m) * o for t, o in zip(before_t, before_o, strict=True)]
    swapped = [(1 - m) * t + m * o for t, o in zip(before_t, before_o, strict=True)]
    if all(torch.allclose(a, b) for a, b in zip(after, before_t, strict=True)):
        raise AssertionError(
            f"`{_name(fn)}` did not change the target parameters; update them in place "
            "(e.g. t.mul_(momentum).add_(o, alpha=1 - momentum)) rather than rebinding a name"
        )
    if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(after, swapped, strict=True)):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` swapped the weights; with momentum=0.9 "
            "the target keeps 90% of itself: momentum * target + (1 - momentum) * online"
        )
    for i, (a, e) in enumerate(zip(after, expected, strict=True)):
        if not torch.allclose(a, e, atol=1e-6):
            raise AssertionError(
                f"wrong value on a known case: parameter {i} of the target after `{_name(fn)}` "
                f"with momentum={m}: expected {e.flatten()[:3].tolist()}..., got "
                f"{a.flatten()[:3].tolist()}..."
            )
    if any(p.grad_fn is not None for p in target.parameters()):
        raise AssertionError(
            f"`{_name(fn)}` left an autograd graph in the target; use torch.no_grad()"
        )
    print(f"OK: `{_name(fn)}` moves the target towards the online network by EMA.")


# --------------------------------------------------------------------------- training and evaluation


class _NoisyClassifier(nn.Module):
    """A known classifier with dropout: its outputs differ between train and eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.called_with_grad = False

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        self.called_with_grad |= torch.is_grad_enabled()
        return self.drop(wave[:, :3] * self.scale)  # (batch, 3) logits


def check_validation_metrics(fn: Callable) -> None:
    """Check ``fn(model, waves, labels, batch_size) -> (loss, accuracy)`` on a known classifier.

    Expected: the mean cross-entropy over all clips (not the mean of batch means), the
    fraction of correct argmax predictions, in eval mode and without gradients.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    waves = _randn(50, 10, 8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2])
    model = _NoisyClassifier().train()
    logits = waves[:, :3] * 2.0
    expected_loss = float(torch.nn.functional.cross_entropy(logits, labels))
    expected_acc = float((logits.argmax(1) == labels).float().mean())
    batch_means = [
        float(torch.nn.functional.cross_entropy(logits[i : i + 4], labels[i : i + 4]))
        for i in range(0, 10, 4)
    ]
    out = _call(fn, model, waves, labels, 4)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a pair (loss, accuracy), got {out!r}"
        )
    loss, acc = (float(v) for v in out)
    if _close(loss, sum(batch_means) / len(batch_means)) and not _close(loss, expected_loss):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` averages the batch means; the last batch "
            "is smaller, so sum the per-clip losses (reduction='sum') and divide by the number "
            f"of clips (expected {expected_loss:.6f}, got {loss:.6f})"
        )
    if not _close(loss, expected_loss):
        raise AssertionError(
            f"wrong value on a known case: validation loss from `{_name(fn)}`: expected "
            f"{expected_loss:.6f}, got {loss:.6f}. Did you call model.eval()? Dropout and "
            "batch norm behave differently in training mode"
        )
    if not _close(acc, expected_acc):
        hint = (
            " (return a fraction in [0, 1], not a percentage)"
            if _close(acc, 100 * expected_acc)
            else ""
        )
        raise AssertionError(
            f"wrong value on a known case: accuracy from `{_name(fn)}`: expected {expected_acc:.4f}, "
            f"got {acc:.4f}{hint}"
        )
    if model.called_with_grad:
        raise AssertionError(
            f"`{_name(fn)}` runs the model with gradients on: wrap the loop in "
            "`with torch.no_grad():` so evaluation keeps no activations for a backward pass"
        )
    print(f"OK: `{_name(fn)}` computes the validation loss and accuracy.")


def check_training_history(history, *, allow_collapse: bool = False, min_steps: int = 20) -> None:
    """Check a :class:`dlsaudio.ssl.train.History`: it has steps, finite losses, a falling loss.

    Args:
        history: what ``fit`` returned.
        allow_collapse: do not fail when the collapse monitor fired.
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
    loss = [row["loss"] for row in steps]
    if not all(math.isfinite(v) for v in loss):
        bad = next(i for i, v in enumerate(loss) if not math.isfinite(v))
        raise AssertionError(
            f"the loss became {loss[bad]} at step {bad + 1}; lower the learning rate or check the loss"
        )
    quarter = max(1, len(loss) // 4)
    first, last = sum(loss[:quarter]) / quarter, sum(loss[-quarter:]) / quarter
    if len(loss) >= min_steps and not last < first:
        raise AssertionError(
            f"the loss did not go down: {first:.4f} on average over the first quarter of the "
            f"steps, {last:.4f} over the last; train longer or change the learning rate"
        )
    if getattr(history, "collapsed", False) and not allow_collapse:
        raise AssertionError(
            "the embeddings collapsed (the std of the normalised projections fell to ~0); "
            "check the stop-gradient, the predictor and the EMA update"
        )
    verdict = (
        ""
        if len(loss) >= min_steps
        else f" (fewer than {min_steps} steps: too short to judge the trend)"
    )
    print(
        f"OK: {len(loss)} steps, mean loss {first:.4f} (first quarter) -> {last:.4f} (last quarter){verdict}."
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
