import pytest
import torch

from dlsaudio.ssl.encoders import (
    MelEncoder,
    PredictionHead,
    ProjectionHead,
    ResidualBlock,
    WaveEncoder,
    _masked_mean,
    make_encoder,
)

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"channels": (4, 8), "blocks": (1, 1)}


@pytest.mark.parametrize("cls", [WaveEncoder, MelEncoder])
@pytest.mark.parametrize("batch,time", [(2, 4000), (3, 16000)])
def test_encoders_map_waves_to_one_vector_per_clip(cls, batch, time):
    enc = cls(**TINY)
    out = enc(torch.randn(batch, time, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (batch, 8) and enc.dim == 8
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", [WaveEncoder, MelEncoder])
def test_default_and_resnet18_configs_have_the_documented_layout(cls):
    small, big = cls(), cls.resnet18()
    assert small.dim == 128 and big.dim == 512
    # ResNet-18: four stages of two residual blocks.
    assert sum(isinstance(m, ResidualBlock) for m in big.modules()) == 8
    assert sum(isinstance(m, ResidualBlock) for m in small.modules()) == 4
    n_small = sum(p.numel() for p in small.parameters())
    n_big = sum(p.numel() for p in big.parameters())
    assert n_small < 1_000_000 < 5_000_000 < n_big


@pytest.mark.parametrize("cls", [WaveEncoder, MelEncoder])
def test_every_encoder_parameter_gets_a_gradient(cls):
    enc = cls(**TINY)
    enc(torch.randn(4, 4000)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_masked_mean_averages_only_real_frames():
    h = torch.arange(8.0).repeat(2, 3, 1)  # (batch=2, channels=3, frames=8)
    out = _masked_mean(h, torch.tensor([800, 400]), time=800)
    assert torch.allclose(out[0], torch.full((3,), 3.5))  # mean of 0..7
    assert torch.allclose(out[1], torch.full((3,), 1.5))  # mean of 0..3
    assert torch.equal(_masked_mean(h, None, 800), h.mean(-1))


def test_lengths_make_pooling_ignore_padding_for_the_mel_encoder():
    torch.manual_seed(0)
    enc = MelEncoder(**TINY).eval()
    wave = torch.randn(1, 8000)
    padded = torch.nn.functional.pad(wave, (0, 8000))
    full = enc(padded)
    masked = enc(padded, lengths=torch.tensor([8000]))
    # Masked pooling moves the padded clip's features towards the unpadded clip's.
    assert (masked - enc(wave)).norm() < (full - enc(wave)).norm()


def test_heads_shapes_and_final_batch_norm():
    h = torch.randn(16, 8)
    z = ProjectionHead(8, 32, 6, num_layers=3, last_bn=True)(h)
    assert z.shape == (16, 6)
    assert torch.allclose(z.mean(0), torch.zeros(6), atol=1e-5)  # affine-free BN in train mode
    assert PredictionHead(6, 3)(z).shape == (16, 6)


def test_make_encoder_builds_by_name():
    assert isinstance(make_encoder("wave"), WaveEncoder)
    assert isinstance(make_encoder("mel", "resnet18"), MelEncoder)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: WaveEncoder(config="resnet50"), "config='resnet50' is unknown"),
        (lambda: MelEncoder(channels=(4, 0), blocks=(1, 1)), "channels must be"),
        (lambda: MelEncoder(channels=(4, 8), blocks=(1,)), "same length"),
        (lambda: WaveEncoder(stem_stride=0), "stem_stride"),
        (lambda: MelEncoder(n_mels=0), "sample_rate, n_mels"),
        (lambda: ResidualBlock(3, 4, 4), "dims must be 1 or 2"),
        (lambda: ProjectionHead(0), "in_dim, hidden_dim"),
        (lambda: make_encoder("cnn"), "kind='cnn' is unknown"),
    ],
)
def test_invalid_hyper_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("cls", [WaveEncoder, MelEncoder])
def test_invalid_shapes_raise(cls):
    enc = cls(**TINY)
    with pytest.raises(ValueError, match=r"expects wave of shape \(batch, time\)"):
        enc(torch.randn(4000))
    with pytest.raises(ValueError, match="needs at least"):
        enc(torch.randn(2, 10))
    with pytest.raises(ValueError, match=r"expects \(batch, 8\), got \(2, 5\)"):
        ProjectionHead(8)(torch.randn(2, 5))
