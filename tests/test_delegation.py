"""A self-check fails an answer that hands its task to the package's own solution, however it
gets there, and passes right answers, including ones that call other package helpers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ssl_fit import tiny_fit

import dlsaudio
import dlsaudio.ssl.losses
from dlsaudio.asr import checks as asr_checks
from dlsaudio.delegation import DelegationError, refusing
from dlsaudio.ssl import checks
from dlsaudio.ssl import losses as L

# --------------------------------------------------------------------------- module 3 delegations


def info_nce_direct(z1, z2, tau):
    return dlsaudio.ssl.losses.info_nce(z1, z2, tau)


def info_nce_alias(z1, z2, tau):
    from dlsaudio.ssl.losses import info_nce as f

    return f(z1, z2, tau)


def _helper(z1, z2, tau):
    return L.info_nce(z1, z2, tau)


def info_nce_two_deep(z1, z2, tau):
    return _helper(z1, z2, tau) * 1.0


info_nce_assigned = dlsaudio.ssl.losses.info_nce  # no def at all: the package's function itself


def barlow_twins_private_helper(z1, z2, lambd=5e-3):
    c = L._correlation(z1, z2)
    return (1 - c.diagonal()).pow(2).sum() + lambd * L.off_diagonal(c).pow(2).sum()


def byol_loss_direct(p, z):
    return L.byol_loss(p, z)


def simsiam_loss_direct(p1, p2, z1, z2, stop_gradient=True):
    return L.simsiam_loss(p1, p2, z1, z2, stop_gradient=stop_gradient)


def byol_momentum_direct(progress, tau_base=0.996):
    from dlsaudio.ssl.non_contrastive import byol_momentum

    return byol_momentum(progress, tau_base)


def ema_update_direct(target, online, momentum):
    from dlsaudio.ssl import ema_update

    ema_update(target, online, momentum)


@pytest.mark.parametrize(
    ("check", "answer", "package"),
    [
        (checks.check_info_nce, info_nce_direct, "dlsaudio.ssl.losses.info_nce"),
        (checks.check_info_nce, info_nce_alias, "dlsaudio.ssl.losses.info_nce"),
        (checks.check_info_nce, info_nce_two_deep, "dlsaudio.ssl.losses.info_nce"),
        (checks.check_info_nce, info_nce_assigned, "dlsaudio.ssl.losses.info_nce"),
        (checks.check_byol_loss, byol_loss_direct, "dlsaudio.ssl.losses.byol_loss"),
        (checks.check_simsiam_loss, simsiam_loss_direct, "dlsaudio.ssl.losses.simsiam_loss"),
        (
            checks.check_byol_momentum,
            byol_momentum_direct,
            "dlsaudio.ssl.non_contrastive.byol_momentum",
        ),
        (checks.check_ema_update, ema_update_direct, "dlsaudio.ssl.non_contrastive.ema_update"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v))[:30],
)
def test_a_delegated_module3_answer_fails_with_its_own_message(check, answer, package):
    with pytest.raises(
        DelegationError, match=rf"hands its task to the package: it calls {package}"
    ):
        check(answer)


def test_a_private_helper_that_computes_the_answer_is_a_delegation_too():
    with pytest.raises(DelegationError, match="dlsaudio.ssl.losses._correlation"):
        checks.check_barlow_twins_loss(barlow_twins_private_helper)


def info_nce_with_package_helpers(z1, z2, tau):
    """Right, written by hand, calling a package helper that is not the answer."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / tau
    off = L.off_diagonal(sim)  # the package's off-diagonal helper: (2N, 2N - 1)
    positives = torch.cat([sim.diagonal(n), sim.diagonal(-n)])
    return (torch.logsumexp(off.reshape(2 * n, 2 * n - 1), dim=1) - positives).mean()


def test_a_right_answer_calling_other_package_helpers_passes(capsys):
    checks.check_info_nce(info_nce_with_package_helpers)
    assert capsys.readouterr().out.startswith("OK: ")


def test_the_checks_own_reference_does_not_count_against_the_student(capsys):
    # the check calls its own InfoNCE reference outside the student's function
    def info_nce(z1, z2, tau):
        n = z1.shape[0]
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
        return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

    checks.check_info_nce(info_nce)
    assert capsys.readouterr().out.startswith("OK: ")


# --------------------------------------------------------------------------- training steps


def _encoder():
    from dlsaudio.ssl.encoders import MelEncoder

    torch.manual_seed(0)
    return MelEncoder(channels=(4, 8), blocks=(1, 1))


def test_a_training_step_through_super_fails():
    from dlsaudio.ssl import BYOL

    class HomeworkBYOL(BYOL):
        def training_step(self, x1, x2, label=None):
            return super().training_step(x1, x2)

        def on_step_end(self, progress):
            super().on_step_end(progress)

    model = HomeworkBYOL(_encoder(), dim=8, hidden_dim=16)
    with pytest.raises(
        DelegationError,
        match=r"HomeworkBYOL.training_step .* calls dlsaudio.ssl.non_contrastive.BYOL.training_step",
    ):
        checks.check_training_history(
            tiny_fit(model), model=model, methods=("training_step", "on_step_end")
        )


def test_a_training_step_with_the_package_loss_fails():
    from dlsaudio.ssl import SimCLR, StepOutput

    class HomeworkContrastive(SimCLR):
        def training_step(self, x1, x2, label=None):
            z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
            return StepOutput(L.info_nce(z1, z2, self.tau), z1, z2)

    model = HomeworkContrastive(_encoder(), dim=8, hidden_dim=16)
    with pytest.raises(DelegationError, match="calls dlsaudio.ssl.losses.info_nce"):
        checks.check_training_history(tiny_fit(model), model=model)


def test_a_training_step_using_the_package_forward_passes(capsys):
    """self(x1, x2) and the heads are the package's parts, which the task gives the student."""
    from dlsaudio.ssl import BYOL, StepOutput

    def byol_loss(p, z):
        return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()

    class HomeworkBYOL(BYOL):
        def training_step(self, x1, x2, label=None):
            p1, p2, t1, t2, z1, z2 = self(x1, x2)
            return StepOutput(byol_loss(p1, t2) + byol_loss(p2, t1), z1, z2)

        def on_step_end(self, progress):
            with torch.no_grad():
                for target, online in (
                    (self.target_encoder, self.encoder),
                    (self.target_projector, self.projector),
                ):
                    for t, o in zip(target.parameters(), online.parameters(), strict=True):
                        t.lerp_(o, 1 - self.tau_base)

    model = HomeworkBYOL(_encoder(), dim=8, hidden_dim=16)
    checks.check_training_history(
        tiny_fit(model), model=model, methods=("training_step", "on_step_end")
    )
    assert capsys.readouterr().out.startswith("OK: ")


# --------------------------------------------------------------------------- module 11


def source_probabilities_direct(counts, weights=None, alpha=None):
    from dlsaudio.asr.sampling import source_probabilities

    return source_probabilities(counts, weights=weights, alpha=alpha)


def test_a_delegated_source_probabilities_fails():
    with pytest.raises(DelegationError, match="calls dlsaudio.asr.sampling.source_probabilities"):
        asr_checks.check_source_probabilities(source_probabilities_direct)


def accumulate_direct(model, window, scaler, logits_fn):
    from dlsaudio.asr.train import accumulate_gradients

    return accumulate_gradients(model, window, logits_fn=logits_fn, scale_loss=scaler.scale)


def test_a_delegated_accumulation_fails():
    with pytest.raises(
        DelegationError, match="calls dlsaudio.asr.accumulation.accumulate_gradients"
    ):
        asr_checks.check_accumulation(accumulate_direct)


# --------------------------------------------------------------------------- the tracer itself


def test_refusing_restores_the_previous_profiler_and_names_the_first_call():
    import sys

    seen = []

    def outer(frame, event, arg):
        seen.append(event)

    sys.setprofile(outer)
    try:
        with pytest.raises(DelegationError, match="`f` hands its task"):

            def f():
                return L.byol_loss(torch.ones(2, 3), torch.ones(2, 3))

            with refusing("f", [f], ("dlsaudio.ssl.losses:byol_loss",)):
                f()
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(None)
