"""Checks of BYOL's target network: the cosine momentum schedule and the EMA update."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dlsaudio.delegation import refuses_delegation
from dlsaudio.ssl.checks import answers
from dlsaudio.ssl.checks.calls import BUFFER_CAST_HINT, _diagnose, _name, _number, _value
from dlsaudio.student_calls import call_student

BYOL_MOMENTUM = "byol_momentum(progress, tau_base=0.996)"
EMA_UPDATE = "ema_update(target, online, momentum)"


def _cosine_momentum(progress: float, tau_base: float) -> float:
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2


@refuses_delegation(*answers.BYOL_MOMENTUM)
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
        return _number(
            fn, call_student(fn, (progress, *tau_base), expected=BYOL_MOMENTUM), "the momentum"
        )

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


@refuses_delegation(*answers.EMA_UPDATE)
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
        call_student(fn, (target, online, m), expected=EMA_UPDATE, hints=[BUFFER_CAST_HINT])
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
