"""Health monitors: a collapsed embedding is flagged, a healthy one passes."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from dlsaudio.ssl.health import (
    CollapseMonitor,
    alignment,
    effective_rank,
    embedding_std,
    health_metrics,
    uniformity,
)


def gaussian(batch: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dim", [16, 128])
def test_std_healthy_is_about_one_over_sqrt_dim(dim: int) -> None:
    assert embedding_std(gaussian(2048, dim)) == pytest.approx(1 / math.sqrt(dim), rel=0.05)


def test_std_collapsed_is_zero() -> None:
    z = torch.randn(1, 32).repeat(64, 1) * torch.rand(64, 1)  # same direction, any scale
    assert embedding_std(z) == pytest.approx(0.0, abs=1e-6)


def test_effective_rank_of_rank_r_matrix() -> None:
    g = torch.Generator().manual_seed(0)
    for r in (1, 3, 10):
        # Orthogonal factors and equal singular values: the effective rank is exactly r.
        u, _ = torch.linalg.qr(torch.randn(200, r, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(64, r, generator=g, dtype=torch.float64))
        assert effective_rank(u @ v.T) == pytest.approx(r, rel=1e-6)
    # A random rank-5 matrix: at most 5, well above 1.
    low = torch.randn(300, 5, generator=g) @ torch.randn(5, 64, generator=g)
    assert 3.0 < effective_rank(low) <= 5.0 + 1e-4
    assert effective_rank(torch.ones(50, 8)) == pytest.approx(1.0)
    assert effective_rank(torch.zeros(5, 3)) == 0.0
    assert effective_rank(gaussian(1000, 32)) > 30


def test_alignment_and_uniformity_closed_forms() -> None:
    z = gaussian(64, 8)
    assert float(alignment(z, 3 * z)) == pytest.approx(0.0, abs=1e-10)
    assert float(alignment(z, -z)) == pytest.approx(4.0, rel=1e-6)  # antipodal: ||2u||^2
    assert float(alignment(z, -z, alpha=1)) == pytest.approx(2.0, rel=1e-6)
    z2 = gaussian(64, 8, seed=5)
    brute = (
        sum(float((z[i] / z[i].norm() - z2[i] / z2[i].norm()).norm() ** 2) for i in range(64)) / 64
    )
    assert float(alignment(z, z2)) == pytest.approx(brute, rel=1e-5)
    # Uniformity: 0 when collapsed, brute force on a small batch otherwise.
    assert float(uniformity(torch.ones(10, 4))) == pytest.approx(0.0, abs=1e-6)
    small = gaussian(5, 3, seed=2)
    u = torch.nn.functional.normalize(small, dim=1)
    terms = [
        math.exp(-2 * float((u[i] - u[j]).pow(2).sum())) for i in range(5) for j in range(i + 1, 5)
    ]
    assert float(uniformity(small)) == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-5)
    assert float(uniformity(gaussian(512, 64))) < -3.5


def test_alignment_is_differentiable() -> None:
    z1 = gaussian(4, 3).requires_grad_()
    alignment(z1, gaussian(4, 3, seed=1)).backward()
    assert z1.grad is not None and z1.grad.abs().sum() > 0


def test_health_metrics_dict() -> None:
    z1, z2 = gaussian(256, 32), gaussian(256, 32, seed=1)
    m = health_metrics(z1, z2)
    assert set(m) == {"std", "std_healthy", "effective_rank", "alignment", "uniformity"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["std"] == pytest.approx(m["std_healthy"], rel=0.1)
    collapsed = health_metrics(torch.ones(256, 32), torch.ones(256, 32))
    assert collapsed["std"] < 1e-6 and collapsed["effective_rank"] == pytest.approx(1.0)
    assert collapsed["alignment"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["uniformity"] == pytest.approx(0.0, abs=1e-6)


def test_collapse_monitor_warns_once() -> None:
    monitor = CollapseMonitor(dim=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert monitor(gaussian(128, 32)) is False
    collapsed = torch.randn(1, 32).repeat(128, 1)
    with pytest.warns(UserWarning, match="embeddings are collapsing"):
        assert monitor(collapsed) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert monitor(collapsed) is True
        assert monitor(gaussian(128, 32)) is False
        assert monitor(collapsed) is True
    assert monitor.warned and monitor.last_std < monitor.limit


def test_collapse_monitor_patience_and_float_input() -> None:
    monitor = CollapseMonitor(dim=100, threshold=0.5, patience=2)
    assert monitor.limit == pytest.approx(0.05)
    assert monitor(0.01) is False
    assert monitor(0.2) is False  # the streak resets
    assert monitor(0.01) is False
    with pytest.warns(UserWarning, match=r"below 5.00e-02 \(0.5 x the healthy 1/sqrt\(100\)\)"):
        assert monitor(0.01) is True


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"z must have shape \(batch, dim\)"):
        embedding_std(torch.zeros(4))
    with pytest.raises(ValueError, match="z has batch size 1, expected at least 2"):
        embedding_std(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="z has batch size 1, expected at least 2"):
        uniformity(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        effective_rank([[1.0]])
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        alignment(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="alpha must be a positive finite number"):
        alignment(torch.zeros(4, 3), torch.zeros(4, 3), alpha=0)
    with pytest.raises(ValueError, match="t must be a positive finite number"):
        uniformity(torch.zeros(4, 3), t=-1)
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        health_metrics(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="dim must be an int >= 1"):
        CollapseMonitor(0)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        CollapseMonitor(8, threshold=2.0)
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        CollapseMonitor(8, patience=0)
    with pytest.raises(ValueError, match="z has dim 4, but the monitor was built with dim=8"):
        CollapseMonitor(8)(torch.zeros(3, 4))
