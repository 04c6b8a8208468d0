"""Training loop for sequence-to-sequence ASR with exact gradient accumulation.

The key move: one optimizer step covers a *window* of ``accum_steps`` micro-batches, and the
loss whose gradient is taken is

    sum of token losses over the whole window / number of non-padding label tokens in the window

which is exactly the loss of one big batch made of the concatenated micro-batches. Hugging
Face's Whisper ``forward`` returns the mean token loss of its own micro-batch; averaging those
means over the window ("mean of means", :func:`accumulate_gradients` with
``normalization="mean_of_means"``) weights a token of a short-label micro-batch more than a
token of a long-label one, so it is *not* the full-batch gradient when label lengths differ
(the gradient-accumulation finding of October 2024, https://huggingface.co/blog/gradient_accumulation).

Under DDP (``torchrun``) every rank holds its own window. DDP averages gradients over ranks,
so each rank divides its token-loss sum by the *global* window token count (all-reduced) and
multiplies by ``world_size``: the average of the ranks' gradients is then the gradient of the
global window. All but the last micro-step run under ``model.no_sync()``, so gradients are
communicated once per optimizer step.

Glossary: ``accum_steps`` is the number of micro-batches per optimizer step; the effective
batch is micro-batch x ``accum_steps`` x world size.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

IGNORE_INDEX = -100
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
NORMALIZATIONS = ("window", "mean_of_means")

LogitsFn = Callable[[nn.Module, Mapping[str, Any]], torch.Tensor]


# --------------------------------------------------------------------------- losses


def token_loss_sum(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies and the number of tokens that count.

    Args:
        logits: ``(batch, label_len, vocab)``; position ``t`` predicts ``labels[:, t]``.
        labels: ``(batch, label_len)`` token ids, ``ignore_index`` where padded.
        ignore_index: label value that marks padding.

    Returns:
        ``(loss_sum, n_tokens)``: a scalar tensor (computed in float32) and an int.

    Raises:
        ValueError: if the shapes of ``logits`` and ``labels`` do not match.
    """
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match; "
            "expected logits (batch, label_len, vocab) and labels (batch, label_len)"
        )
    loss_sum = F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=ignore_index, reduction="sum"
    )
    return loss_sum, count_tokens(labels, ignore_index)


def count_tokens(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> int:
    """Number of label tokens that are not padding."""
    return int((labels != ignore_index).sum())


def whisper_logits(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """Logits of a Whisper-like encoder-decoder for a collated batch.

    Builds ``decoder_input_ids`` from ``labels`` the way Hugging Face does (shift right, start
    with ``decoder_start_token_id``, padding ``-100`` replaced by ``pad_token_id``) and calls
    ``model(input_features=..., decoder_input_ids=...)``. The model's own loss is not used.

    Args:
        model: a ``WhisperForConditionalGeneration`` (or DDP around one), or any module with
            ``config.pad_token_id``, ``config.decoder_start_token_id`` and the same call.
        batch: ``{"input_features": (batch, n_mels, frames), "labels": (batch, label_len)}``.

    Returns:
        ``(batch, label_len, vocab)`` logits.
    """
    config = unwrap(model).config
    labels = batch["labels"]
    decoder_input_ids = labels.new_full(labels.shape, config.pad_token_id)
    decoder_input_ids[:, 1:] = labels[:, :-1]
    decoder_input_ids[:, 0] = config.decoder_start_token_id
    decoder_input_ids = decoder_input_ids.masked_fill(
        decoder_input_ids == IGNORE_INDEX, config.pad_token_id
    )
    return model(input_features=batch["input_features"], decoder_input_ids=decoder_input_ids).logits


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


# --------------------------------------------------------------------------- one window


def accumulate_gradients(
    model: nn.Module,
    window: list[Mapping[str, Any]],
    *,
    logits_fn: LogitsFn = whisper_logits,
    normalization: str = "window",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scale_loss: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
) -> tuple[float, int]:
    """Backpropagate one accumulation window into ``.grad`` (does not step or zero).

    Args:
        model: the model (DDP-wrapped or not).
        window: ``accum_steps`` collated micro-batches, each with ``labels`` ``(batch, label_len)``.
        logits_fn: ``(model, batch) -> (batch, label_len, vocab)`` logits.
        normalization: ``"window"`` divides every micro-batch's token-loss sum by the token
            count of the whole window (exact: equals the full-batch gradient);
            ``"mean_of_means"`` divides by the micro-batch's own token count and by
            ``accum_steps``, like averaging Whisper's per-micro-batch losses (not exact; for
            comparison only).
        autocast: context manager factory for the forward pass (mixed precision).
        scale_loss: applied to each micro-batch loss before ``backward`` (a GradScaler's
            ``scale``).

    Returns:
        ``(mean token loss over the window, number of tokens)``; under DDP both are global.

    Raises:
        ValueError: unknown ``normalization``, an empty window, or a window without tokens.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}; expected one of {NORMALIZATIONS}")
    if not window:
        raise ValueError("window is empty; pass accum_steps >= 1 micro-batches")
    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    counts = torch.tensor([count_tokens(batch["labels"]) for batch in window], dtype=torch.float64)
    total = counts.sum()
    if world_size > 1:  # every rank must divide by the same, global, token count
        total = total.to(_device_of(model))
        dist.all_reduce(total)
        total = total.cpu()
    if total <= 0:
        raise ValueError("the window has no label tokens (all labels are -100)")
    loss_sum_total = torch.zeros((), dtype=torch.float64)
    ddp = isinstance(model, DistributedDataParallel)
    for i, batch in enumerate(window):
        last = i == len(window) - 1
        sync = contextlib.nullcontext() if (last or not ddp) else model.no_sync()
        with sync:
            with autocast():
                logits = logits_fn(model, batch)  # (batch, label_len, vocab)
            loss_sum, n_tokens = token_loss_sum(logits, batch["labels"])
            if normalization == "window":
                # DDP averages over ranks: multiply by world_size to get the global sum / tokens
                loss = loss_sum * (world_size / float(total))
            else:
                loss = loss_sum / max(n_tokens, 1) / len(window)
            scale_loss(loss).backward()
        loss_sum_total += loss_sum.detach().double().cpu()
    if world_size > 1:
        loss_sum_total = loss_sum_total.to(_device_of(model))
        dist.all_reduce(loss_sum_total)
        loss_sum_total = loss_sum_total.cpu()
    return float(loss_sum_total / total), int(total)


def _device_of(model: nn.Module) -> torch.device:
    # gloo reduces CPU tensors, nccl CUDA tensors: follow the model
    return next(model.parameters()).device


# --------------------------------------------------------------------------- schedule


def warmup_linear_decay(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup`` optimizer steps, then linear decay to 0 at ``total``.

    Step it once per *optimizer* step (``train`` does), not per micro-batch.

    Raises:
        ValueError: ``warmup`` < 0 or ``total`` <= ``warmup``.
    """
    if warmup < 0 or total <= warmup:
        raise ValueError(f"warmup={warmup}, total={total}: expected 0 <= warmup < total")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / (total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- distributed


@dataclass
class DistEnv:
    """Where this process runs: rank, number of processes, local rank and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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


# --------------------------------------------------------------------------- precision


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA with native bf16 (Ampere and newer), else fp16 on CUDA, fp32 on CPU.

    Raises:
        ValueError: unknown ``precision``, or fp16 without CUDA.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS}")
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        try:  # a T4 (Colab's free GPU) only emulates bf16: use fp16 with a GradScaler there
            native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.3
            native_bf16 = torch.cuda.is_bf16_supported()
        return "bf16" if native_bf16 else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device, got {device}; use 'fp32' or 'bf16'"
        )
    return precision


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``.

    A crash during the write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Batches:
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

    def open(self) -> None:
        """Start the current epoch's pass and skip the batches already consumed."""
        self._set_epoch()
        self._iterator = iter(self.loader)
        for _ in range(self.consumed):  # resume inside an epoch
            next(self._iterator)

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


def _rank_rng(saved: Any, rank: int, world_size: int) -> dict[str, Any]:
    """This rank's RNG state from a checkpoint: one state per rank (or one for all, as older
    checkpoints and runs with a different number of processes have)."""
    if isinstance(saved, dict):
        return saved
    return saved[rank] if len(saved) == world_size else saved[0]


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> bool:
    """Step the optimizer through the GradScaler, then the scheduler, once.

    With fp16 the scaler skips the step when a gradient overflowed (and lowers its scale); the
    scheduler is then not stepped either, so the warmup and decay follow the steps really taken.

    Returns:
        Whether the optimizer stepped.
    """
    scale = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    stepped = scale is None or scaler.get_scale() >= scale
    if scheduler is not None and stepped:
        scheduler.step()
    return stepped


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


# --------------------------------------------------------------------------- the loop


@dataclass
class History:
    """What happened during training: one record per optimizer step and per evaluation."""

    train: list[dict[str, float]] = field(default_factory=list)
    eval: list[dict[str, float]] = field(default_factory=list)

    def frames(self):
        """The two lists as pandas DataFrames ``(train, eval)``."""
        import pandas as pd

        return pd.DataFrame(self.train), pd.DataFrame(self.eval)


def train(
    model: nn.Module,
    train_loader: Iterable,
    *,
    optimizer: torch.optim.Optimizer,
    max_steps: int,
    accum_steps: int = 1,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    logits_fn: LogitsFn = whisper_logits,
    normalization: str = "window",
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    grad_clip: float | None = 1.0,
    precision: str = "auto",
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    log_every: int = 10,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> History:
    """Train for ``max_steps`` optimizer steps of ``accum_steps`` micro-batches each.

    Every step: take the next ``accum_steps`` micro-batches, count their label tokens (over all
    ranks), backpropagate each micro-batch's token-loss sum divided by that count
    (:func:`accumulate_gradients`), unscale (fp16), clip, step the optimizer, the GradScaler and
    the scheduler once. Runs unchanged in a notebook and under ``torchrun``: call
    :func:`init_distributed`, :func:`wrap_model`, and give the loader a sampler with this
    process's ``rank``/``world_size`` (e.g. :class:`dlsaudio.sampling.SourceWeightedSampler`);
    its ``set_epoch`` is called at every new pass over the loader.

    Args:
        model: the model, already on ``device`` (and DDP-wrapped under torchrun).
        train_loader: yields collated micro-batches with ``labels`` ``(batch, label_len)``.
        optimizer: the optimizer.
        max_steps: optimizer steps to reach (counting steps restored from a checkpoint).
        accum_steps: micro-batches per optimizer step.
        scheduler: learning-rate scheduler stepped once per optimizer step.
        logits_fn: ``(model, batch) -> logits``; the default suits Whisper.
        normalization: ``"window"`` (exact) or ``"mean_of_means"`` (for comparison).
        eval_fn: ``model -> {"wer": ..., "cer": ...}``, run on the main process every
            ``eval_every`` steps and after the last step; results go to ``History.eval``.
        eval_every: evaluation period in optimizer steps (None: only at the end).
        grad_clip: max global gradient norm, or None for no clipping.
        precision: ``"auto"``, ``"fp32"``, ``"fp16"`` (CUDA, with a GradScaler) or ``"bf16"``.
        checkpoint_dir: where ``last.pt`` is written (main process only, atomically).
        checkpoint_every: checkpoint period in optimizer steps (None: only at the end).
        resume: continue from ``checkpoint_dir/last.pt`` when it exists: model, optimizer,
            scheduler, scaler, step, RNG state (every rank its own),
            history and the loader position (epoch and batches consumed; the loader is
            replayed to that position, so a seeded sampler gives the same batches).
        log_every: print a line every ``log_every`` steps (0: never).
        device: where batches go; defaults to the model's device.
        progress: show a tqdm progress bar on the main process.

    Returns:
        The :class:`History`.

    Raises:
        ValueError: ``max_steps`` or ``accum_steps`` < 1, ``eval_every``/``checkpoint_every``
            < 1, ``grad_clip`` <= 0, ``resume`` without ``checkpoint_dir``, or an invalid
            ``precision``/``normalization``.
    """
    for name, value in (("max_steps", max_steps), ("accum_steps", accum_steps)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value} must be a positive integer")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if value is not None and (int(value) != value or value < 1):
            raise ValueError(f"{name}={value} must be a positive integer or None")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip={grad_clip} must be > 0, or None to disable clipping")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the folder that holds last.pt")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}; expected one of {NORMALIZATIONS}")
    device = _device_of(model) if device is None else torch.device(device)
    precision = resolve_precision(precision, device)
    distributed = dist.is_available() and dist.is_initialized()
    world_size = dist.get_world_size() if distributed else 1
    rank = dist.get_rank() if distributed else 0
    is_main = rank == 0

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    def autocast():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    history = History()
    step, epoch, consumed = 0, 0, 0
    path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if resume and path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, epoch, consumed = state["step"], state["epoch"], state["consumed"]
        history = History(**state["history"])
    batches = _Batches(train_loader, epoch=epoch, consumed=consumed)
    if step > 0:
        # opening a DataLoader draws from the global RNG: open it first, then restore the RNG
        batches.open()
        _set_rng_state(_rank_rng(state["rng"], rank, world_size))
        if is_main:
            print(f"resumed from {path} at step {step}")

    def checkpoint() -> None:
        if path is None:
            return
        rng = [None] * world_size  # one state per rank, so every rank resumes its own stream
        if distributed:
            dist.all_gather_object(rng, _rng_state())
        else:
            rng[0] = _rng_state()
        if is_main:
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
                    "history": {"train": history.train, "eval": history.eval},
                    "rng": rng,
                },
            )
        if distributed:
            dist.barrier()

    def evaluate() -> None:
        if eval_fn is None:
            return
        if is_main:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = dict(eval_fn(unwrap(model)))
            model.train(was_training)
            history.eval.append({"step": step, **{k: float(v) for k, v in metrics.items()}})
            if log_every:
                shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())
                tqdm.write(f"step {step}: {shown}")
        if distributed:
            dist.barrier()

    model.train()
    bar = tqdm(total=max_steps, initial=step, desc="train", disable=not (progress and is_main))
    announced = False
    while step < max_steps:
        started = time.perf_counter()
        window = [_to_device(next(batches), device) for _ in range(accum_steps)]
        if not announced and is_main:
            micro = len(window[0]["labels"])
            print(
                f"effective batch = {micro} (micro-batch) x {accum_steps} (accum_steps) x "
                f"{world_size} (processes) = {micro * accum_steps * world_size} examples per optimizer step"
            )
            announced = True
        loss, n_tokens = accumulate_gradients(
            model,
            window,
            logits_fn=logits_fn,
            normalization=normalization,
            autocast=autocast,
            scale_loss=scaler.scale,
        )
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        params = [p for p in model.parameters() if p.grad is not None]
        if grad_clip is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
        else:
            grad_norm = float(
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            )
        lr = optimizer.param_groups[0]["lr"]
        stepped = optimizer_step(optimizer, scaler, scheduler)
        optimizer.zero_grad(set_to_none=True)
        step += 1
        history.train.append(
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
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if log_every and step % log_every == 0 and is_main:
            tqdm.write(f"step {step}: loss {loss:.4f}, lr {lr:.2e}, grad norm {grad_norm:.2f}")
        if not math.isfinite(loss) and is_main:
            tqdm.write(
                f"step {step}: the loss is {loss}; lower the learning rate or check the labels"
            )
        if eval_every is not None and step % eval_every == 0 and step < max_steps:
            evaluate()
        if checkpoint_every is not None and step % checkpoint_every == 0 and step < max_steps:
            checkpoint()
    bar.close()
    if not history.eval or history.eval[-1]["step"] != step:
        evaluate()
    checkpoint()
    return history


def plot_history(history: History):
    """Loss and learning rate per optimizer step, and evaluation metrics; returns the Figure."""
    import matplotlib.pyplot as plt

    n_panels = 3 if history.eval else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(4.5 * n_panels, 3.2))
    steps = [r["step"] for r in history.train]
    axes[0].plot(steps, [r["loss"] for r in history.train])
    axes[0].set(title="training loss (per token)", xlabel="optimizer step")
    axes[1].plot(steps, [r["lr"] for r in history.train])
    axes[1].set(title="learning rate", xlabel="optimizer step")
    if history.eval:
        eval_steps = [r["step"] for r in history.eval]
        for key in history.eval[0]:
            if key != "step":
                axes[2].plot(
                    eval_steps,
                    [r.get(key, float("nan")) for r in history.eval],
                    marker="o",
                    label=key,
                )
        axes[2].set(title="evaluation", xlabel="optimizer step")
        axes[2].legend()
    fig.tight_layout()
    return fig
