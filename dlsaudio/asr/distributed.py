"""Where a training process runs: one process in a notebook, several under ``torchrun``.

:class:`DistEnv` is read once (:func:`init_distributed` from the variables ``torchrun`` sets,
or :meth:`DistEnv.current` from the process group already joined) and passed to whatever needs
the rank or the number of processes, so every part of a run agrees on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistEnv:
    """This process's place in the run: rank, number of processes, local rank and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that prints, evaluates and writes files."""
        return self.rank == 0

    @classmethod
    def current(cls, device: str | torch.device = "cpu") -> DistEnv:
        """The process group this process has joined (one process when there is none)."""
        if dist.is_available() and dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        else:
            rank, world_size = 0, 1
        local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world_size > 1 else 0
        return cls(rank, world_size, local_rank, torch.device(device))

    def all_reduce(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over all processes, on the CPU (``value`` itself for one)."""
        if self.world_size == 1:
            return value
        # gloo reduces CPU tensors, nccl CUDA tensors: reduce on this process's device
        total = value.to(self.device)
        dist.all_reduce(total)
        return total.cpu()

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: str | torch.device | None = None) -> DistEnv:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set by ``torchrun`` and join the group.

    Without those variables (a notebook, ``python script.py``) this is a single process and
    nothing is initialised. With them, ``init_process_group`` uses nccl on CUDA and gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def wrap_model(model: nn.Module, env: DistEnv) -> nn.Module:
    """Move ``model`` to ``env.device`` and wrap it in DDP when there are several processes."""
    model = model.to(env.device)
    if env.world_size > 1:
        ids = [env.device.index] if env.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device
