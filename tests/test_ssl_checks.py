"""Homework self-checks: the reference passes, typical mistakes fail with the right message."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlsaudio import losses
from dlsaudio.ssl import checks


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def ema_reference(target, online, momentum):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(momentum).add_(o, alpha=1 - momentum)


def momentum_reference(progress, tau_base):
    return 1 - (1 - tau_base) * (math.cos(math.pi * progress) + 1) / 2


REFERENCES = {
    checks.check_byol_loss: losses.byol_loss,
    checks.check_simsiam_loss: losses.simsiam_loss,
    checks.check_info_nce: losses.info_nce,
    checks.check_barlow_twins_loss: losses.barlow_twins_loss,
    checks.check_vicreg_loss: losses.vicreg_loss,
    checks.check_ema_update: ema_reference,
    checks.check_byol_momentum: momentum_reference,
}


@pytest.mark.parametrize("check", list(REFERENCES), ids=lambda c: c.__name__)
def test_reference_passes(check, capsys) -> None:
    check(REFERENCES[check])
    assert capsys.readouterr().out.startswith("OK: ")


@pytest.mark.parametrize("check", list(REFERENCES), ids=lambda c: c.__name__)
def test_not_implemented(check) -> None:
    with pytest.raises(
        NotImplementedError, match="not implemented yet: fill the cell marked # YOUR CODE HERE"
    ):
        check(not_implemented)


LOSS_CHECKS = [
    checks.check_byol_loss,
    checks.check_simsiam_loss,
    checks.check_info_nce,
    checks.check_barlow_twins_loss,
    checks.check_vicreg_loss,
]


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda c: c.__name__)
def test_wrong_shape(check) -> None:
    def per_example(*args):
        return torch.zeros(args[0].shape[0], requires_grad=True)

    with pytest.raises(AssertionError, match=r"wrong shape: expected a scalar, got \((8|6|32),\)"):
        check(per_example)


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda c: c.__name__)
def test_wrong_value_and_wrong_type(check) -> None:
    def zero(*args):
        return (args[0] * 0).sum() + 0.123

    with pytest.raises(AssertionError, match="wrong value on a known case"):
        check(zero)
    with pytest.raises(AssertionError, match="must return a scalar torch.Tensor"):
        check(lambda *args: 0.5)


def test_byol_missing_stop_gradient() -> None:
    def no_detach(p, z):
        return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()

    with pytest.raises(
        AssertionError, match=r"missing stop-gradient: gradient flows into z .* z.detach\(\)"
    ):
        checks.check_byol_loss(no_detach)


def test_byol_unnormalised() -> None:
    def dot(p, z):
        return (2 - 2 * (p * z.detach()).sum(1)).mean()

    with pytest.raises(AssertionError, match="wrong value on a known case"):
        checks.check_byol_loss(dot)


def test_byol_detaching_everything() -> None:
    def all_detached(p, z):
        return losses.byol_loss(p.detach(), z)

    with pytest.raises(AssertionError, match="no gradient"):
        checks.check_byol_loss(all_detached)


def test_simsiam_missing_stop_gradient() -> None:
    def no_detach(p1, p2, z1, z2):
        c = F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean()
        return -c / 2

    with pytest.raises(AssertionError, match="missing stop-gradient: gradient flows into z1"):
        checks.check_simsiam_loss(no_detach)


def test_simsiam_same_view() -> None:
    def same_view(p1, p2, z1, z2):
        return losses.simsiam_loss(p1, p2, z2, z1)

    with pytest.raises(AssertionError, match="predict the OTHER view"):
        checks.check_simsiam_loss(same_view)


def test_info_nce_whole_matrix_and_diagonal_bugs() -> None:
    with pytest.raises(AssertionError, match="WHOLE 2N x 2N matrix"):
        checks.check_info_nce(losses.info_nce_shared_denominator)

    def keeps_diagonal(z1, z2, tau):
        n = z1.shape[0]
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        logits = z @ z.T / tau
        targets = torch.cat([torch.arange(n) + n, torch.arange(n)])
        return F.cross_entropy(logits, targets)

    with pytest.raises(AssertionError, match="keeps k == i in the denominator"):
        checks.check_info_nce(keeps_diagonal)

    def dot_product(z1, z2, tau):
        n = z1.shape[0]
        z = torch.cat([z1, z2])
        logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, torch.cat([torch.arange(n) + n, torch.arange(n)]))

    with pytest.raises(AssertionError, match="wrong value on a known case"):
        checks.check_info_nce(dot_product)


def test_vicreg_missing_term() -> None:
    def no_covariance(z1, z2):
        return (
            25 * losses.invariance_term(z1, z2)
            + 25 * (losses.variance_term(z1) + losses.variance_term(z2)) / 2
        )

    with pytest.raises(AssertionError, match="missing the covariance term"):
        checks.check_vicreg_loss(no_covariance)


def test_barlow_not_standardised() -> None:
    def raw(z1, z2):
        c = z1.T @ z2 / z1.shape[0]
        return (1 - c.diagonal()).pow(2).sum() + 5e-3 * losses.off_diagonal(c).pow(2).sum()

    with pytest.raises(AssertionError, match="Standardise each dimension along the batch"):
        checks.check_barlow_twins_loss(raw)


def test_ema_mistakes() -> None:
    def swapped(target, online, m):
        ema_reference(target, online, 1 - m)

    with pytest.raises(AssertionError, match="swapped the weights"):
        checks.check_ema_update(swapped)

    def rebinding(target, online, m):
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t = m * t + (1 - m) * o  # noqa: F841, B007 - the mistake under test

    with pytest.raises(AssertionError, match="did not change the target parameters"):
        checks.check_ema_update(rebinding)

    def moves_online(target, online, m):
        ema_reference(online, target, m)

    with pytest.raises(AssertionError, match="changed the ONLINE network"):
        checks.check_ema_update(moves_online)

    def wrong_momentum(target, online, m):
        ema_reference(target, online, 0.5)

    with pytest.raises(
        AssertionError, match=r"wrong value on a known case: parameter 0 .* momentum=0.9"
    ):
        checks.check_ema_update(wrong_momentum)


def test_momentum_mistakes() -> None:
    with pytest.raises(AssertionError, match=r"tau_base at the start, 1 at the end"):
        checks.check_byol_momentum(lambda progress, tau_base: tau_base)
    with pytest.raises(AssertionError, match="must return a float"):
        checks.check_byol_momentum(lambda progress, tau_base: "0.99")


# --------------------------------------------------------------------------- training and evaluation


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


def test_validation_metrics(capsys) -> None:
    checks.check_validation_metrics(validation_reference)
    assert capsys.readouterr().out.startswith("OK: ")
    with pytest.raises(NotImplementedError, match="not implemented yet"):
        checks.check_validation_metrics(not_implemented)

    def train_mode(model, waves, labels, batch_size=64):
        model.train()
        with torch.no_grad():
            logits = model(waves)
        return float(F.cross_entropy(logits, labels)), float(
            (logits.argmax(1) == labels).float().mean()
        )

    with pytest.raises(AssertionError, match=r"Did you call model.eval\(\)"):
        checks.check_validation_metrics(train_mode)

    def mean_of_means(model, waves, labels, batch_size=64):
        model.eval()
        with torch.no_grad():
            means = [
                float(F.cross_entropy(model(waves[i : i + batch_size]), labels[i : i + batch_size]))
                for i in range(0, len(waves), batch_size)
            ]
        return sum(means) / len(means), validation_reference(model, waves, labels)[1]

    with pytest.raises(AssertionError, match="averages the batch means"):
        checks.check_validation_metrics(mean_of_means)

    def with_gradients(model, waves, labels, batch_size=64):
        model.eval()
        total, correct = 0.0, 0
        for i in range(0, len(waves), batch_size):
            logits = model(waves[i : i + batch_size])
            y = labels[i : i + batch_size]
            total += float(F.cross_entropy(logits, y, reduction="sum").detach())
            correct += int((logits.argmax(1) == y).sum())
        return total / len(waves), correct / len(waves)

    with pytest.raises(AssertionError, match="with gradients on: wrap the loop in"):
        checks.check_validation_metrics(with_gradients)

    def percent(model, waves, labels, batch_size=64):
        loss, acc = validation_reference(model, waves, labels, batch_size)
        return loss, 100 * acc

    with pytest.raises(AssertionError, match="not a percentage"):
        checks.check_validation_metrics(percent)
    with pytest.raises(AssertionError, match="must return a pair"):
        checks.check_validation_metrics(lambda *args: 0.5)


def test_training_history(capsys) -> None:
    from dlsaudio.ssl.train import History

    good = History(steps=[{"loss": v} for v in (3.0, 2.5, 2.0, 1.8)])
    checks.check_training_history(good, min_steps=4)
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
        checks.check_training_history(History(steps=[{"loss": 1.0 + v / 10} for v in range(20)]))
    collapsed = History(steps=good.steps, collapsed=True)
    with pytest.raises(AssertionError, match="the embeddings collapsed"):
        checks.check_training_history(collapsed)
    checks.check_training_history(collapsed, allow_collapse=True, min_steps=4)


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
