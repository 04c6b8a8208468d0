"""The training loop for sequence-to-sequence ASR with exact gradient accumulation.

:func:`train` repeats one optimizer step: take the next ``accum_steps`` micro-batches, count
their label tokens over all processes and backpropagate each micro-batch's token-loss sum
divided by that count (:mod:`dlsaudio.asr.accumulation`), unscale (fp16), clip, step the
optimizer, the GradScaler and the scheduler once (:mod:`dlsaudio.asr.precision`). Its settings
are a :class:`TrainConfig`; where it runs is a :class:`~dlsaudio.asr.distributed.DistEnv`.
Checkpoints hold everything needed to continue bit-exactly: the model, optimizer, scheduler
and scaler, each rank's RNG state, the history and the position in the data
(:mod:`dlsaudio.asr.resume`; written atomically by :mod:`dlsaudio.checkpoint`).

The names a notebook needs for training are importable from here: :func:`train`,
:func:`accumulate_gradients`, :func:`token_loss_sum`, :func:`whisper_logits`,
:func:`warmup_linear_decay` and :func:`plot_history`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from dlsaudio.asr.accumulation import (
    NORMALIZATIONS,
    LogitsFn,
    accumulate_gradients,
    check_normalization,
)
from dlsaudio.asr.collator import IGNORE_INDEX
from dlsaudio.asr.distributed import DistEnv, device_of, init_distributed, unwrap, wrap_model
from dlsaudio.asr.loss import count_tokens, token_loss_sum, whisper_logits
from dlsaudio.asr.plots import plot_history
from dlsaudio.asr.precision import (
    PRECISIONS,
    autocast_for,
    check_precision,
    optimizer_step,
    resolve_precision,
)
from dlsaudio.asr.resume import CHECKPOINT_KEYS, CHECKPOINT_NAME, LoaderPosition, restore
from dlsaudio.asr.schedule import warmup_linear_decay
from dlsaudio.checkpoint import (
    gather_rng_states,
    rank_rng_state,
    read_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from dlsaudio.history import History, TrainingDiverged, diverged
from dlsaudio.progress import TrainingProgress

__all__ = [
    "CHECKPOINT_NAME",
    "IGNORE_INDEX",
    "DistEnv",
    "History",
    "TrainConfig",
    "TrainingDiverged",
    "accumulate_gradients",
    "count_tokens",
    "init_distributed",
    "plot_history",
    "read_checkpoint",
    "token_loss_sum",
    "train",
    "unwrap",
    "warmup_linear_decay",
    "whisper_logits",
    "wrap_model",
]


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


@dataclass
class TrainConfig:
    """Settings of :func:`train`; the objects it trains (model, data, optimizer) are arguments.

    Raises:
        ValueError: ``max_steps`` or ``accum_steps`` < 1, ``eval_every``/``checkpoint_every``
            < 1, ``grad_clip`` <= 0, ``resume`` without ``checkpoint_dir``, or an unknown
            ``precision``/``normalization``.
    """

    max_steps: int = field(
        metadata=_help("optimizer steps to reach, counting steps restored from a checkpoint")
    )
    accum_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    normalization: str = field(
        default="window",
        metadata=_help(
            "window: divide the window's token-loss sum by its token count (exact); "
            "mean_of_means: average the micro-batch means (for comparison only)",
            choices=NORMALIZATIONS,
        ),
    )
    eval_every: int | None = field(
        default=None,
        metadata=_help("optimizer steps between evaluations (None: only after the last step)"),
    )
    grad_clip: float | None = field(
        default=1.0, metadata=_help("largest global gradient norm (None: no clipping)")
    )
    precision: str = field(
        default="auto",
        metadata=_help(
            "auto (bf16 or fp16 on CUDA, fp32 on the CPU), fp32, fp16 (CUDA, with a "
            "GradScaler) or bf16",
            choices=PRECISIONS,
        ),
    )
    checkpoint_dir: str | Path | None = field(
        default=None,
        metadata=_help(f"folder of {CHECKPOINT_NAME}, written atomically by the main process"),
    )
    checkpoint_every: int | None = field(
        default=None,
        metadata=_help("optimizer steps between checkpoints (None: only after the last step)"),
    )
    resume: bool = field(
        default=False,
        metadata=_help(
            f"continue from checkpoint_dir/{CHECKPOINT_NAME} when it exists: model, optimizer, "
            "scheduler, scaler, step, every rank's RNG state, history and the position in the "
            "data (the loader is replayed to it, so a seeded sampler gives the same batches)"
        ),
    )
    log_every: int = field(default=10, metadata=_help("steps between printed lines (0: never)"))
    device: str | torch.device | None = field(
        default=None, metadata=_help("where batches go (None: the model's device)")
    )
    progress: bool = field(default=True, metadata=_help("a progress bar on the main process"))

    def __post_init__(self) -> None:
        for name in ("max_steps", "accum_steps"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value} must be a positive integer")
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or value < 1):
                raise ValueError(f"{name}={value} must be a positive integer or None")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be > 0, or None to disable clipping")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError(
                f"resume=True needs checkpoint_dir, the folder that holds {CHECKPOINT_NAME}"
            )
        check_normalization(self.normalization)
        check_precision(self.precision)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def train(
    model: nn.Module,
    train_loader: Iterable,
    config: TrainConfig | None = None,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    logits_fn: LogitsFn = whisper_logits,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    env: DistEnv | None = None,
    **options: Any,
) -> History:
    """Train for ``config.max_steps`` optimizer steps of ``config.accum_steps`` micro-batches.

    Runs unchanged in a notebook and under ``torchrun``: call
    :func:`~dlsaudio.asr.distributed.init_distributed`, :func:`~dlsaudio.asr.distributed.wrap_model`,
    and give the loader a sampler with this process's ``rank``/``world_size`` (e.g.
    :class:`dlsaudio.asr.sampling.SourceWeightedSampler`); its ``set_epoch`` is called at every
    new pass over the loader. Training stops at the first infinite or NaN loss, before that
    step changes the weights.

    Args:
        model: the model, already on its device (and DDP-wrapped under torchrun).
        train_loader: yields collated micro-batches with ``labels`` ``(batch, label_len)``.
        config: the settings (:class:`TrainConfig`).
        optimizer: the optimizer.
        scheduler: learning-rate scheduler stepped once per optimizer step.
        logits_fn: ``(model, batch) -> logits``; the default suits Whisper.
        eval_fn: ``model -> {"wer": ..., "cer": ...}``, run on the main process every
            ``config.eval_every`` steps and after the last step; results go to ``History.eval``.
        env: the processes of the run; default: the process group this process has joined.
        **options: fields of :class:`TrainConfig` (``max_steps=...``), which build the
            config or replace fields of ``config``.

    Returns:
        The :class:`History`.

    Raises:
        ValueError: an invalid setting (see :class:`TrainConfig`), a loader without batches, or
            a model none of whose parameters requires a gradient.
        CheckpointError: ``resume`` from a checkpoint that is unreadable or written by another
            loop, model, micro-batch size or data.
        TrainingDiverged: the loss became infinite or NaN.
    """
    if config is None:
        config = TrainConfig(**options)
    elif options:
        config = dataclasses.replace(config, **options)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            "none of the model's parameters requires a gradient, so training cannot change it "
            "(a merged LoRA model keeps its frozen base weights): call model.requires_grad_(True) "
            "to fine-tune every weight, or add adapters again"
        )
    device = device_of(model) if config.device is None else torch.device(config.device)
    env = DistEnv.current(device) if env is None else env
    precision = resolve_precision(config.precision, device)
    autocast = autocast_for(precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    history = History()
    step, epoch, consumed = 0, 0, 0
    path = None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / CHECKPOINT_NAME
    batch_size = getattr(train_loader, "batch_size", None)
    if config.resume and path.exists():
        state = read_checkpoint(path, required=CHECKPOINT_KEYS, batch_size=batch_size)
        restore(state, path, unwrap(model), optimizer, scheduler, scaler)
        step, epoch, consumed = state["step"], state["epoch"], state["consumed"]
        history = History.from_dict(state["history"])
    elif config.resume and env.is_main:
        print(f"resume: {path} does not exist yet, training from step 0")
    saved = step  # the step of the last checkpoint (0: none yet)
    batches = LoaderPosition(train_loader, epoch=epoch, consumed=consumed)
    if step > 0:
        # opening a DataLoader draws from the global RNG: open it first, then restore the RNG
        batches.reopen(path)
        set_rng_state(rank_rng_state(state["rng"], env.rank, env.world_size))
        if env.is_main:
            print(f"resumed from {path} at step {step}")

    def checkpoint() -> None:
        nonlocal saved
        if path is None:
            return
        saved = step
        rng = gather_rng_states(env.world_size)  # every rank resumes its own random stream
        if env.is_main:
            save_checkpoint(
                path,
                {
                    "model": unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "step": step,
                    "epoch": batches.epoch,
                    "consumed": batches.consumed,
                    "batch_size": batch_size,
                    "history": history.to_dict(),
                    "rng": rng,
                },
            )
        env.barrier()

    model.train()
    shown = config.progress and env.is_main
    tracker = TrainingProgress(max_steps=config.max_steps, steps=step, show=shown)
    announced = False
    while step < config.max_steps:
        started = time.perf_counter()
        window = [_to_device(next(batches), device) for _ in range(config.accum_steps)]
        if not announced and env.is_main:
            micro, accum, world = len(window[0]["labels"]), config.accum_steps, env.world_size
            print(
                f"effective batch = {micro} (micro-batch) x {accum} (accum_steps) x {world} "
                f"(processes) = {micro * accum * world} examples per optimizer step"
            )
            announced = True
        loss, n_tokens = accumulate_gradients(
            model,
            window,
            logits_fn=logits_fn,
            normalization=config.normalization,
            autocast=autocast,
            scale_loss=scaler.scale,
            env=env,
        )
        lr = optimizer.param_groups[0]["lr"]
        if not math.isfinite(loss):  # the same on every rank: the loss is all-reduced
            tracker.close()
            last = f" (the last checkpoint, {path}, holds step {saved})" if saved else ""
            raise diverged(
                step + 1,
                loss,
                lr,
                f"training stopped before this step changed the weights{last}. Lower the "
                "learning rate or lengthen the warmup, use fp32 or bf16 instead of fp16, or "
                "check the labels of this window",
            )
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        grad_norm = _clip_gradients(model, config.grad_clip)
        stepped = optimizer_step(optimizer, scaler, scheduler)
        optimizer.zero_grad(set_to_none=True)
        step += 1
        history.steps.append(
            {
                "step": step,
                "loss": loss,
                "tokens": n_tokens,
                "lr": lr,
                "grad_norm": grad_norm,
                "skipped": not stepped,
                "seconds": time.perf_counter() - started,
            }
        )
        tracker.step(loss=f"{loss:.3f}")
        if config.log_every and step % config.log_every == 0 and env.is_main:
            tqdm.write(f"step {step}: loss {loss:.4f}, lr {lr:.2e}, grad norm {grad_norm:.2f}")
        if _due(config.eval_every, step, config.max_steps):
            _evaluate(model, eval_fn, step, history, env, log=bool(config.log_every))
        if _due(config.checkpoint_every, step, config.max_steps):
            checkpoint()
    tracker.done()
    if not history.eval or history.eval[-1]["step"] != step:
        _evaluate(model, eval_fn, step, history, env, log=bool(config.log_every))
    checkpoint()
    return history


def _due(every: int | None, step: int, max_steps: int) -> bool:
    """A periodic event falls on ``step`` (the last step has its own, after the loop)."""
    return every is not None and step % every == 0 and step < max_steps


def _clip_gradients(model: nn.Module, grad_clip: float | None) -> float:
    """Clip the global gradient norm to ``grad_clip`` (None: no clipping); return the norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    if grad_clip is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def _evaluate(
    model: nn.Module,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None,
    step: int,
    history: History,
    env: DistEnv,
    log: bool,
) -> None:
    """Run ``eval_fn`` on the main process (in eval mode) and record its metrics."""
    if eval_fn is None:
        return
    if env.is_main:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = dict(eval_fn(unwrap(model)))
        model.train(was_training)
        history.eval.append({"step": step, **{k: float(v) for k, v in metrics.items()}})
        if log:
            shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            tqdm.write(f"step {step}: {shown}")
    env.barrier()
