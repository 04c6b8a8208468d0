"""One training loop for every method in :mod:`dlsaudio.ssl.methods`.

The loop caches fixed-length waves in memory, makes two augmented views of each batch (the
augmentations belong to the pipeline, not to the models), calls ``method.training_step``,
and records the loss, the learning rate and the embedding health metrics at every step.
Mixed precision (autocast + GradScaler) is used on CUDA; CPU runs in float32. Each epoch's
shuffling and augmentation are seeded from ``(seed, epoch)``, so resuming from a checkpoint
reproduces the loss trajectory of an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from dlsaudio.checkpoint import read_checkpoint, save_checkpoint
from dlsaudio.data.waves import as_cache
from dlsaudio.history import History, diverged
from dlsaudio.progress import TrainingProgress
from dlsaudio.ssl.config import BATCHINGS, TrainConfig
from dlsaudio.ssl.health import CollapseMonitor, health_metrics
from dlsaudio.ssl.methods import SSLMethod
from dlsaudio.validation import check_choice


def _seeded(seed: int, epoch: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


def batch_plan(
    speakers: Sequence[str], batch_size: int, batching: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """One epoch's batches of clip indices (the last incomplete batch is dropped).

    ``"shuffle"`` draws clips at random. ``"speaker"`` shuffles the clips of each speaker,
    lays the speakers one after another in random order and cuts that sequence into batches,
    so a batch holds as few speakers as the data allow and its negatives mostly share the
    anchor's voice: telling clips apart by who speaks no longer pays, telling them apart by
    what is said does (same-speaker negatives, CPC https://arxiv.org/abs/1807.03748, 3.1).

    Raises:
        ValueError: an unknown ``batching``.
    """
    check_choice("batching", batching, BATCHINGS)
    n = len(speakers)
    if batching == "shuffle":
        order = torch.randperm(n, generator=generator)
        return list(order[: n - n % batch_size].view(-1, batch_size))
    groups: dict[str, list[int]] = {}
    for i, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(i)
    names = sorted(groups)
    parts = []
    for k in torch.randperm(len(names), generator=generator).tolist():
        members = torch.tensor(groups[names[k]])
        parts.append(members[torch.randperm(len(members), generator=generator)])
    order = torch.cat(parts)
    batches = list(order[: n - n % batch_size].view(-1, batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


#: What :func:`fit` saves in a checkpoint (besides the method's name).
CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "history", "epoch")


def fit(
    method: SSLMethod,
    dataset,
    config: TrainConfig | None = None,
    *,
    augment: Callable | None = None,
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    **overrides,
) -> History:
    """Train ``method`` on ``dataset`` and return its :class:`History` (with the epochs done
    before a resume).

    Args:
        method: any :class:`~dlsaudio.ssl.methods.SSLMethod` (labels are passed to methods
            with ``needs_labels``).
        dataset: items with ``"wave"`` (and ``"label"`` for the supervised baseline), or a
            :class:`~dlsaudio.data.WaveCache`.
        config: a :class:`~dlsaudio.ssl.config.TrainConfig` (its defaults when ``None``);
            ``**overrides`` change its fields (``max_minutes=2.5, batch_size=32``, ...).
        augment: ``aug(wave, generator=g)`` applied twice to make the two views; ``None``
            uses :func:`dlsaudio.ssl.augment.default_wave_augment`, ``Identity()`` none.
        checkpoint: a file saved after each epoch (and when the time budget ends an epoch
            early: that epoch then counts as done); if it exists and ``resume``, training
            continues from it. ``device`` is ``"cuda"`` when available, else ``"cpu"``.
        progress: show a progress bar: the training time against ``max_minutes`` when it is
            set (a closing line says whether the run stopped at the limit), else the steps.

    Raises:
        ValueError: an unknown or out-of-range setting; a data set smaller than one batch;
            labels missing for a supervised method.
        CheckpointError: a checkpoint that cannot be resumed (see ``read_checkpoint``).
        TrainingDiverged: the loss became NaN or infinite (the message gives the step).
    """
    from dlsaudio.ssl.augment import default_wave_augment

    unknown = set(overrides) - set(TrainConfig.field_names())
    if unknown:
        names = list(TrainConfig.field_names())
        raise ValueError(f"fit() got unknown settings {sorted(unknown)}; the settings are {names}")
    cfg = replace(config or TrainConfig(), **overrides)  # validates
    cache = as_cache(dataset, cfg.clip_samples)
    if len(cache) < cfg.batch_size:
        raise ValueError(
            f"the data set has {len(cache)} clips, fewer than batch_size={cfg.batch_size}; "
            "lower batch_size"
        )
    if method.needs_labels and cache.labels is None:
        raise ValueError(f"{type(method).__name__} needs an integer 'label' in every item")
    augment = default_wave_augment() if augment is None else augment
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    use_amp = device.type == "cuda"

    method.to(device)
    trained_params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history = History()
    start_epoch = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = read_checkpoint(checkpoint, method, required=CHECKPOINT_KEYS)
        method.load_state_dict(state["model"])  # the optimizer's state follows its parameters
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_dict(state["history"])
        start_epoch = state["epoch"]
    kind = type(method)
    history.model = {"class": f"{kind.__module__}.{kind.__qualname__}", "id": id(method)}
    history.model["clip_samples"] = int(cache.waves.shape[1])  # a check reruns one step with it

    steps_per_epoch = len(cache) // cfg.batch_size
    total_steps = cfg.epochs * steps_per_epoch
    budget = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    trained = sum(row["seconds"] for row in history.epochs)
    step = start_epoch * steps_per_epoch
    monitor: CollapseMonitor | None = None  # built at the first step, when dim is known

    def save(epoch_done: int) -> None:
        if checkpoint is not None:
            parts = {"model": method, "optimizer": optimizer, "scaler": scaler}
            state = {key: part.state_dict() for key, part in parts.items()}
            state.update(method=type(method).__name__, history=history.to_dict(), epoch=epoch_done)
            save_checkpoint(checkpoint, state)

    tracker = TrainingProgress(
        max_steps=total_steps,
        budget_seconds=budget,
        steps=step,
        seconds=trained,
        desc=type(method).__name__,
        show=progress,
    )
    out_of_time = False
    for epoch in range(start_epoch, cfg.epochs):
        method.train()
        plan = batch_plan(cache.speakers, cfg.batch_size, cfg.batching, _seeded(cfg.seed, epoch))
        views = _seeded(cfg.seed + 1, epoch, device)
        t0, clips, losses = tracker.seconds, 0, []
        for index in plan:
            frac = step / total_steps
            if budget is not None:
                frac = max(frac, min(tracker.seconds / budget, 1.0))
            lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * frac))
            for group in optimizer.param_groups:
                group["lr"] = lr
            wave = cache.waves[index].to(device)  # (batch, time)
            label = cache.labels[index].to(device) if method.needs_labels else None
            x1, x2 = augment(wave, generator=views), augment(wave, generator=views)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                loss, z1, z2 = method.training_step(x1, x2, label)
            if not torch.isfinite(loss.detach()):
                tracker.close()
                advice = f"lower the learning rate (for example lr={cfg.lr / 10:g}) and check the "
                advice += "input waves for NaN or inf"
                raise diverged(step + 1, float(loss.detach()), lr, advice)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            method.on_step_end(frac)
            step += 1
            clips += wave.shape[0]
            losses.append(float(loss.detach()))
            row = {"step": step, "epoch": epoch, "loss": losses[-1], "lr": lr}
            row.update(health_metrics(z1, z2), seconds=tracker.seconds)
            history.steps.append(row)
            if monitor is None:
                monitor = CollapseMonitor(dim=z1.shape[1])
            history.collapsed |= monitor(row["std"])
            tracker.step(loss=f"{losses[-1]:.3f}", std=f"{row['std']:.3f}")
            if tracker.out_of_time:
                out_of_time = True
                break
        seconds = tracker.seconds - t0
        row = {"epoch": epoch, "loss": sum(losses) / max(len(losses), 1), "clips": clips}
        row.update(seconds=seconds, clips_per_second=clips / seconds if seconds > 0 else 0.0)
        history.epochs.append(row)
        save(epoch + 1)
        if out_of_time:
            break
    tracker.done()
    method.eval()
    return history
