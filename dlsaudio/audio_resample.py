"""Block-wise resampling for :func:`dlsaudio.audio_io.load_audio`.

:class:`_StreamResampler` gives what :func:`torchaudio.functional.resample` gives on a whole
signal while being fed one block at a time, and :class:`_Output` is the ``(time,)`` tensor it
(or a reader that needs no resampling) appends to, allocated once at its expected size. Both
are private helpers of :mod:`dlsaudio.audio_io`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio


class _Output:
    """A growing ``(time,)`` float32 tensor, allocated once at its expected size."""

    def __init__(self, expected: int) -> None:
        self.data = torch.empty(max(expected, 1))
        self.size = 0

    def append(self, piece: torch.Tensor) -> None:
        end = self.size + piece.numel()
        if end > self.data.numel():  # the file held more than its header said
            grown = torch.empty(max(end, int(self.data.numel() * 1.5)))
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = piece
        self.size = end

    def result(self, size: int | None = None) -> torch.Tensor:
        size = self.size if size is None else min(size, self.size)
        out = self.data[:size]
        return out.clone() if size < 0.9 * self.data.numel() else out


class _StreamResampler:
    """:func:`torchaudio.functional.resample` of a long signal fed in blocks.

    The sinc filter of ``torchaudio`` computes output frame ``j`` (``new`` samples) from the
    input around ``j * orig`` (rates divided by their gcd). Resampling a segment with
    ``context`` samples on each side, cut at multiples of ``orig``, therefore reproduces the
    frames in its middle exactly, so only one block and the output are held in memory.
    """

    def __init__(self, orig: int, new: int, block: int, output: _Output) -> None:
        gcd = math.gcd(orig, new)
        self.orig, self.new = orig // gcd, new // gcd
        self.resample = torchaudio.transforms.Resample(self.orig, self.new)
        self.context = self.orig * math.ceil((self.resample.width + 1) / self.orig)
        self.frames = max(1, block // self.orig)  # frames computed at a time
        self.buffer = np.zeros(
            self.context, dtype=np.float32
        )  # input from frame_start's context on
        self.frame = 0  # next output frame
        self.received = 0
        self.output = output

    def _emit(self, frames: int, segment: np.ndarray) -> None:
        out = self.resample(torch.from_numpy(segment))
        skip = self.context // self.orig * self.new
        self.output.append(out[skip : skip + frames * self.new])
        self.frame += frames
        drop = frames * self.orig
        self.buffer = self.buffer[drop:]

    def feed(self, block: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, block])
        self.received += block.size
        while self.buffer.size >= (self.frames * self.orig + 2 * self.context):
            size = self.frames * self.orig + 2 * self.context
            self._emit(self.frames, self.buffer[:size])

    def finish(self) -> torch.Tensor:
        total = math.ceil(self.new * self.received / self.orig)
        left = math.ceil(total / self.new) - self.frame
        if left > 0:
            size = left * self.orig + 2 * self.context
            segment = np.zeros(size, dtype=np.float32)
            segment[: min(size, self.buffer.size)] = self.buffer[:size]
            self._emit(left, segment)
        return self.output.result(total)
