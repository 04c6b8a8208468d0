"""Resuming the ASR training loop: what its checkpoint must hold, and where the data stood.

:func:`dlsaudio.asr.train.train` writes ``last.pt`` with the model, optimizer, scheduler and
GradScaler states, the step, each rank's RNG state, the history and the position in the data
(epoch and micro-batches consumed, and the micro-batch size they are counted in). Resuming
replays the loader to that position, so a seeded sampler yields the same batches as an
uninterrupted run. Everything that can make a checkpoint unusable for a run is said here, with
the file's name: a truncated file, another loop's or model's checkpoint, another micro-batch
size, or data that end before the recorded position.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsaudio.checkpoint import CheckpointError, check_model_state

CHECKPOINT_NAME = "last.pt"
"""The file the loop writes in ``checkpoint_dir`` and resumes from."""

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "step", "epoch", "consumed")
"""What a checkpoint of the loop holds at least."""


class LoaderPosition:
    """Endless iterator over a loader that calls ``set_epoch`` and knows its position."""

    def __init__(self, loader: Iterable, epoch: int = 0, consumed: int = 0) -> None:
        self.loader = loader
        self.epoch = epoch
        self.consumed = consumed
        self._iterator = None

    def _set_epoch(self) -> None:
        batch_sampler = getattr(self.loader, "batch_sampler", None)
        for holder in (
            self.loader,
            getattr(self.loader, "sampler", None),
            getattr(batch_sampler, "sampler", None),
        ):
            if hasattr(holder, "set_epoch"):
                holder.set_epoch(self.epoch)
                return

    def reopen(self, path: Path) -> None:
        """:meth:`open` when resuming from the checkpoint ``path``.

        Raises:
            CheckpointError: the loader ends before the checkpoint's position.
        """
        try:
            self.open()
        except ValueError as err:
            raise CheckpointError(
                f"cannot resume from {path}: {err}. This run's data differ from those of the "
                "run that wrote it; resume with the same data and batch size, or start afresh "
                "in another folder"
            ) from None

    def open(self) -> None:
        """Start the current epoch's pass and skip the batches already consumed.

        Raises:
            ValueError: the pass has fewer batches than were consumed.
        """
        self._set_epoch()
        self._iterator = iter(self.loader)
        for skipped in range(self.consumed):  # resume inside an epoch
            if next(self._iterator, None) is None:
                raise ValueError(
                    f"the position in the data is batch {self.consumed} of epoch {self.epoch}, "
                    f"but the loader yields only {skipped} batches per epoch"
                )

    def __next__(self):
        for _ in range(2):
            if self._iterator is None:
                self.open()
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.epoch, self.consumed, self._iterator = self.epoch + 1, 0, None
                continue
            self.consumed += 1
            return batch
        raise ValueError("train_loader yields no batches")


def restore(
    state: dict[str, Any],
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load a checkpoint's states into the model (unwrapped), optimizer, scheduler and scaler.

    Raises:
        CheckpointError: a state that does not fit (another model, optimizer or schedule).
    """
    check_model_state(model, state["model"], path)
    model.load_state_dict(state["model"])
    targets = [
        ("optimizer", optimizer, state["optimizer"]),
        ("GradScaler", scaler, state["scaler"]),
    ]
    if scheduler is not None and state["scheduler"] is not None:
        targets.append(("scheduler", scheduler, state["scheduler"]))
    for what, target, saved in targets:
        try:
            target.load_state_dict(saved)
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(
                f"the {what} state in {path} does not fit this run's {what} ({err}); resume "
                "with the settings that wrote it, or start afresh in another folder"
            ) from None
