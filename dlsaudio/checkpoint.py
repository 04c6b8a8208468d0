"""Training checkpoints for both training loops: atomic writes, clear reads, RNG state.

A checkpoint is one ``torch.save`` file. :func:`save_checkpoint` writes it next to its final
name and renames it into place, so a crash or a full disk during the write leaves the previous
checkpoint intact and no partial file behind. :func:`read_checkpoint` (built from
:func:`load_checkpoint` and :func:`check_model_state`) says which file is unreadable, incomplete or of another model instead
of failing inside ``torch.load`` or ``load_state_dict``, and :func:`check_output_dir` tells a
command line before any work whether its output folder can take what the run will write.

The random state of a process (torch, CUDA, Python, NumPy) is captured with
:func:`rng_state` and restored with :func:`set_rng_state`; under ``torchrun`` every rank has
its own (:func:`gather_rng_states`, :func:`rank_rng_state`), so that dropout and data order
continue where each rank stopped.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to another run or model."""


def check_output_dir(path: str | Path, need_bytes: int = 0, option: str = "--out") -> Path:
    """Create ``path`` and make sure a run can write ``need_bytes`` into it.

    Call it before loading data and training, so that a folder that cannot take the results
    fails at once rather than at the first checkpoint.

    Args:
        path: the output folder.
        need_bytes: how much the run will write (0: only check that it can write at all).
        option: how the caller names the folder in messages (a command-line option).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: ``path`` is a file, cannot be created or written (read-only), or has less
            free space than ``need_bytes``; the message names ``option`` and ``path``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file; give a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as err:
        raise ValueError(
            f"{option} {path} cannot be written ({err.strerror or err}); give a folder you can "
            "write to (a read-only or full disk cannot hold checkpoints and results)"
        ) from None
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise ValueError(
            f"{option} {path} has {free / 2**20:,.0f} MB free, but this run writes about "
            f"{need_bytes / 2**20:,.0f} MB (checkpoints, replaced atomically, and the final "
            "model); free disk space or give a folder on another disk"
        )
    return path


def state_nbytes(module: nn.Module) -> int:
    """Bytes of ``module``'s state dict as ``torch.save`` writes it (tied weights count once).

    With :func:`check_output_dir`, it lets a command line estimate the size of its checkpoints
    before any training: the weights plus the optimizer's state.
    """
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in module.state_dict().values()
        if isinstance(t, torch.Tensor)
    }
    return sum(storages.values())


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``.

    The temporary file (``path`` + ``.tmp``) is flushed to disk before it replaces ``path``,
    and removed when the write fails, so that ``path`` always holds a whole checkpoint: the new
    one or the previous one.

    Args:
        path: the checkpoint file; its folder is created when missing.
        state: what to save (tensors, state dicts, numbers, lists).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OSError: the folder cannot be created or written (read-only, full disk); the message
            names the file and says that the previous checkpoint is intact.
        Exception: whatever ``torch.save`` raises for an object it cannot pickle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = "the previous checkpoint is intact" if path.exists() else "nothing was written"
        raise OSError(
            err.errno,
            f"cannot write the checkpoint {path} ({err.strerror or err}); {kept}. Free disk "
            "space or write to another folder",
        ) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path, required: Iterable[str] = (), *, mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, on the CPU.

    Args:
        path: the checkpoint file.
        required: keys the caller needs (e.g. ``"model"``, ``"step"``); a checkpoint without
            them was written by another training loop.
        mmap: map the tensors from the file instead of reading them (cheap, for checks).

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, not a checkpoint, or lacks ``required`` keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # EOFError, RuntimeError (zip), UnpicklingError, ...
        reason = str(err).split(". ")[0]
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({path.stat().st_size:,} bytes): it is truncated "
            f"or not a checkpoint ({type(err).__name__}: {reason}). Delete it to start afresh, "
            "or resume from a copy"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds a {type(state).__name__}, not a training checkpoint; delete it to "
            "start afresh, or point the run at another folder"
        )
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(
            f"the checkpoint {path} lacks {missing} (it has {sorted(state)}): another training "
            "loop wrote it. Point the run at another folder, or delete the file to start afresh"
        )
    return state


def read_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    *,
    required: Iterable[str] = (),
    batch_size: int | None = None,
    mmap: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint of either training loop and check that this run can continue from it;
    nothing is loaded into ``model``.

    Args:
        path: the checkpoint file.
        model: when given (not DDP-wrapped), the checkpoint must hold a run of its class (if it
            names one under ``"method"``) and weights that fit it (names and shapes).
        required: keys the loop writes (see :func:`load_checkpoint`).
        batch_size: this run's micro-batch size, when known; a checkpoint that counts its
            position in the data in micro-batches of another size cannot continue.
        mmap: map the tensors instead of reading them (a cheap check before training).

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated or not a checkpoint, another training loop,
            another method or another model size wrote it, or another micro-batch size.
    """
    state = load_checkpoint(path, required=required, mmap=mmap)
    saved = state.get("method")
    if model is not None and saved is not None and saved != type(model).__name__:
        raise CheckpointError(
            f"cannot resume from {path}: it holds a {saved} run and this is a "
            f"{type(model).__name__}; pass the checkpoint of this method or another path"
        )
    saved = state.get("batch_size")
    if batch_size is not None and saved is not None and saved != batch_size:
        raise CheckpointError(
            f"the checkpoint {path} was written with micro-batches of {saved} examples, this run "
            f"has {batch_size}: its position in the data (batch {state['consumed']} of epoch "
            f"{state['epoch']}) counts micro-batches. Resume with a micro-batch of {saved} "
            "(--micro-batch on the command line), or start afresh in another folder"
        )
    if model is not None:
        check_model_state(model, state["model"], path)
    return state


def check_model_state(model: nn.Module, state: Mapping[str, Any], path: str | Path) -> None:
    """Check that a checkpoint's weights fit ``model``: the same names and shapes.

    Raises:
        CheckpointError: missing or unexpected parameters, or parameters of other shapes; the
            checkpoint holds another model (another method, size or architecture).
    """
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    reshaped = [
        f"{name} {tuple(state[name].shape)} vs {tuple(value.shape)}"
        for name, value in expected.items()
        if name in state and hasattr(state[name], "shape") and state[name].shape != value.shape
    ]
    problems = [
        f"{len(items)} {what} (e.g. {', '.join(items[:3])})"
        for what, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("of another shape", reshaped),
        )
        if items
    ]
    if problems:
        raise CheckpointError(
            f"the checkpoint {path} holds another model than this {type(model).__name__}: "
            f"parameters {'; '.join(problems)}. It was written with another model or method: "
            "resume with the settings that wrote it, or point the run at another folder"
        )


def rng_state() -> dict[str, Any]:
    """The random state of this process: torch, CUDA (when present), Python and NumPy."""
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a state from :func:`rng_state` (CUDA only where it was saved and is present)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_rng_states(world_size: int) -> list[dict[str, Any]]:
    """Every rank's :func:`rng_state`, in rank order (a collective: call it on every rank)."""
    if world_size == 1:
        return [rng_state()]
    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, rng_state())
    return states


def rank_rng_state(
    saved: Mapping[str, Any] | Sequence[Mapping[str, Any]], rank: int, world_size: int
) -> Mapping[str, Any]:
    """This rank's state from a checkpoint: its own when the checkpoint holds one per rank of a
    run with as many processes, else the first (a single state, or another number of ranks)."""
    if isinstance(saved, Mapping):
        return saved
    return saved[rank] if len(saved) == world_size else saved[0]
