"""The check of a training run: its history, whether the embeddings collapsed, and whether it
trained the student's own model rather than the package's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from dlsaudio.delegation import refusing
from dlsaudio.ssl.checks import answers

# The std of the l2-normalised projections counts as collapsed below this fraction of its
# healthy level 1/sqrt(dim), as for dlsaudio.ssl.health.CollapseMonitor.
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


class _DetachedInput(nn.Module):
    """A predictor that sees a detached copy of ``z``: the gradient then reaches the encoder
    only through the other term of the loss, the one the stop-gradient must cut."""

    def __init__(self, predictor: nn.Module) -> None:
        super().__init__()
        self.inner = predictor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z.detach())


def _grad_norm(modules: Sequence[nn.Module]) -> float:
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    return float(sum(g.abs().sum() for g in grads)) if grads else 0.0


def _stop_gradient_leak(model: nn.Module, clip_samples: int | None) -> str:
    """Run one training step of a copy of ``model`` and say where a gradient crossed the
    stop-gradient ('' when none did, or when the model has no stop-gradient to check).

    BYOL-like models (a ``target_encoder``): no gradient may reach the target networks.
    SimSiam-like models (a ``predictor`` and a stop-gradient switched on): with the predictor fed
    a detached ``z``, the encoder may get no gradient, since the other path is the one cut.
    """
    has_target = hasattr(model, "target_encoder") and hasattr(model, "target_projector")
    siamese = (
        not has_target
        and isinstance(getattr(model, "predictor", None), nn.Module)
        and getattr(model, "use_stop_gradient", getattr(model, "stop_gradient", False))
    )
    if clip_samples is None or not (has_target or siamese):
        return ""
    probe = copy.deepcopy(model).train()
    x1, x2 = _views(probe, clip_samples)
    if has_target:
        watched = [probe.target_encoder, probe.target_projector]
        for module in watched:
            module.requires_grad_(True)
    else:
        probe.predictor = _DetachedInput(probe.predictor)
        watched = [probe.encoder, probe.projector]
    probe.zero_grad(set_to_none=True)
    out = probe.training_step(x1, x2)
    loss = out[0] if isinstance(out, tuple) else out
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return ""
    loss.backward()
    leak = _grad_norm(watched)
    if leak == 0.0:
        return ""
    if has_target:
        return (
            f"in one training step of your {type(model).__name__}, the loss sent a gradient into "
            f"the target networks (sum of |grad| {leak:.3g}): missing stop-gradient. The target "
            "must not be trained by the loss; stop the gradient at the target projections in "
            "byol_loss (z.detach())"
        )
    return (
        f"in one training step of your {type(model).__name__}, a gradient reached the encoder "
        f"through the projections the predictions are compared with (sum of |grad| {leak:.3g}): "
        "missing stop-gradient. Detach z1 and z2 in simsiam_loss when stop_gradient is True"
    )


def _views(model: nn.Module, clip_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two seeded batches of random waves ``(4, clip_samples)`` on the model's device."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(4, clip_samples, generator=generator)  # (batch, time)
    x2 = torch.randn(4, clip_samples, generator=generator)
    return x1.to(device), x2.to(device)


def _refuse_package_training(model: nn.Module, clip_samples: int | None, methods) -> None:
    """Run the student's ``methods`` once on a copy of ``model``; fail if they reach the
    package's own training step, hook or task functions (``super().training_step(...)``).
    Methods other than ``on_step_end`` (``training_step``, or data2vec's ``mask`` and
    ``targets``, which the package's training step calls) run through one training step."""
    methods = [m for m in methods if callable(getattr(type(model), m, None))]
    if clip_samples is None or not methods:
        return
    probe = copy.deepcopy(model).train()
    mine = [getattr(type(probe), m) for m in methods]
    what = " and ".join(f"{type(model).__name__}.{m}" for m in methods)
    x1, x2 = _views(probe, clip_samples)
    with refusing(what, mine, answers.TRAINING):
        try:
            if any(m != "on_step_end" for m in methods):
                probe.training_step(x1, x2)
            if "on_step_end" in methods:
                probe.on_step_end(0.5)
        except Exception:  # noqa: BLE001 - the history check reports what went wrong
            pass


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
    (:mod:`dlsaudio.ssl.health`): the std of the l2-normalised projections (below 0.1 / sqrt(dim):
    every clip maps to one vector) and their effective rank (below 2, or once the run has
    ``min_steps`` steps below a quarter of its value over the first quarter: the clips lie along
    a few directions although the std can look healthy). A run meant to collapse
    (``expect_collapse``) passes with a rank fallen below half its first-quarter value.

    Args:
        history: what ``fit`` returned.
        model: the model the task trains. The history must come from training this very object
            (``fit`` records it), and ``methods`` of its class must be defined outside the
            ``dlsaudio`` package (in the notebook), not inherited unchanged from it. A package
            ``on_step_end`` that does work (BYOL's target update) is checked as well. Unless the
            run is meant to collapse, one training step of a copy of the model checks its
            stop-gradient directly: no gradient may reach BYOL's target networks, nor SimSiam's
            encoder through the projections its predictions are compared with.
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
        clip_samples = (getattr(history, "model", None) or {}).get("clip_samples")
        _refuse_package_training(model, clip_samples, methods)
        if not expect_collapse:
            leak = _stop_gradient_leak(model, clip_samples)
            if leak:
                raise AssertionError(leak)
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
