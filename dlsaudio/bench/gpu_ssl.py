"""Module 3 in ``python -m dlsaudio.bench gpu``: the seminar's InfoNCE run, clips per second.

The seminar's own objects and loop: a :class:`~dlsaudio.ssl.SimCLR` over the log-mel encoder of
the seminar's configuration, trained by :func:`dlsaudio.ssl.fit` (fp16 autocast with a
GradScaler on CUDA, float32 on the CPU) for two epochs of ``steps`` batches of random 0.1-scale
noise clips from six speakers; the first epoch is the warm-up, the second is timed
(``History.epochs``). ``fit`` reads every step's loss, which waits for the device, so the time
of the second epoch covers all but the last step's backward pass and optimizer update.
"""

from __future__ import annotations

from typing import Any

import torch

from dlsaudio.bench.gpu_whisper import MiB, free_memory
from dlsaudio.ssl import SimCLR, fit
from dlsaudio.ssl.encoders import make_encoder

SSL_SEMINAR = {
    "gpu": {"config": "resnet18", "channels": None, "blocks": None, "clip_samples": 16000,
            "batch_size": 64, "dim": 128, "hidden_dim": 512, "tau": 0.1, "batching": "speaker"},
    "smoke": {"config": "small", "channels": (8, 16), "blocks": (1, 1), "clip_samples": 8000,
              "batch_size": 32, "dim": 32, "hidden_dim": 64, "tau": 0.1, "batching": "speaker"},
}  # fmt: skip
"""The module-3 seminar's InfoNCE run (``week_03_ssl/seminar.ipynb``) on a GPU and in smoke mode."""


def ssl_throughput(device: torch.device, smoke: bool, steps: int) -> dict[str, Any]:
    """Clips per second of the module-3 seminar's InfoNCE run, the second of two epochs.

    Raises:
        RuntimeError: a device error (out of memory among them) during training.
    """
    c = SSL_SEMINAR["smoke" if smoke else "gpu"]
    torch.manual_seed(0)
    encoder = make_encoder("mel", c["config"], channels=c["channels"], blocks=c["blocks"])
    method = SimCLR(encoder, dim=c["dim"], hidden_dim=c["hidden_dim"], tau=c["tau"])
    g = torch.Generator().manual_seed(0)
    data = [
        {"wave": 0.1 * torch.randn(c["clip_samples"], generator=g), "speaker": f"s{i % 6}"}
        for i in range(c["batch_size"] * steps)
    ]
    free_memory(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    history = fit(
        method, data, epochs=2, batch_size=c["batch_size"], clip_samples=c["clip_samples"],
        batching=c["batching"], device=device, progress=False, seed=0,
    )  # fmt: skip
    last = history.epochs[-1]
    return {
        "seminar_config": {"mode": "smoke" if smoke else "gpu", "method": "infonce", **c},
        "parameters": sum(p.numel() for p in method.parameters()),
        "precision": "fp16 autocast + GradScaler" if device.type == "cuda" else "fp32",
        "clips_per_second": last["clips_per_second"],
        "timed_steps": steps,
        "timed_clips": last["clips"],
        "seconds": last["seconds"],
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / MiB
        if device.type == "cuda"
        else None,
    }
