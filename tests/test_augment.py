"""Augmentations: shapes kept, seeded, per-example, and each does what its parameters say."""

from __future__ import annotations

import math

import pytest
import torch

from dlsaudio.ssl.augment import (
    AUGMENTATIONS,
    AddNoise,
    Compose,
    Fade,
    FrequencyMask,
    Gain,
    Identity,
    RandomApply,
    SpeedPerturb,
    TimeMask,
    TimeShift,
    default_wave_augment,
)


def waves(batch: int = 4, time: int = 1600, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(time) / 16000
    freq = 200 + 600 * torch.rand(batch, 1, generator=g)
    return 0.5 * torch.sin(2 * math.pi * freq * t) + 0.05 * torch.randn(batch, time, generator=g)


def mels(batch: int = 3, n_mels: int = 40, frames: int = 50) -> torch.Tensor:
    return torch.randn(batch, n_mels, frames, generator=torch.Generator().manual_seed(1)) + 5.0


WAVE_AUGS = [
    Gain(),
    TimeShift(0.2),
    AddNoise(),
    Fade(0.3, 0.3),
    TimeMask(0.2),
    SpeedPerturb(0.8, 1.2),
    Compose([Gain(), AddNoise()]),
    RandomApply(AddNoise(), p=0.5),
    default_wave_augment(),
]


@pytest.mark.parametrize("aug", WAVE_AUGS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wave_shape_dtype_device_and_seed(aug, dtype) -> None:
    x = waves().to(dtype)
    out = aug(x, generator=torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out).all()
    again = aug(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    other = aug(x, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(out, other)
    assert not torch.equal(out, x)  # the input is not modified in place
    torch.testing.assert_close(x, waves().to(dtype))


@pytest.mark.parametrize(
    "aug", [TimeMask(0.2, fill="mean"), FrequencyMask(0.3), RandomApply(FrequencyMask(), 0.7)]
)
def test_mel_shape_and_seed(aug) -> None:
    x = mels()
    out = aug(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, aug(x, generator=torch.Generator().manual_seed(0)))


def test_parameters_drawn_per_example() -> None:
    x = waves(batch=1).repeat(8, 1)
    out = Gain(-10, 10)(x, generator=torch.Generator().manual_seed(0))
    ratios = out.norm(dim=1) / x.norm(dim=1)
    assert len(set(ratios.tolist())) == 8


def test_gain_in_db_is_measured() -> None:
    x = waves()
    out = Gain(6.0, 6.0)(x)
    measured = 20 * torch.log10(out.pow(2).mean(1).sqrt() / x.pow(2).mean(1).sqrt())
    torch.testing.assert_close(measured, torch.full((4,), 6.0), atol=1e-4, rtol=0)
    out = Gain(-3.0, 9.0)(x.repeat(50, 1), generator=torch.Generator().manual_seed(1))
    db = 20 * torch.log10(out.norm(dim=1) / x.repeat(50, 1).norm(dim=1))
    assert db.min() >= -3.0 - 1e-4 and db.max() <= 9.0 + 1e-4 and db.max() - db.min() > 6


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_snr_is_measured(snr: float) -> None:
    x = waves()
    out = AddNoise(snr, snr)(x, generator=torch.Generator().manual_seed(0))
    noise = out - x
    measured = 10 * torch.log10(x.pow(2).mean(1) / noise.pow(2).mean(1))
    torch.testing.assert_close(measured, torch.full((4,), snr), atol=0.01, rtol=0)


def test_noise_keeps_silence_silent() -> None:
    out = AddNoise(0, 0)(torch.zeros(2, 100))
    assert torch.count_nonzero(out) == 0


def test_time_mask_zeroes_the_right_number_of_samples() -> None:
    x = waves(time=1000) + 2.0  # no exact zeros in the signal
    out = TimeMask(max_width=0.25, min_width=0.25)(x, generator=torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=1)
    assert zeros.tolist() == [250] * 4
    # The masked samples are one contiguous span, elsewhere the input is untouched.
    for row_out, row_in in zip(out, x, strict=True):
        idx = torch.nonzero(row_out == 0).squeeze(1)
        assert int(idx[-1] - idx[0]) == 249
        keep = row_out != 0
        torch.testing.assert_close(row_out[keep], row_in[keep])


def test_mel_masks_count_frames_and_bins() -> None:
    x = mels()
    out = TimeMask(0.2, 0.2, fill="zero")(x)
    assert ((out == 0).all(dim=1)).sum(dim=1).tolist() == [10, 10, 10]
    out = FrequencyMask(0.25, 0.25, fill="zero")(x)
    assert ((out == 0).all(dim=2)).sum(dim=1).tolist() == [10, 10, 10]
    out = FrequencyMask(0.25, 0.25, fill="mean")(x)
    changed = (out != x).all(dim=2).sum(dim=1)
    assert changed.tolist() == [10, 10, 10]
    assert out[out != x].unique().numel() <= 3  # one mean per example


def test_time_shift_moves_content() -> None:
    x = torch.arange(1.0, 11.0)[None].repeat(64, 1)
    out = TimeShift(0.3)(x, generator=torch.Generator().manual_seed(0))
    for row in out:
        nz = row[row != 0]
        # A contiguous run of the original ramp, shifted by at most 3 samples.
        assert torch.equal(nz, torch.arange(nz[0], nz[0] + len(nz)))
        assert len(nz) >= 7
    assert len({tuple(r.tolist()) for r in out}) == 7  # shifts -3..3 all occur


def test_fade_ramps_and_keeps_the_middle() -> None:
    x = torch.ones(3, 100)
    out = Fade(0.2, 0.2)(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 20:80], x[:, 20:80])
    assert (out[:, 0] <= 1).all() and (out[:, -1] <= 1).all()
    assert (out.diff(dim=1)[:, :20] >= 0).all() and (out.diff(dim=1)[:, 80:] <= 0).all()
    full = Fade(1.0, 0.0)(torch.ones(64, 10), generator=torch.Generator().manual_seed(1))
    for row in full:  # a fade-in over L samples: gains 1/(L+1), ..., L/(L+1), then 1
        length = int((row < 1).sum())
        expected = torch.cat([torch.arange(1, length + 1) / (length + 1), torch.ones(10 - length)])
        assert torch.allclose(row, expected)
    assert len({int((row < 1).sum()) for row in full}) > 5  # lengths 0..10 are drawn


def test_fade_of_zero_length_changes_nothing() -> None:
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(2))
    assert torch.equal(Fade(0.0, 0.0)(x, generator=torch.Generator().manual_seed(0)), x)


def test_speed_perturb_changes_frequency() -> None:
    t = torch.arange(16000) / 16000
    x = torch.sin(2 * math.pi * 400 * t)[None]
    out = SpeedPerturb(1.25, 1.25)(x)
    spectrum = torch.fft.rfft(out[0, :12000]).abs()
    peak_hz = int(spectrum.argmax()) * 16000 / 12000
    assert peak_hz == pytest.approx(500, abs=3)
    torch.testing.assert_close(SpeedPerturb(1.0, 1.0)(x), x)
    slow = SpeedPerturb(0.5, 0.5)(torch.arange(10.0)[None])
    torch.testing.assert_close(slow, torch.arange(10.0)[None] * 0.5)


def test_strength_zero_is_identity_and_strength_changes_things() -> None:
    x = waves()
    m = mels()
    for name, factory in AUGMENTATIONS.items():
        aug = factory(0.0)
        assert isinstance(aug, Identity), name
        torch.testing.assert_close(aug(x), x)
        strong = factory(1.0)
        y = m if strong.domain == "mel" or name.startswith("mel_") else x
        assert not torch.equal(strong(y, generator=torch.Generator().manual_seed(0)), y), name
    torch.testing.assert_close(default_wave_augment(0.0)(x), x)
    torch.testing.assert_close(Gain(0, 0)(x), x)
    torch.testing.assert_close(TimeShift(0.0)(x), x)
    torch.testing.assert_close(TimeMask(0.0)(x), x)
    torch.testing.assert_close(RandomApply(Gain(6, 6), p=0.0)(x), x)
    torch.testing.assert_close(RandomApply(Gain(6, 6), p=1.0)(x), Gain(6, 6)(x))


def test_random_apply_probability() -> None:
    x = torch.ones(2000, 4)
    out = RandomApply(Gain(6, 6), p=0.3)(x, generator=torch.Generator().manual_seed(0))
    frac = float((out[:, 0] != 1).float().mean())
    assert abs(frac - 0.3) < 0.04


def test_empty_batch() -> None:
    assert Gain()(torch.zeros(0, 10)).shape == (0, 10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_device_kept() -> None:
    x = waves().cuda()
    out = default_wave_augment()(x, generator=torch.Generator().manual_seed(0))
    assert out.device == x.device


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: Gain(3, -3), "min_db must be <= max_db"),
        (lambda: Gain(float("nan"), 1), "min_db must be a finite number"),
        (lambda: AddNoise(30, 10), "min_snr_db must be <= max_snr_db"),
        (
            lambda: TimeShift(1.5),
            r"max_shift must be a number in \[0, 1\]",
        ),
        (lambda: Fade(-0.1, 0.1), r"max_fade_in must be a number in \[0, 1\]"),
        (lambda: Fade(0.1, 2), r"max_fade_out must be a number in \[0, 1\]"),
        (lambda: TimeMask(0.1, 0.2), "min_width must be <= max_width"),
        (lambda: TimeMask(0.1, num_masks=0), "num_masks must be an int >= 1"),
        (lambda: TimeMask(0.1, fill="noise"), "fill must be one of"),
        (lambda: FrequencyMask(1.1), r"max_width must be a number in \[0, 1\]"),
        (lambda: SpeedPerturb(0.0, 1.0), "min_rate must be a positive"),
        (lambda: SpeedPerturb(1.2, 1.1), "min_rate must be <= max_rate"),
        (lambda: RandomApply(Gain(), p=1.5), r"p must be a number in \[0, 1\]"),
        (lambda: RandomApply("gain", p=0.5), "aug must be callable"),
        (lambda: Compose([Gain(), 3]), r"augmentations\[1\] is not callable"),
        (lambda: default_wave_augment(2.0), r"strength must be a number in \[0, 1\]"),
        (lambda: AUGMENTATIONS["gain"](-1), r"strength must be a number in \[0, 1\]"),
    ],
)
def test_bad_parameters(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"Gain expects \(batch, time\)"):
        Gain()(torch.zeros(100))
    with pytest.raises(ValueError, match=r"AddNoise expects \(batch, time\)"):
        AddNoise()(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"FrequencyMask expects \(batch, n_mels, frames\)"):
        FrequencyMask()(torch.zeros(2, 3))
    with pytest.raises(
        ValueError, match=r"TimeMask expects \(batch, time\) or \(batch, n_mels, frames\)"
    ):
        TimeMask()(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="expects a floating-point tensor"):
        Gain()(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="expects a floating-point tensor"):
        Gain()([[0.0]])
