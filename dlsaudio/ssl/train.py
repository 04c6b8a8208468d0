"""One training loop for every method in :mod:`dlsaudio.ssl.methods`.

The loop caches fixed-length waves in memory, makes two augmented views of each batch (the
augmentations belong to the pipeline, not to the models), calls ``method.training_step``,
and records the loss, the learning rate and the embedding health metrics at every step.
Mixed precision (autocast + GradScaler) is used on CUDA; CPU runs in float32.

Checkpoints are written atomically at the end of every epoch and when the time budget runs
out. Each epoch's shuffling and augmentation are seeded from ``(seed, epoch)``, so resuming
from a checkpoint reproduces the loss trajectory of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from dlsaudio.audio import collate_waves, pad_crop
from dlsaudio.health import CollapseMonitor, health_metrics
from dlsaudio.ssl.methods import SSLMethod


class WaveCache(Dataset):
    """Fixed-length copies of a dataset's waves, held in memory.

    Every clip is decoded once, then zero-padded or cropped (from the start) to
    ``length`` samples, so batches need no further padding.

    Args:
        dataset: a sequence of items ``{"wave": (time,), "label": int | None, "speaker": str, ...}``.
        length: samples per clip (16000 = 1 s at 16 kHz, enough for spoken digits).

    Raises:
        ValueError: ``length`` not positive, or the dataset is empty.
    """

    def __init__(self, dataset: Sequence[dict], length: int = 16000) -> None:
        if not isinstance(length, int) or length <= 0:
            raise ValueError(f"length must be a positive number of samples, got {length!r}")
        if len(dataset) == 0:
            raise ValueError("dataset is empty; check the data source")
        items = [dataset[i] for i in range(len(dataset))]
        self.length = length
        self.waves = torch.stack([pad_crop(torch.as_tensor(it["wave"]), length) for it in items])
        self.lengths = torch.tensor([min(len(it["wave"]), length) for it in items])
        labels = [it.get("label") for it in items]
        self.labels = torch.tensor(labels) if all(isinstance(v, int) for v in labels) else None
        self.speakers = [str(it.get("speaker", "")) for it in items]

    def __len__(self) -> int:
        return self.waves.shape[0]

    def __getitem__(self, i: int) -> dict:
        item = {"wave": self.waves[i], "index": i}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item


def as_cache(dataset, length: int = 16000) -> WaveCache:
    """Return ``dataset`` itself if it is already a :class:`WaveCache`, else cache it."""
    return dataset if isinstance(dataset, WaveCache) else WaveCache(dataset, length)


@dataclass
class History:
    """What happened during training: one row per step and one per epoch.

    ``steps`` rows hold ``step, epoch, loss, lr, seconds`` and the health metrics
    (:func:`dlsaudio.health.health_metrics`); ``epochs`` rows hold ``epoch, loss`` (mean) and
    ``clips_per_second``. ``model`` says which model was trained: its class (``"module.qualname"``)
    and ``id``, so a self-check can tell whether a history belongs to a given model object.
    """

    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    collapsed: bool = False
    model: dict = field(default_factory=dict)

    def column(self, name: str, per: str = "step") -> list[float]:
        """Values of one field, per ``"step"`` or per ``"epoch"``."""
        rows = self.steps if per == "step" else self.epochs
        return [row[name] for row in rows if name in row]

    def clips_per_second(self) -> float:
        """Mean training throughput over all epochs (0 before the first epoch ends)."""
        clips = sum(row["clips"] for row in self.epochs)
        seconds = sum(row["seconds"] for row in self.epochs)
        return clips / seconds if seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = {"steps": self.steps, "epochs": self.epochs, "collapsed": self.collapsed}
        return {**d, "model": self.model}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        model = dict(d.get("model", {}))  # empty in histories saved before it was recorded
        return cls(list(d["steps"]), list(d["epochs"]), bool(d.get("collapsed", False)), model)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` with :func:`torch.save` atomically: a temporary file, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _seeded(seed: int, epoch: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


def fit(
    method: SSLMethod,
    dataset,
    *,
    epochs: int = 10,
    max_minutes: float | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    augment: Callable | None = None,
    clip_samples: int = 16000,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
) -> History:
    """Train ``method`` on ``dataset`` and return its :class:`History`.

    Args:
        method: any :class:`~dlsaudio.ssl.methods.SSLMethod` (labels are passed to methods
            with ``needs_labels``).
        dataset: items with ``"wave"`` (and ``"label"`` for the supervised baseline), or a
            :class:`WaveCache`.
        epochs: passes over the data.
        max_minutes: stop after this much training time even if epochs remain; the learning
            rate and BYOL's momentum schedules then follow the elapsed time.
        batch_size: clips per batch (the last incomplete batch is dropped).
        lr: peak learning rate of AdamW; it decays to 0 on a cosine over training.
        weight_decay: AdamW weight decay.
        augment: ``aug(wave, generator=g)`` applied twice to make the two views; ``None``
            uses :func:`dlsaudio.augment.default_wave_augment`. Pass
            :class:`dlsaudio.augment.Identity` for none.
        clip_samples: every clip is padded or cropped to this many samples.
        seed: seeds the shuffling and the views of each epoch (seed the model's initialisation
            yourself with ``torch.manual_seed`` before building it).
        device: ``"cuda"`` when available, else ``"cpu"``, by default.
        checkpoint: a file to save to after each epoch (and when the time budget ends an
            epoch early: that epoch then counts as done); if it exists and ``resume``, training
            continues from it.
        resume: continue from ``checkpoint`` when it exists.
        progress: show a tqdm progress bar.

    Returns:
        The :class:`History` (also for the epochs done before a resume).

    Raises:
        ValueError: non-positive ``epochs``, ``batch_size``, ``lr`` or ``max_minutes``; a
            dataset smaller than one batch; labels missing for a supervised method.
    """
    from tqdm.auto import tqdm

    from dlsaudio.augment import default_wave_augment

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"batch_size must be an int >= 2 (contrastive losses need pairs), got {batch_size!r}"
        )
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"max_minutes must be positive or None, got {max_minutes!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if not isinstance(clip_samples, int) or clip_samples < 1:
        raise ValueError(
            f"clip_samples must be a positive number of samples (16000 = 1 s at 16 kHz), "
            f"got {clip_samples!r}"
        )
    cache = as_cache(dataset, clip_samples)
    if len(cache) < batch_size:
        raise ValueError(
            f"the dataset has {len(cache)} clips, fewer than batch_size={batch_size}; lower batch_size"
        )
    if method.needs_labels and cache.labels is None:
        raise ValueError(f"{type(method).__name__} needs an integer 'label' in every item")
    augment = default_wave_augment() if augment is None else augment
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    use_amp = device.type == "cuda"

    method.to(device)
    optimizer = torch.optim.AdamW(
        [p for p in method.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history = History()
    start_epoch = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_dict(state["history"])
        start_epoch = state["epoch"]
    history.model = {
        "class": f"{type(method).__module__}.{type(method).__qualname__}",
        "id": id(method),
    }

    steps_per_epoch = len(cache) // batch_size
    total_steps = epochs * steps_per_epoch
    budget = None if max_minutes is None else 60.0 * max_minutes
    trained = sum(row["seconds"] for row in history.epochs)
    step = start_epoch * steps_per_epoch
    monitor: CollapseMonitor | None = None  # built at the first step, when dim is known

    def save(epoch_done: int) -> None:
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "history": history.to_dict(),
                    "epoch": epoch_done,
                },
            )

    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc=type(method).__name__)
    out_of_time = False
    for epoch in range(start_epoch, epochs):
        method.train()
        loader = DataLoader(
            cache,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=collate_waves,
            generator=_seeded(seed, epoch),
        )
        views = _seeded(seed + 1, epoch, device)
        t0, clips, losses = time.perf_counter(), 0, []
        for batch in loader:
            frac = step / total_steps
            if budget is not None:
                frac = max(frac, min((trained + time.perf_counter() - t0) / budget, 1.0))
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * frac))
            wave = batch["wave"].to(device)  # (batch, time)
            label = batch["label"].to(device) if method.needs_labels else None
            x1, x2 = augment(wave, generator=views), augment(wave, generator=views)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                loss, z1, z2 = method.training_step(x1, x2, label)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            method.on_step_end(frac)
            step += 1
            clips += wave.shape[0]
            losses.append(float(loss.detach()))
            row = {
                "step": step,
                "epoch": epoch,
                "loss": losses[-1],
                "lr": optimizer.param_groups[0]["lr"],
            }
            row.update(health_metrics(z1, z2))
            row["seconds"] = trained + time.perf_counter() - t0
            history.steps.append(row)
            if monitor is None:
                monitor = CollapseMonitor(dim=z1.shape[1])
            history.collapsed |= monitor(row["std"])
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", std=f"{row['std']:.3f}")
            if budget is not None and trained + time.perf_counter() - t0 >= budget:
                out_of_time = True
                break
        seconds = time.perf_counter() - t0
        trained += seconds
        history.epochs.append(
            {
                "epoch": epoch,
                "loss": sum(losses) / max(len(losses), 1),
                "clips": clips,
                "seconds": seconds,
                "clips_per_second": clips / seconds if seconds > 0 else 0.0,
            }
        )
        save(epoch + 1)
        if out_of_time:
            break
    bar.close()
    method.eval()
    return history
