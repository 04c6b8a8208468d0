"""Masked prediction: data2vec on log-mel frames (Baevski et al., https://arxiv.org/abs/2202.03555).

The third family of the lecture, after contrastive and non-contrastive methods. A *student*
network sees the log-mel frames of a clip with a few spans of frames masked (replaced by a
learned mask embedding) and regresses, at the masked frames only, targets made by a *teacher*
that sees the whole, unmasked clip: the average of the teacher's top ``top_k`` layer outputs,
each instance-normalised over time. The teacher is an exponential moving average of the
student, the EMA of BYOL (:func:`~dlsaudio.ssl.non_contrastive.ema_update` with
:func:`~dlsaudio.ssl.non_contrastive.byol_momentum`), applied to masked prediction: a target
that summarises several layers of context, so the student must infer what the masked frames
mean, not copy their spectrum.

The pieces a student can write are public functions: :func:`span_mask` (which frames to hide),
:func:`data2vec_targets` (what to predict there) and :func:`masked_regression_loss`.
:class:`FrameEncoder` keeps one vector per frame (a small transformer over the log-mel frames);
its ``forward`` pools over time, so probes use it like the other encoders.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.audio import LogMel, mean_normalize
from dlsaudio.ssl.methods import SSLMethod, StepOutput
from dlsaudio.ssl.non_contrastive import byol_momentum, ema_update
from dlsaudio.validation import (
    check_choice,
    check_fraction,
    check_int,
    check_positive_ints,
    is_real,
)

__all__ = [
    "FRAME_CONFIGS",
    "Data2Vec",
    "FrameEncoder",
    "data2vec_targets",
    "masked_regression_loss",
    "span_mask",
]


def span_mask(
    batch: int,
    frames: int,
    mask_prob: float = 0.65,
    span: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Which frames the student does not see: ``(batch, frames)`` booleans, True = masked.

    As in wav2vec 2.0 and data2vec, each clip gets ``n = max(1, round(mask_prob * frames /
    span))`` span starts, drawn without replacement among the ``frames - span + 1`` possible
    ones, and each start masks ``span`` consecutive frames. Spans may overlap, so at most
    ``n * span`` frames (about ``mask_prob`` of them) are masked, every masked run is at least
    ``span`` frames long, and every clip has one. The defaults are the paper's: spans of 10
    frames (200 ms of :class:`FrameEncoder`'s 20-ms frames), ``mask_prob=0.65``.

    Raises:
        ValueError: ``batch`` or ``span`` below 1, ``frames < span``, or ``mask_prob`` not in
            (0, 1).
    """
    check_int("batch", batch, minimum=1)
    check_int("span", span, minimum=1)
    check_int(f"frames (at least span={span})", frames, minimum=span)
    if not (is_real(mask_prob) and 0 < mask_prob < 1):
        raise ValueError(f"mask_prob must be a number in (0, 1), got {mask_prob!r}")
    starts = frames - span + 1
    n = min(max(1, round(mask_prob * frames / span)), starts)
    scores = torch.rand(batch, starts, generator=generator)
    first = scores.argsort(dim=1)[:, :n]  # (batch, n) distinct starts per clip
    cover = first[:, :, None] + torch.arange(span)  # (batch, n, span) masked frame indices
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    return mask.scatter_(1, cover.flatten(1), True)


def data2vec_targets(layer_outputs: Sequence[torch.Tensor], top_k: int) -> torch.Tensor:
    """The teacher's targets: the mean of its top ``top_k`` layer outputs, each
    instance-normalised over time (Section 3.3 of the paper).

    Each layer output ``(batch, frames, dim)`` is standardised per clip and per feature over
    the frames (instance norm without parameters: neighbouring frames are alike, so statistics
    over time suit speech), then the last ``top_k`` layers are averaged.

    Raises:
        ValueError: no layers, layers of different shapes or not ``(batch, frames, dim)``, or
            ``top_k`` not in [1, number of layers].
    """
    layers = list(layer_outputs)
    if not layers:
        raise ValueError("layer_outputs is empty; pass the teacher's layer outputs")
    shape = tuple(layers[0].shape)
    if len(shape) != 3 or any(tuple(x.shape) != shape for x in layers):
        shapes = [tuple(x.shape) for x in layers]
        raise ValueError(f"layer_outputs must share one shape (batch, frames, dim), got {shapes}")
    check_int("top_k", top_k, minimum=1)
    if top_k > len(layers):
        raise ValueError(f"top_k={top_k} is larger than the number of layers, {len(layers)}")
    normed = [F.instance_norm(x.transpose(1, 2)).transpose(1, 2) for x in layers[-top_k:]]
    return torch.stack(normed).mean(dim=0)  # (batch, frames, dim)


def masked_regression_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error at the masked frames only: the data2vec loss for speech (L2).

    ``sum_{b, t masked} ||prediction[b, t] - target[b, t]||^2 / (dim * number of masked
    frames)``. The target is detached: no gradient reaches the teacher.

    Raises:
        ValueError: ``prediction`` and ``target`` not of one shape ``(batch, frames, dim)``,
            ``mask`` not ``(batch, frames)`` booleans, or no masked frame.
    """
    if prediction.ndim != 3 or prediction.shape != target.shape:
        shapes = f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        raise ValueError(f"prediction and target must be (batch, frames, dim), got {shapes}")
    if mask.dtype != torch.bool or mask.shape != prediction.shape[:2]:
        raise ValueError(
            f"mask must be booleans of shape {tuple(prediction.shape[:2])} (batch, frames), "
            f"got {mask.dtype} of shape {tuple(mask.shape)}"
        )
    if not mask.any():
        raise ValueError("mask has no masked frame: there is nothing to predict")
    error = (prediction.float() - target.detach().float()).pow(2)  # (batch, frames, dim)
    return error[mask].mean()


#: Sizes of :class:`FrameEncoder` per ``config``: ``"small"`` for a CPU, ``"resnet18"`` (the
#: name the other encoders give their GPU size) for a GPU.
FRAME_CONFIGS = {
    "small": {"dim": 64, "layers": 4, "heads": 4},
    "resnet18": {"dim": 256, "layers": 8, "heads": 4},
}


class FrameEncoder(nn.Module):
    """Log-mel frames through a small transformer: ``(batch, time)`` -> ``(batch, dim)``.

    The front end is :class:`~dlsaudio.ssl.encoders.MelEncoder`'s (log-mel, mean
    normalisation, batch norm over mel bins), then a convolution of stride 2 turns the frames
    into ``dim`` features every 20 ms (as wav2vec 2.0's), a depthwise convolution adds their
    positions, and ``layers`` pre-norm transformer blocks of ``heads`` heads follow.
    :meth:`layer_outputs` returns each block's output ``(batch, frames, dim)``, where masked
    frames can be replaced by ``mask_embedding``; ``forward`` averages the last over time.
    The paper's Base model has 12 blocks of width 768; ``config="small"`` (4 blocks of width
    64) trains on a CPU, ``"resnet18"`` (8 of 256) on a GPU (:data:`FRAME_CONFIGS`);
    ``dim``, ``layers`` and ``heads`` override a size.

    Raises:
        ValueError: unknown ``config``, a size not positive, or ``dim`` not divisible by
            ``heads``.
    """

    def __init__(
        self,
        config: str = "small",
        *,
        dim: int | None = None,
        layers: int | None = None,
        heads: int | None = None,
        n_mels: int = 40,
        mean_norm: bool = True,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        sizes = FRAME_CONFIGS[check_choice("config", config, tuple(FRAME_CONFIGS))]
        given = {"dim": dim, "layers": layers, "heads": heads}
        dim, layers, heads = (sizes[k] if v is None else v for k, v in given.items())
        check_positive_ints("dim, layers, heads, n_mels", (dim, layers, heads, n_mels))
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.dim = dim
        self.front = LogMel(sample_rate=sample_rate, n_mels=n_mels)
        self.mean_norm = bool(mean_norm)
        self.norm = nn.BatchNorm1d(n_mels)
        self.features = nn.Conv1d(n_mels, dim, kernel_size=3, stride=2, padding=1)
        self.mask_embedding = nn.Parameter(torch.randn(dim) * 0.02)
        self.position = nn.Conv1d(dim, dim, kernel_size=9, padding=4, groups=heads)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.ModuleList(copy.deepcopy(block) for _ in range(layers))
        self.min_time = self.front.mel.n_fft

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` waves -> ``(batch, frames, dim)`` features before the blocks.

        Raises:
            ValueError: ``wave`` is not ``(batch, time)`` or shorter than ``min_time``.
        """
        if wave.ndim != 2 or wave.shape[1] < self.min_time:
            raise ValueError(
                f"{type(self).__name__} expects wave of shape (batch, time) with time >= "
                f"{self.min_time}, got {tuple(wave.shape)}"
            )
        with torch.autocast(device_type=wave.device.type, enabled=False):
            mel = self.front(wave.float())  # (batch, n_mels, frames)
            mel = self.norm(mean_normalize(mel) if self.mean_norm else mel)
        return self.features(mel).transpose(1, 2)  # (batch, frames', dim)

    def layer_outputs(
        self, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Each block's output ``(batch, frames, dim)`` for ``features`` from :meth:`frames`;
        frames where ``mask`` ``(batch, frames)`` is True are replaced by the mask embedding."""
        if mask is not None:
            features = torch.where(mask[:, :, None], self.mask_embedding.to(features), features)
        h = features + self.position(features.transpose(1, 2)).transpose(1, 2)
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return outputs

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` waves -> ``(batch, dim)``: the last block's output, time-pooled."""
        return self.layer_outputs(self.frames(wave))[-1].mean(dim=1)


class Data2Vec(SSLMethod):
    """data2vec for speech on log-mel frames (https://arxiv.org/abs/2202.03555); see the module.

    ``training_step`` uses the first view ``x1`` only (data2vec needs one view; the mask is its
    augmentation): the student sees it masked by :meth:`mask`, the teacher whole, and
    :func:`masked_regression_loss` compares a linear head's predictions with :meth:`targets` at
    the masked frames. ``z1`` is the student's time-pooled last layer, ``z2`` the teacher's.
    ``on_step_end`` moves the teacher by EMA with BYOL's cosine schedule from ``tau_base``
    to 1; the paper goes from 0.999 to 0.9999 over 30,000 updates, but a run of a few hundred
    steps needs a teacher that follows faster, hence 0.99.

    Raises:
        ValueError: ``top_k`` not in [1, number of blocks], ``mask_prob`` not in (0, 1),
            ``span`` or a size not positive, ``tau_base`` not in [0, 1].
    """

    def __init__(
        self,
        encoder: FrameEncoder | None = None,
        top_k: int = 3,
        mask_prob: float = 0.65,
        span: int = 10,
        tau_base: float = 0.99,
    ) -> None:
        encoder = FrameEncoder() if encoder is None else encoder
        super().__init__(encoder)
        self.top_k = check_int("top_k", top_k, minimum=1)
        if top_k > len(encoder.blocks):
            raise ValueError(
                f"top_k={top_k} is larger than the encoder's {len(encoder.blocks)} blocks"
            )
        span_mask(1, span, mask_prob, span)  # validates mask_prob and span
        self.mask_prob, self.span = float(mask_prob), int(span)
        self.tau_base = self.momentum = check_fraction("tau_base", tau_base)
        self.head = nn.Linear(encoder.dim, encoder.dim)
        self.teacher = copy.deepcopy(encoder).requires_grad_(False)

    def mask(self, batch: int, frames: int) -> torch.Tensor:
        """The frames to hide, ``(batch, frames)`` booleans: :func:`span_mask`."""
        return span_mask(batch, frames, self.mask_prob, self.span)

    def targets(self, layer_outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """What the student regresses, ``(batch, frames, dim)``: :func:`data2vec_targets`."""
        return data2vec_targets(layer_outputs, self.top_k)

    def forward(self, wave: torch.Tensor):
        """Return ``prediction, target, mask, student_last, teacher_last`` for waves
        ``(batch, time)``: the first two ``(batch, frames, dim)``, ``mask`` ``(batch, frames)``
        and the last layers of both networks ``(batch, frames, dim)``."""
        features = self.encoder.frames(wave)  # (batch, frames, dim)
        mask = self.mask(*features.shape[:2]).to(features.device)
        student = self.encoder.layer_outputs(features, mask)
        with torch.no_grad():  # the teacher sees the whole clip and gets no gradient
            teacher = self.teacher.layer_outputs(self.teacher.frames(wave))
            target = self.targets(teacher)
        return self.head(student[-1]), target, mask, student[-1], teacher[-1]

    def training_step(self, x1, x2, label=None) -> StepOutput:
        prediction, target, mask, student, teacher = self(x1)
        loss = masked_regression_loss(prediction, target, mask)
        return StepOutput(loss, student.mean(dim=1), teacher.mean(dim=1))

    def on_step_end(self, progress: float) -> None:
        self.momentum = byol_momentum(progress, self.tau_base)
        ema_update(self.teacher, self.encoder, self.momentum)
