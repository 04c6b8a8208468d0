"""One tiny training run shared by the SSL check tests: 16 random clips, two steps of 8."""

from __future__ import annotations

import torch

from dlsaudio.ssl import fit
from dlsaudio.ssl.augment import Identity


def tiny_fit(method, steps: int = 2):
    """Train ``method`` for ``steps`` steps of 8 random 0.1 s clips (labels 0, 1, 2 in turn)."""
    g = torch.Generator().manual_seed(0)
    data = [{"wave": torch.randn(1600, generator=g), "label": i % 3} for i in range(8 * steps)]
    return fit(
        method,
        data,
        epochs=1,
        batch_size=8,
        clip_samples=1600,
        progress=False,
        augment=Identity(),
        device="cpu",
    )
