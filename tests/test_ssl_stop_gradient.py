"""The stop-gradient of the homework's BYOL and SimSiam is the student's, and the training check
verifies it on the trained model's gradient path instead of waiting for a collapse."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ssl_fit import tiny_fit

from dlsaudio.ssl import BYOL, SimSiam, StepOutput, checks, fit
from dlsaudio.ssl.augment import Identity
from dlsaudio.ssl.encoders import MelEncoder

TINY = {"channels": (4, 8), "blocks": (1, 1)}


def byol_loss_right(p, z):
    p = F.normalize(p, dim=1)
    z = F.normalize(z.detach(), dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


def byol_loss_written_differently(p, z):
    # the same loss: cosine similarity with the target detached first
    target = z.detach()
    return (2 - 2 * F.cosine_similarity(p, target, dim=1)).mean()


def byol_loss_without_stop_gradient(p, z):
    p = F.normalize(p, dim=1)
    z = F.normalize(z, dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


def student_byol(loss):
    """The homework's BYOL: trainable target, the student's loss and training step."""

    class StudentBYOL(BYOL):
        def __init__(self, encoder, **sizes):
            super().__init__(encoder, stop_gradient=False, **sizes)

        def training_step(self, x1, x2, label=None):
            p1, p2, t1, t2, z1, z2 = self(x1, x2)
            return StepOutput(loss(p1, t2) + loss(p2, t1), z1, z2)

        def on_step_end(self, progress):
            self.momentum = self.tau_base
            for target, online in (
                (self.target_encoder, self.encoder),
                (self.target_projector, self.projector),
            ):
                with torch.no_grad():
                    for t, o in zip(target.parameters(), online.parameters(), strict=True):
                        t.mul_(self.momentum).add_(o, alpha=1 - self.momentum)

    torch.manual_seed(0)
    return StudentBYOL(MelEncoder(**TINY), dim=8, hidden_dim=16)


def simsiam_loss(p1, p2, z1, z2, stop_gradient=True, forget_detach=False):
    if stop_gradient and not forget_detach:
        z1, z2 = z1.detach(), z2.detach()
    return (
        -(F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean()) / 2
    )


def student_simsiam(forget_detach=False, use_stop_gradient=True):
    class StudentSimSiam(SimSiam):
        def __init__(self, encoder, **sizes):
            super().__init__(encoder, stop_gradient=False, **sizes)
            self.use_stop_gradient = use_stop_gradient

        def training_step(self, x1, x2, label=None):
            p1, p2, z1, z2 = self(x1, x2)
            loss = simsiam_loss(p1, p2, z1, z2, self.use_stop_gradient, forget_detach)
            return StepOutput(loss, z1, z2)

    torch.manual_seed(0)
    return StudentSimSiam(MelEncoder(**TINY), dim=8, hidden_dim=16)


def test_without_the_students_detach_the_target_is_trained_by_the_loss():
    """Training through the student's class differs: the optimizer moves the target too."""
    right, wrong = student_byol(byol_loss_right), student_byol(byol_loss_without_stop_gradient)
    tiny_fit(right), tiny_fit(wrong)
    assert all(p.grad is None for p in right.target_encoder.parameters())
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in wrong.target_encoder.parameters()
    )
    differs = any(
        not torch.equal(a, b)
        for a, b in zip(
            right.target_projector.parameters(), wrong.target_projector.parameters(), strict=True
        )
    )
    assert differs


def test_the_package_byol_keeps_its_built_in_stop_gradient():
    torch.manual_seed(0)
    model = BYOL(MelEncoder(**TINY), dim=8, hidden_dim=16)
    assert not any(p.requires_grad for p in model.target_encoder.parameters())
    x = torch.randn(4, 1600)
    _, _, t1, t2, _, _ = model(x, x)
    assert not t1.requires_grad and not t2.requires_grad


@pytest.mark.parametrize("loss", [byol_loss_right, byol_loss_written_differently])
def test_a_byol_with_its_stop_gradient_passes(loss, capsys):
    model = student_byol(loss)
    checks.check_training_history(
        tiny_fit(model), model=model, methods=("training_step", "on_step_end")
    )
    assert capsys.readouterr().out.startswith("OK: ")


def test_a_byol_without_stop_gradient_fails_before_any_collapse():
    model = student_byol(byol_loss_without_stop_gradient)
    history = tiny_fit(model)
    with pytest.raises(
        AssertionError, match="gradient into the target networks.*missing stop-gradient"
    ):
        checks.check_training_history(
            history, model=model, methods=("training_step", "on_step_end")
        )


def test_a_simsiam_with_its_stop_gradient_passes(capsys):
    model = student_simsiam()
    checks.check_training_history(tiny_fit(model), model=model)
    assert capsys.readouterr().out.startswith("OK: ")


def test_a_simsiam_that_forgot_the_detach_fails_although_it_has_not_collapsed():
    model = student_simsiam(forget_detach=True)
    history = tiny_fit(model)
    with pytest.raises(
        AssertionError, match="reached the encoder through the projections.*missing stop-gradient"
    ):
        checks.check_training_history(history, model=model)


def test_a_run_meant_to_collapse_is_not_asked_for_a_stop_gradient(capsys):
    model = student_simsiam(use_stop_gradient=False)
    # too short to judge a collapse (min_steps), and without a stop-gradient on purpose
    checks.check_training_history(tiny_fit(model), model=model, expect_collapse=True)
    assert capsys.readouterr().out.startswith("OK: ")


def test_the_check_leaves_the_trained_model_untouched():
    model = student_byol(byol_loss_right)
    history = tiny_fit(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    checks.check_training_history(history, model=model, methods=("training_step", "on_step_end"))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.target_encoder.parameters())


def test_a_run_on_a_ready_wave_cache_is_checked_too():
    """The homework trains on a WaveCache without passing clip_samples to fit."""
    from dlsaudio.data import WaveCache

    g = torch.Generator().manual_seed(0)
    cache = WaveCache(
        [{"wave": torch.randn(1600, generator=g), "speaker": "a"} for _ in range(16)], 1600
    )
    model = student_byol(byol_loss_without_stop_gradient)
    history = fit(
        model, cache, epochs=1, batch_size=8, progress=False, augment=Identity(), device="cpu"
    )
    assert history.model["clip_samples"] == 1600
    with pytest.raises(AssertionError, match="missing stop-gradient"):
        checks.check_training_history(
            history, model=model, methods=("training_step", "on_step_end")
        )
