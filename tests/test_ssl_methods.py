import copy
import math

import pytest
import torch
import torch.nn.functional as F

from dlsaudio.ssl.encoders import MelEncoder, WaveEncoder
from dlsaudio.ssl.masked import Data2Vec
from dlsaudio.ssl.methods import METHODS, MultiFormatContrastive, SimCLR, Supervised, make_method
from dlsaudio.ssl.non_contrastive import (
    BYOL,
    BarlowTwins,
    SimSiam,
    VICReg,
    byol_momentum,
    ema_update,
)

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"channels": (4, 8), "blocks": (1, 1)}
TIME = 1600


def tiny(kind="mel"):
    return (MelEncoder if kind == "mel" else WaveEncoder)(**TINY)


def views(batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    wave = torch.randn(batch, TIME, generator=g)
    return wave, wave + 0.05 * torch.randn(batch, TIME, generator=g)


def brute_nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2, total = z.shape[0], 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / den)
    return total / n2


def build(name):
    torch.manual_seed(0)
    return {
        "supervised": lambda: Supervised(tiny(), num_classes=3),
        "simclr": lambda: SimCLR(tiny(), dim=16, hidden_dim=16),
        "multiformat": lambda: MultiFormatContrastive(tiny("wave"), tiny(), dim=16, hidden_dim=16),
        "byol": lambda: BYOL(tiny(), dim=16, hidden_dim=16),
        "simsiam": lambda: SimSiam(tiny(), dim=16, hidden_dim=16),
        "barlow": lambda: BarlowTwins(tiny(), dim=16, hidden_dim=16),
        "vicreg": lambda: VICReg(tiny(), dim=16, hidden_dim=16),
    }[name]()


def test_byol_momentum_follows_the_cosine_schedule():
    assert byol_momentum(0.0, 0.99) == pytest.approx(0.99)
    assert byol_momentum(1.0, 0.99) == pytest.approx(1.0)
    assert byol_momentum(0.5, 0.99) == pytest.approx(0.995)
    values = [byol_momentum(k / 10, 0.9) for k in range(11)]
    assert values == sorted(values)


def test_ema_update_equals_the_closed_form():
    torch.manual_seed(0)
    online, target = tiny(), tiny()
    online(torch.randn(4, TIME))  # change online BN statistics
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for b, t, o in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        assert torch.equal(t, o)


def test_byol_target_gets_no_gradient_and_moves_only_by_ema():
    method = build("byol")
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    target_before = copy.deepcopy(method.target_encoder)
    loss, _, _ = method.training_step(*views())
    loss.backward()
    assert all(p.grad is None for p in method.target_encoder.parameters())
    assert all(p.grad is None for p in method.target_projector.parameters())
    assert all(p.grad is not None for p in method.predictor.parameters())
    opt.step()
    for a, b in zip(target_before.parameters(), method.target_encoder.parameters(), strict=True):
        assert torch.equal(a, b)  # the optimizer does not touch the target
    method.on_step_end(0.0)
    for t0, t, o in zip(
        target_before.parameters(),
        method.target_encoder.parameters(),
        method.encoder.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o)


def test_byol_loss_is_the_symmetrised_regression_loss():
    method = build("byol")
    x1, x2 = views()
    p1, p2, t1, t2, _, _ = method(x1, x2)
    ref = sum((2 - 2 * F.cosine_similarity(p, t, dim=1)).mean() for p, t in ((p1, t2), (p2, t1)))
    torch.manual_seed(0)
    method2 = build("byol")
    loss, _, _ = method2.training_step(x1, x2)
    torch.testing.assert_close(loss, ref)


def test_simsiam_forward_shows_the_stop_gradient():
    method = build("simsiam")
    p1, p2, z1, z2 = method(*views())
    assert p1.requires_grad and p2.requires_grad
    assert not z1.requires_grad and not z2.requires_grad and z1.grad_fn is None


def test_simsiam_switches_for_the_collapse_ablation():
    torch.manual_seed(0)
    method = SimSiam(MelEncoder(channels=(4, 8), blocks=(1, 1)), dim=8, stop_gradient=False)
    p1, p2, z1, z2 = method(*views())
    assert z1.requires_grad and z2.requires_grad
    loss, _, _ = method.training_step(*views())
    loss.backward()  # with the stop-gradient off, the target side trains the projector too
    both = [p.grad.clone() for p in method.projector.parameters()]
    method.zero_grad()
    method.stop_gradient = True
    method.training_step(*views()).loss.backward()
    assert any(
        not torch.allclose(a, b.grad)
        for a, b in zip(both, method.projector.parameters(), strict=True)
    )
    plain = SimSiam(MelEncoder(channels=(4, 8), blocks=(1, 1)), dim=8, predictor=False)
    p1, _, z1, _ = plain(*views())
    torch.testing.assert_close(p1, z1)  # p = z without the predictor


def test_simclr_loss_matches_brute_force_nt_xent():
    method = build("simclr")
    loss, z1, z2 = method.training_step(*views())
    assert float(loss.detach()) == pytest.approx(
        brute_nt_xent(z1.detach(), z2.detach(), 0.1), rel=1e-4
    )


def test_multiformat_sends_views_to_the_two_encoders():
    method = build("multiformat")
    x1, x2 = views()
    loss, z1, z2 = method.training_step(x1, x2)
    torch.testing.assert_close(z1, method.wave_projector(method.wave_encoder(x1)))
    torch.testing.assert_close(z2, method.projector(method.encoder(x2)))
    assert float(loss.detach()) == pytest.approx(
        brute_nt_xent(z1.detach(), z2.detach(), 0.1), rel=1e-4
    )
    torch.testing.assert_close(method.project(x2), z2)  # one tensor: the log-mel side
    method.embed_with = "both"
    assert method.embed(x1).shape == (8, 16)


def test_supervised_loss_is_the_mean_cross_entropy_of_both_views():
    method = build("supervised")
    x1, x2 = views(6)
    label = torch.tensor([0, 1, 2, 0, 1, 2])
    loss, h1, h2 = method.training_step(x1, x2, label)
    ref = (
        -sum(torch.log_softmax(method.head(h), 1)[i, label[i]] for h in (h1, h2) for i in range(6))
        / 12
    )
    torch.testing.assert_close(loss, ref)


@pytest.mark.parametrize(
    "name", ["supervised", "simclr", "multiformat", "byol", "simsiam", "barlow", "vicreg"]
)
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(name):
    method = build(name)
    x1, x2 = views()
    label = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)
    first = None
    for step in range(4):
        loss, z1, z2 = method.training_step(x1, x2, label)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step / 4)
    final = float(method.training_step(x1, x2, label).loss.detach())
    assert final < first
    assert z1.shape == z2.shape and z1.shape[0] == 8


def test_embed_returns_encoder_features_not_projections():
    method = build("byol")
    x1, _ = views()
    torch.testing.assert_close(method.embed(x1), method.encoder(x1))
    assert method.embed(x1).shape == (8, 8)


def test_make_method_builds_every_name():
    expected = {
        "supervised": Supervised,
        "infonce": SimCLR,
        "multiformat": MultiFormatContrastive,
        "byol": BYOL,
        "simsiam": SimSiam,
        "barlow": BarlowTwins,
        "vicreg": VICReg,
        "data2vec": Data2Vec,
    }
    assert set(expected) == set(METHODS)
    for name, cls in expected.items():
        assert type(make_method(name)) is cls
    assert isinstance(make_method("byol", encoder="wave").encoder, WaveEncoder)
    assert make_method("infonce", tau=0.2).tau == 0.2


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: make_method("moco"), "method 'moco' is unknown"),
        (lambda: make_method("simclr"), "method 'simclr' is unknown; choose one of .*'infonce'"),
        (lambda: make_method("byol", config="huge"), "config='huge' is unknown"),
        (lambda: make_method("byol", encoder="cnn"), "encoder='cnn' is unknown"),
        (lambda: byol_momentum(1.5), "progress must be a number in"),
        (lambda: byol_momentum(0.5, tau_base=2.0), "tau_base must be a number in"),
        (lambda: BYOL(tiny(), tau_base=-0.1), "tau_base must be a number in"),
        (lambda: SimCLR(tiny(), tau=0.0), "tau must be a positive"),
        (lambda: BarlowTwins(tiny(), lambd=-1.0), "lambd must be a non-negative"),
        (lambda: VICReg(tiny(), std_coeff=-1.0), "std_coeff must be a non-negative"),
        (lambda: VICReg(tiny(), cov_coeff=float("nan")), "cov_coeff must be a non-negative"),
        (lambda: Supervised(tiny(), num_classes=1), "num_classes must be"),
        (lambda: SimCLR(torch.nn.Linear(3, 3)), r"encoder must expose its output size as \.dim"),
        (
            lambda: MultiFormatContrastive(tiny("wave"), tiny(), embed_with="x"),
            "embed_with='x' is unknown",
        ),
    ],
)
def test_invalid_hyper_parameters_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_invalid_views_and_labels_raise():
    method = build("supervised")
    x1, x2 = views()
    with pytest.raises(ValueError, match="x1 and x2 must be two views"):
        method.training_step(x1, x2[:4])
    with pytest.raises(ValueError, match="needs label of shape"):
        method.training_step(x1, x2)


@pytest.mark.parametrize(
    "name", ["supervised", "simclr", "multiformat", "byol", "simsiam", "barlow", "vicreg"]
)
def test_project_returns_one_tensor_and_views_are_what_the_loss_compares(name):
    method = build(name).eval()
    x1, x2 = views()
    z = method.project(x1)
    assert isinstance(z, torch.Tensor) and z.shape[0] == 8
    with torch.no_grad():
        out = method.training_step(x1, x2, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
        v1, v2 = method.views(x1, x2)
    torch.testing.assert_close(v1, out.z1)
    torch.testing.assert_close(v2, out.z2)
