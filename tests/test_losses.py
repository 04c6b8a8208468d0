"""Losses against brute-force loops written from the papers' pseudocode, closed forms, invariances."""

from __future__ import annotations

import math

import pytest
import torch

from dlsaudio.ssl import losses
from dlsaudio.ssl.losses import (
    BarlowTwinsLoss,
    BYOLLoss,
    InfoNCE,
    SimSiamLoss,
    VICRegLoss,
    barlow_twins_loss,
    byol_loss,
    covariance_term,
    info_nce,
    invariance_term,
    off_diagonal,
    simsiam_loss,
    variance_term,
    vicreg_loss,
)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


# --------------------------------------------------------------------------- brute force


def nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """SimCLR Algorithm 1: l(i, j) = -log exp(s_ij/tau) / sum_{k != i} exp(s_ik/tau), averaged."""
    z = list(z1) + list(z2)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denom = sum(math.exp(cos(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(z[i], z[j]) / tau) / denom)
    return total / (2 * n)


def shared_denominator_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    z = list(z1) + list(z2)
    n = len(z1)
    denom = sum(
        math.exp(cos(z[i], z[k]) / tau) for i in range(2 * n) for k in range(2 * n) if k != i
    )
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        total += -math.log(math.exp(cos(z[i], z[j]) / tau) / denom)
    return total / (2 * n)


def barlow_loop(z1: torch.Tensor, z2: torch.Tensor, lambd: float, eps: float = 1e-5) -> float:
    n, d = z1.shape

    def standardise(z: torch.Tensor) -> list[list[float]]:
        cols = []
        for k in range(d):
            col = [float(z[b, k]) for b in range(n)]
            mu = sum(col) / n
            var = sum((x - mu) ** 2 for x in col) / n
            cols.append([(x - mu) / math.sqrt(var + eps) for x in col])
        return cols

    a, b = standardise(z1), standardise(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][t] * b[j][t] for t in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lambd * c**2
    return loss


def vicreg_loop(z1: torch.Tensor, z2: torch.Tensor, s: float, v: float, c: float) -> float:
    n, d = z1.shape
    inv = sum(float(z1[b, k] - z2[b, k]) ** 2 for b in range(n) for k in range(d)) / (n * d)

    def var_cov(z: torch.Tensor) -> tuple[float, float]:
        mu = [sum(float(z[b, k]) for b in range(n)) / n for k in range(d)]
        cov = [
            [
                sum((float(z[b, i]) - mu[i]) * (float(z[b, j]) - mu[j]) for b in range(n)) / (n - 1)
                for j in range(d)
            ]
            for i in range(d)
        ]
        var_term = sum(max(0.0, 1 - math.sqrt(cov[k][k] + 1e-4)) for k in range(d)) / d
        cov_term = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return var_term, cov_term

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return s * inv + v * (v1 + v2) / 2 + c * (c1 + c2)


# --------------------------------------------------------------------------- InfoNCE


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("dim", [1, 3, 32])
@pytest.mark.parametrize("tau", [0.07, 0.5, 1.0])
def test_info_nce_matches_brute_force(batch: int, dim: int, tau: float) -> None:
    z1, z2 = (
        randn(batch, dim, seed=batch * 100 + dim),
        randn(batch, dim, seed=batch * 100 + dim + 1),
    )
    expected = nt_xent_loop(z1, z2, tau)
    assert float(info_nce(z1, z2, tau)) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert float(InfoNCE(tau)(z1, z2)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("batch", [2, 8, 64])
def test_info_nce_collinear_embeddings_give_log_2n_minus_1(batch: int) -> None:
    # All 2N views point the same way: every logit is equal, so the loss is log(2N - 1).
    z = torch.ones(batch, 7) * torch.rand(batch, 1) + 0.1
    assert float(info_nce(z, 3 * z, tau=0.3)) == pytest.approx(math.log(2 * batch - 1), rel=1e-5)


def test_info_nce_symmetric_and_scale_invariant() -> None:
    z1, z2 = randn(10, 8, seed=1), randn(10, 8, seed=2)
    loss = info_nce(z1, z2, 0.2)
    torch.testing.assert_close(info_nce(z2, z1, 0.2), loss)
    torch.testing.assert_close(info_nce(5 * z1, 0.1 * z2, 0.2), loss)


def test_info_nce_float32_and_gradient() -> None:
    z1 = randn(6, 4, seed=3).float().requires_grad_()
    z2 = randn(6, 4, seed=4).float().requires_grad_()
    loss = info_nce(z1, z2)
    loss.backward()
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


@pytest.mark.parametrize("batch", [3, 6])
def test_the_whole_matrix_mistake_matches_its_loop_and_differs_by_about_log_2n(batch: int) -> None:
    from dlsaudio.bench.ssl import seminar_info_nce  # the benchmark keeps the mistake to time it

    z1, z2 = randn(batch, 5, seed=7), randn(batch, 5, seed=8)
    wrong = float(seminar_info_nce(z1, z2, 0.5))
    assert wrong == pytest.approx(shared_denominator_loop(z1, z2, 0.5), rel=1e-9)
    # Collinear case: each row sum is (2N - 1) e^{1/tau}, the whole-matrix sum 2N of them,
    # so the defective loss is larger by exactly log(2N).
    z = torch.ones(batch, 4, dtype=torch.float64)
    gap = float(seminar_info_nce(z, z, 0.5) - info_nce(z, z, 0.5))
    assert gap == pytest.approx(math.log(2 * batch), rel=1e-6)
    assert abs(wrong - float(info_nce(z1, z2, 0.5))) > 0.5 * math.log(2 * batch)


def test_the_public_losses_hold_no_known_wrong_variant() -> None:
    assert not [name for name in losses.__all__ if "shared" in name or "whole" in name]


@pytest.mark.parametrize(
    "call, checks",
    [
        (lambda z: vicreg_loss(z, z), 1),
        (lambda z: barlow_twins_loss(z, z), 1),
        (lambda z: info_nce(z, z), 1),
        (lambda z: byol_loss(z, z), 1),
        (lambda z: simsiam_loss(z, z, z, z), 3),  # three pairs: (p1, z2), (p2, z1), (p1, p2)
    ],
)
def test_each_loss_checks_its_inputs_once_at_the_entry(monkeypatch, call, checks) -> None:
    seen = []
    check = losses.check_embeddings
    monkeypatch.setattr(
        losses, "check_embeddings", lambda *a, **k: seen.append(a) or check(*a, **k)
    )
    call(randn(4, 3, seed=70).half())
    assert len(seen) == checks, seen


# --------------------------------------------------------------------------- BYOL / SimSiam


@pytest.mark.parametrize("batch,dim", [(1, 3), (4, 16), (9, 2)])
def test_byol_matches_brute_force(batch: int, dim: int) -> None:
    p, z = randn(batch, dim, seed=11), randn(batch, dim, seed=12)
    expected = sum(2 - 2 * cos(p[b], z[b]) for b in range(batch)) / batch
    assert float(byol_loss(p, z)) == pytest.approx(expected, rel=1e-9)
    assert float(BYOLLoss()(p, z)) == pytest.approx(expected, rel=1e-9)
    # Closed form: identical vectors give zero; the loss is scale invariant.
    assert float(byol_loss(p, p.clone())) == pytest.approx(0.0, abs=1e-12)
    assert float(byol_loss(3 * p, 0.2 * z)) == pytest.approx(expected, rel=1e-9)


def test_byol_stop_gradient() -> None:
    p = randn(5, 8, seed=1).requires_grad_()
    z = randn(5, 8, seed=2).requires_grad_()
    byol_loss(p, z).backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0
    assert p.grad.abs().sum() > 0


@pytest.mark.parametrize("batch,dim", [(1, 4), (7, 3), (12, 32)])
def test_simsiam_matches_brute_force(batch: int, dim: int) -> None:
    p1, p2, z1, z2 = (randn(batch, dim, seed=s) for s in (21, 22, 23, 24))
    d1 = sum(-cos(p1[b], z2[b]) for b in range(batch)) / batch
    d2 = sum(-cos(p2[b], z1[b]) for b in range(batch)) / batch
    expected = d1 / 2 + d2 / 2
    assert float(simsiam_loss(p1, p2, z1, z2)) == pytest.approx(expected, rel=1e-9)
    assert float(SimSiamLoss()(p1, p2, z1, z2)) == pytest.approx(expected, rel=1e-9)
    # Minimum -1 when predictions point along the other view's projection (any positive scale).
    assert float(simsiam_loss(2 * z2, 0.5 * z1, z1, z2)) == pytest.approx(-1.0, abs=1e-12)
    # Symmetric in the (view 1, view 2) swap.
    assert float(simsiam_loss(p2, p1, z2, z1)) == pytest.approx(expected, rel=1e-9)


def test_simsiam_stop_gradient() -> None:
    p1, p2, z1, z2 = (randn(4, 6, seed=s).requires_grad_() for s in (1, 2, 3, 4))
    simsiam_loss(p1, p2, z1, z2).backward()
    for z in (z1, z2):
        assert z.grad is None or torch.count_nonzero(z.grad) == 0
    for p in (p1, p2):
        assert p.grad.abs().sum() > 0


def test_simsiam_without_stop_gradient_lets_gradients_reach_z() -> None:
    p1, p2, z1, z2 = (randn(4, 6, seed=s).requires_grad_() for s in (1, 2, 3, 4))
    simsiam_loss(p1, p2, z1, z2, stop_gradient=False).backward()
    # d(-cos(p2, z1))/dz1, by hand: -(p2/|p2| - cos * z1/|z1|) / |z1| / 2 / batch
    pn, zn = p2.detach() / p2.detach().norm(dim=1, keepdim=True), z1.detach()
    cos_ = (pn * zn / zn.norm(dim=1, keepdim=True)).sum(1, keepdim=True)
    expected = -(pn - cos_ * zn / zn.norm(dim=1, keepdim=True)) / zn.norm(dim=1, keepdim=True) / 8
    torch.testing.assert_close(z1.grad, expected)
    with torch.no_grad():  # the switch changes the gradient, not the value
        assert float(simsiam_loss(p1, p2, z1, z2, stop_gradient=False)) == pytest.approx(
            float(simsiam_loss(p1, p2, z1, z2))
        )


# --------------------------------------------------------------------------- Barlow Twins


@pytest.mark.parametrize("batch", [2, 6, 17])
@pytest.mark.parametrize("dim", [1, 4, 9])
@pytest.mark.parametrize("lambd", [0.0, 5e-3, 0.5])
def test_barlow_twins_matches_brute_force(batch: int, dim: int, lambd: float) -> None:
    z1, z2 = randn(batch, dim, seed=31), randn(batch, dim, seed=32)
    expected = barlow_loop(z1, z2, lambd)
    assert float(barlow_twins_loss(z1, z2, lambd)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert float(BarlowTwinsLoss(lambd)(z1, z2)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_barlow_twins_invariances() -> None:
    x = randn(32, 8, seed=5)
    y = randn(32, 8, seed=6)
    # Batch standardisation makes the loss invariant to a per-dimension affine map.
    assert float(barlow_twins_loss(x, x)) == pytest.approx(
        float(barlow_twins_loss(x, 2 * x + 4)), abs=1e-6
    )
    assert float(barlow_twins_loss(x, y)) == pytest.approx(
        float(barlow_twins_loss(y, x)), rel=1e-12
    )
    # Identical views: C is the correlation matrix, diagonal ~1, only the off-diagonal term left.
    c = torch.corrcoef(x.T)
    assert float(barlow_twins_loss(x, x, 0.1)) == pytest.approx(
        0.1 * float(off_diagonal(c).pow(2).sum()), rel=1e-3
    )


def test_off_diagonal() -> None:
    m = torch.arange(9.0).view(3, 3)
    assert off_diagonal(m).tolist() == [1.0, 2.0, 3.0, 5.0, 6.0, 7.0]


# --------------------------------------------------------------------------- VICReg


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("dim", [1, 3, 8])
@pytest.mark.parametrize("coeffs", [(25.0, 25.0, 1.0), (1.0, 0.0, 3.0)])
def test_vicreg_matches_brute_force(
    batch: int, dim: int, coeffs: tuple[float, float, float]
) -> None:
    z1, z2 = 0.5 * randn(batch, dim, seed=41), 0.5 * randn(batch, dim, seed=42)
    expected = vicreg_loop(z1, z2, *coeffs)
    assert float(vicreg_loss(z1, z2, *coeffs)) == pytest.approx(expected, rel=1e-9)
    assert float(VICRegLoss(*coeffs)(z1, z2)) == pytest.approx(expected, rel=1e-9)


def test_vicreg_terms_closed_forms() -> None:
    z = randn(64, 4, seed=1)
    assert float(invariance_term(z, z)) == 0.0
    assert float(invariance_term(z, z + 2)) == pytest.approx(4.0)
    # A collapsed embedding pays the full hinge (std ~ 0.01); a wide one pays nothing.
    assert float(variance_term(torch.zeros(8, 3))) == pytest.approx(1 - math.sqrt(1e-4))
    assert float(variance_term(10 * z)) == 0.0
    # Uncorrelated dims: no covariance penalty; two identical dims: 2 * var^2 / dim.
    ind = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(covariance_term(ind)) == 0.0
    dup = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-2.0, -2.0]])
    var = 10 / 3
    assert float(covariance_term(dup)) == pytest.approx(2 * var**2 / 2)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn",
    [
        info_nce,
        barlow_twins_loss,
        vicreg_loss,
        byol_loss,
        invariance_term,
    ],
)
def test_shape_errors(fn) -> None:
    with pytest.raises(ValueError, match=r"same shape \(batch, dim\)"):
        fn(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"must have shape \(batch, dim\)"):
        fn(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        fn([[0.0]], torch.zeros(1, 1))


@pytest.mark.parametrize("fn", [info_nce, barlow_twins_loss, vicreg_loss])
def test_batch_too_small(fn) -> None:
    with pytest.raises(ValueError, match="batch size 1, expected at least 2"):
        fn(torch.zeros(1, 3), torch.zeros(1, 3))


def test_empty_dim_and_single_tensor_terms() -> None:
    with pytest.raises(ValueError, match="dim 0, expected at least 1"):
        byol_loss(torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="batch size 1, expected at least 2"):
        variance_term(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="batch size 1, expected at least 2"):
        covariance_term(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="square"):
        off_diagonal(torch.zeros(2, 3))


def test_simsiam_shape_errors() -> None:
    a, b = torch.zeros(4, 3), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="p1 and z2 must have the same shape"):
        simsiam_loss(a, a, a, b)
    with pytest.raises(ValueError, match="p2 and z1 must have the same shape"):
        simsiam_loss(a, a, b, a)


@pytest.mark.parametrize("tau", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_tau(tau) -> None:
    z = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        info_nce(z, z, tau)
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        InfoNCE(tau)


def test_tau_may_be_a_numpy_number() -> None:
    import numpy as np

    z1, z2 = randn(4, 3, seed=61), randn(4, 3, seed=62)
    torch.testing.assert_close(info_nce(z1, z2, np.float32(0.5)), info_nce(z1, z2, 0.5))


def test_bad_coefficients() -> None:
    z = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="lambd must be a non-negative finite number"):
        barlow_twins_loss(z, z, -1)
    with pytest.raises(ValueError, match="lambd"):
        BarlowTwinsLoss(float("nan"))
    for name in ("sim_coeff", "std_coeff", "cov_coeff"):
        with pytest.raises(ValueError, match=f"{name} must be a non-negative"):
            vicreg_loss(z, z, **{name: -1.0})
        with pytest.raises(ValueError, match=name):
            VICRegLoss(**{name: -1.0})


def test_public_names() -> None:
    for name in losses.__all__:
        assert hasattr(losses, name)


# --------------------------------------------------------------------------- benchmark versions


def test_benchmark_versions_compute_what_they_claim(capsys) -> None:
    import json

    from dlsaudio.bench import ssl as bench

    z1, z2 = randn(6, 5, seed=51), randn(6, 5, seed=52)
    torch.testing.assert_close(bench.reference_info_nce(z1, z2, 0.3), info_nce(z1, z2, 0.3))
    assert float(bench.seminar_info_nce(z1, z2, 0.3)) == pytest.approx(
        shared_denominator_loop(z1, z2, 0.3), rel=1e-9
    )
    assert (
        bench.main(
            [
                "--skip-training",
                "--sizes",
                "8",
                "--repeats",
                "1",
                "--seminar-n",
                "8",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out["info_nce"]["N=8"]) == {"dlsaudio", "reference", "ratio"}
    assert out["info_nce"]["seminar_original"]["N"] == 8


# --------------------------------------------------------------------------- precision


def test_half_precision_info_nce_at_a_tiny_tau_is_finite_and_exact() -> None:
    z1, z2 = randn(6, 8, seed=3).half(), randn(6, 8, seed=4).half()
    loss = info_nce(z1, z2, tau=1e-4)  # s / tau reaches 1e4 and its exp overflows float16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    expected = info_nce(z1.double(), z2.double(), tau=1e-4)
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)


def test_half_precision_barlow_twins_at_dim_4096_is_finite_and_exact() -> None:
    z1, z2 = randn(32, 4096, seed=5).half(), randn(32, 4096, seed=6).half()
    loss = barlow_twins_loss(z1, z2)  # a sum over 4096**2 correlations overflows float16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    expected = barlow_twins_loss(z1.double(), z2.double())
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)


def test_half_precision_gradients_reach_half_precision_inputs() -> None:
    z1 = randn(8, 16, seed=7).half().requires_grad_()
    z2 = randn(8, 16, seed=8).half()
    vicreg_loss(z1, z2).backward()
    assert z1.grad.dtype == torch.float16 and torch.isfinite(z1.grad).all()


def test_autocast_does_not_narrow_the_loss() -> None:
    z1, z2 = randn(16, 64, seed=9).float(), randn(16, 64, seed=10).float()
    full = [info_nce(z1, z2, 0.05), barlow_twins_loss(z1, z2), vicreg_loss(z1, z2)]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = [info_nce(z1, z2, 0.05), barlow_twins_loss(z1, z2), vicreg_loss(z1, z2)]
    for a, b in zip(full, mixed, strict=True):
        assert b.dtype == torch.float32
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "fn",
    [info_nce, barlow_twins_loss, vicreg_loss, byol_loss, invariance_term],
)
def test_integer_inputs_are_refused_by_name(fn) -> None:
    z = torch.ones(4, 3, dtype=torch.long)
    with pytest.raises(
        ValueError,
        match="must be a floating-point tensor",
    ):
        fn(z, z)
