"""Batched, seeded augmentations for waveforms and log-mel spectrograms.

Augmentations belong to the data pipeline (a collate function or the training step), not to
the model. Each one is a small dataclass: hyper-parameters are validated when it is built,
and ``aug(x, generator=None)`` draws its random parameters PER EXAMPLE, on the tensor's
device, from ``generator`` when one is given (so a seeded generator reproduces a batch).
Waveforms are ``(batch, time)``, log-mel spectrograms ``(batch, n_mels, frames)``; the
shape, dtype and device of ``x`` are kept.

Example:
    >>> aug = default_wave_augment(strength=0.5)
    >>> g = torch.Generator().manual_seed(0)
    >>> x1, x2 = aug(wave, generator=g), aug(wave, generator=g)   # two SSL views
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from dlsaudio.validation import check_fraction, check_int, check_positive, check_range


def _uniform(low, high, n: int, generator, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """``(n,)`` uniform draws in [low, high] on ``like``'s device (and dtype unless given)."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return (low + (high - low) * u).to(device=like.device, dtype=dtype or like.dtype)


def _randint(low: int, high: int, shape: tuple[int, ...], generator, like) -> torch.Tensor:
    """Integers in [low, high] inclusive, on ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randint(low, high + 1, shape, generator=generator, device=device).to(like.device)


class Augmentation:
    """Base class: ``aug(x, generator=None)`` returns a tensor of the same shape as ``x``.

    Raises:
        ValueError: when built, a setting out of range (named); when called, ``x`` is not a
            floating-point tensor of a shape the augmentation takes (its ``domain``).
    """

    #: which inputs the augmentation accepts: ``"wave"`` (the default), ``"mel"`` or ``"any"``.
    domain = "wave"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} expects a floating-point tensor, got {got}")
        allowed = {"wave": (2,), "mel": (3,), "any": (2, 3)}[self.domain]
        if x.ndim not in allowed:
            shapes = {2: "(batch, time)", 3: "(batch, n_mels, frames)"}
            expected = " or ".join(shapes[d] for d in allowed)
            hint = "; add a batch dimension with x[None]" if x.ndim == min(allowed) - 1 else ""
            raise ValueError(f"{name} expects {expected}, got shape {tuple(x.shape)}{hint}")
        if x.shape[0] == 0 or x.shape[-1] == 0:
            return x.clone()
        return self.apply(x, generator)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Identity(Augmentation):
    """Returns its input unchanged (a copy); what a strength of 0 gives."""

    domain = "any"

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return x.clone()


@dataclass
class Gain(Augmentation):
    """Multiply each example by a random gain, uniform in ``[min_db, max_db]`` decibels."""

    min_db: float = -6.0
    max_db: float = 6.0

    def __post_init__(self) -> None:
        check_range("min_db", self.min_db, "max_db", self.max_db)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        db = _uniform(self.min_db, self.max_db, x.shape[0], generator, x)  # (batch,)
        return x * (10.0 ** (db / 20.0))[:, None]


@dataclass
class TimeShift(Augmentation):
    """Shift each example in time by a fraction of its length uniform in ``[-max_shift,
    max_shift]`` (negative: earlier), filling with zeros."""

    max_shift: float = 0.1

    def __post_init__(self) -> None:
        check_fraction("max_shift", self.max_shift)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, time = x.shape
        limit = int(self.max_shift * time)
        shift = _randint(-limit, limit, (batch, 1), generator, x)  # (batch, 1)
        src = torch.arange(time, device=x.device)[None, :] - shift  # (batch, time)
        valid = (src >= 0) & (src < time)
        return torch.gather(x, 1, src.clamp(0, time - 1)) * valid


@dataclass
class AddNoise(Augmentation):
    """Add white Gaussian noise at a random signal-to-noise ratio, uniform in dB.

    The noise is scaled with its own sampled power, so the SNR of each example is exactly the
    drawn value: ``10 * log10(mean(x**2) / mean(noise**2))``. Silent examples stay silent.
    """

    min_snr_db: float = 5.0
    max_snr_db: float = 40.0

    def __post_init__(self) -> None:
        check_range("min_snr_db", self.min_snr_db, "max_snr_db", self.max_snr_db)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        snr_db = _uniform(self.min_snr_db, self.max_snr_db, x.shape[0], generator, x)
        device = generator.device if generator is not None else x.device
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
        signal_power = x.pow(2).mean(dim=1)  # (batch,)
        noise_power = noise.pow(2).mean(dim=1).clamp_min(torch.finfo(x.dtype).tiny)
        scale = torch.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
        return x + noise * scale[:, None]


@dataclass
class Fade(Augmentation):
    """Linear fade-in and fade-out of random lengths, up to ``max_fade_in`` and
    ``max_fade_out`` of the length (fractions in [0, 1])."""

    max_fade_in: float = 0.1
    max_fade_out: float = 0.1

    def __post_init__(self) -> None:
        check_fraction("max_fade_in", self.max_fade_in)
        check_fraction("max_fade_out", self.max_fade_out)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, time = x.shape
        fade_in = _randint(0, int(self.max_fade_in * time), (batch, 1), generator, x)
        fade_out = _randint(0, int(self.max_fade_out * time), (batch, 1), generator, x)
        t = torch.arange(time, device=x.device)[None, :]  # (1, time)
        # A fade over L samples scales them by 1/(L+1), ..., L/(L+1); L = 0 leaves x unchanged.
        ramp_in = ((t + 1) / (fade_in + 1)).clamp(max=1.0)
        ramp_out = ((time - t) / (fade_out + 1)).clamp(max=1.0)
        return x * (ramp_in * ramp_out).to(x.dtype)


@dataclass
class _BandMask(Augmentation):
    """Random bands set to zero or to the example's mean: the parameters and checks of
    :class:`TimeMask` and :class:`FrequencyMask`, which differ in the axis they mask."""

    max_width: float = 0.1
    min_width: float = 0.0
    num_masks: int = 1
    fill: str = "zero"
    FILLS = ("zero", "mean")

    def __post_init__(self) -> None:
        check_fraction("max_width", self.max_width)
        check_fraction("min_width", self.min_width)
        check_range("min_width", self.min_width, "max_width", self.max_width)
        check_int("num_masks", self.num_masks, minimum=1)
        if self.fill not in self.FILLS:
            raise ValueError(f"fill must be one of {self.FILLS}, got {self.fill!r}")

    def _fill(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.fill == "zero":
            return x.masked_fill(mask, 0.0)
        return torch.where(mask, x.mean(dim=tuple(range(1, x.ndim)), keepdim=True), x)

    def _mask(self, batch: int, size: int, generator, x: torch.Tensor) -> torch.Tensor:
        """``(batch, size)`` boolean mask with ``num_masks`` random bands per example."""
        low, high = round(self.min_width * size), round(self.max_width * size)
        idx = torch.arange(size, device=x.device)[None, :]
        mask = torch.zeros(batch, size, dtype=torch.bool, device=x.device)
        for _ in range(self.num_masks):
            width = _randint(low, high, (batch, 1), generator, x)
            u = _uniform(0.0, 1.0, batch, generator, x, torch.float64)[:, None]
            start = torch.floor(u * (size - width + 1)).long().clamp(max=size - width)
            mask |= (idx >= start) & (idx < start + width)
        return mask


@dataclass
class TimeMask(_BandMask):
    """Mask random spans along the last axis (time samples or spectrogram frames).

    SpecAugment's time masking (https://arxiv.org/abs/1904.08779) on ``(batch, n_mels,
    frames)``, and time masking of raw audio on ``(batch, time)``. Each of the ``num_masks``
    spans (they may overlap) has a width uniform in ``[min_width, max_width]`` times the
    length, rounded. ``fill`` is ``"zero"`` (silence for waveforms) or ``"mean"`` (the
    example's mean, better for log-mel spectrograms whose silence is not 0).
    """

    domain = "any"

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        mask = self._mask(x.shape[0], x.shape[-1], generator, x)  # (batch, time)
        return self._fill(x, mask[:, None, :] if x.ndim == 3 else mask)


@dataclass
class FrequencyMask(_BandMask):
    """SpecAugment frequency masking on ``(batch, n_mels, frames)``: the arguments of
    :class:`TimeMask`, as fractions of ``n_mels``."""

    max_width: float = 0.15
    fill: str = "mean"
    domain = "mel"

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        mask = self._mask(x.shape[0], x.shape[1], generator, x)  # (batch, n_mels)
        return self._fill(x, mask[:, :, None])


@dataclass
class SpeedPerturb(Augmentation):
    """Play each example faster or slower by a random rate (changes tempo and pitch together).

    Like ``sox speed``: the output at sample ``t`` is the input at ``t * rate`` (``rate``
    uniform in ``[min_rate, max_rate]``), by linear interpolation; the length is kept (zeros
    after the end when ``rate > 1``, the end cut when ``rate < 1``). Kaldi's 0.9/1.0/1.1 speed
    perturbation (Ko et al., 2015) is ``SpeedPerturb(0.9, 1.1)``. There is no anti-aliasing
    filter, which is harmless for rates near 1.
    """

    min_rate: float = 0.9
    max_rate: float = 1.1

    def __post_init__(self) -> None:
        check_positive("min_rate", self.min_rate)
        check_range("min_rate", self.min_rate, "max_rate", self.max_rate)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, time = x.shape
        rate = _uniform(self.min_rate, self.max_rate, batch, generator, x, torch.float64)
        pos = torch.arange(time, device=x.device, dtype=torch.float64)[None, :] * rate[:, None]
        i0 = pos.floor().long()
        frac = (pos - i0).to(x.dtype)
        i0, i1 = i0.clamp(max=time - 1), (i0 + 1).clamp(max=time - 1)
        out = torch.gather(x, 1, i0) * (1 - frac) + torch.gather(x, 1, i1) * frac
        return out * (pos <= time - 1)  # zeros after the end


@dataclass
class Compose(Augmentation):
    """Apply augmentations in order, passing the same generator along."""

    augmentations: Sequence[Callable] = field(default_factory=tuple)
    domain = "any"

    def __post_init__(self) -> None:
        self.augmentations = tuple(self.augmentations)
        for i, aug in enumerate(self.augmentations):
            if not callable(aug):
                raise ValueError(f"augmentations[{i}] is not callable: {aug!r}")

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for aug in self.augmentations:
            x = aug(x, generator=generator)
        return x


@dataclass
class RandomApply(Augmentation):
    """Apply ``aug`` to each example independently with probability ``p``."""

    aug: Callable = field(default_factory=Identity)
    p: float = 0.5
    domain = "any"

    def __post_init__(self) -> None:
        if not callable(self.aug):
            raise ValueError(f"aug must be callable, got {self.aug!r}")
        check_fraction("p", self.p)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        chosen = _uniform(0.0, 1.0, x.shape[0], generator, x, torch.float64) < self.p  # (batch,)
        if not bool(chosen.any()):
            return x.clone()
        augmented = self.aug(x, generator=generator)
        return torch.where(chosen.view(-1, *([1] * (x.ndim - 1))), augmented, x)


def _scaled(make: Callable[[float], Augmentation]) -> Callable[[float], Augmentation]:
    def factory(strength: float = 1.0) -> Augmentation:
        s = check_fraction("strength", strength)
        return Identity() if s == 0 else make(s)

    factory.__doc__ = "Build the augmentation at ``strength`` in [0, 1]; 0 gives :class:`Identity`."
    return factory


#: name -> factory(strength in [0, 1]); strength 0 is the identity, 1 the strongest setting
#: used for SSL views. The augmentation's ``domain`` says whether it takes waves or mels.
AUGMENTATIONS: dict[str, Callable[[float], Augmentation]] = {
    "gain": _scaled(lambda s: Gain(-12.0 * s, 12.0 * s)),
    "time_shift": _scaled(lambda s: TimeShift(0.2 * s)),
    "noise": _scaled(lambda s: AddNoise(40.0 - 35.0 * s, 40.0 - 20.0 * s)),
    "fade": _scaled(lambda s: Fade(0.3 * s, 0.3 * s)),
    "time_mask": _scaled(lambda s: TimeMask(max_width=0.25 * s)),
    "speed": _scaled(lambda s: SpeedPerturb(1.0 - 0.2 * s, 1.0 + 0.2 * s)),
    "frequency_mask": _scaled(lambda s: FrequencyMask(max_width=0.3 * s)),
    "mel_time_mask": _scaled(lambda s: TimeMask(max_width=0.25 * s, fill="mean")),
}


def default_wave_augment(strength: float = 1.0) -> Compose:
    """The waveform augmentation that makes SSL views: gain, shift, speed, noise, fade, mask.

    Each step is applied to an example with its own probability, so two views of a clip
    differ in which augmentations they got as well as in their parameters. ``strength`` in
    [0, 1] scales every range as in :data:`AUGMENTATIONS`; 0 gives an identity.

    Raises:
        ValueError: if ``strength`` is outside [0, 1].
    """
    s = check_fraction("strength", strength)
    p = {"gain": 0.8, "time_shift": 0.5, "speed": 0.5, "noise": 0.8, "fade": 0.5, "time_mask": 0.5}
    return Compose([RandomApply(AUGMENTATIONS[name](s), p=p[name]) for name in p])
