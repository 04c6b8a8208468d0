"""GPU check of both modules: ``python -m dlsaudio.bench gpu`` prints one JSON object.

Offline (random weights, the bundled sample's transcripts, the Whisper vocabulary read from the
``openai-whisper`` package) and a few minutes long on one CUDA GPU; the same code runs on a CPU
at tiny sizes in seconds::

    python -m dlsaudio.bench gpu                        # cuda when available, else cpu
    python -m dlsaudio.bench gpu --device cuda --sizes small,base --precisions fp32,fp16,bf16
    python -m dlsaudio.bench gpu --tiny                 # tiny sizes, on a CPU in seconds

Options: ``--device`` (``cpu``, ``cuda``, ``cuda:N``); ``--sizes`` (``small``, ``base``,
``tiny``; ``--tiny`` means ``--sizes tiny``); ``--precisions`` (``fp32``, ``fp16``, ``bf16``);
``--micro-batch`` and ``--accum-steps`` (default: the module-11 seminar's 8 and 2);
``--steps`` timed optimizer steps after ``--warmup`` untimed ones; ``--decode-clips`` and
``--new-tokens`` (greedy decoding forced to that many tokens per clip; default the seminar's
evaluation batch and ``MAX_NEW_TOKENS``); ``--max-micro-batch`` (upper bound of the
out-of-memory search) and ``--search-precisions`` (``auto``: the precision the training loop
picks on this device; ``all``; ``none``; or a list); ``--ssl-steps`` (0 skips module 3).

For each Whisper size (``small`` and ``base`` have the published widths and depths, the
80-bin mel input and the 51865-token multilingual vocabulary) and each precision, ``whisper``
reports: training samples and label tokens per second at the seminar's micro-batch and
accumulation (:mod:`dlsaudio.bench.gpu_whisper`), peak GPU memory, the largest micro-batch that
fits, greedy decoding speed, and the seminar's training time recomputed from the measured
throughput next to the stated T4 estimate (:mod:`dlsaudio.timing`). fp16 is autocast with
a GradScaler, bf16 is autocast; a precision the device cannot train in is marked
``"unsupported"`` with the reason. ``ssl`` is the module-3 seminar's GPU configuration
(ResNet-18 log-mel encoder, SimCLR/InfoNCE, batch 64, 1 s clips, mixed precision on CUDA)
trained by :func:`dlsaudio.ssl.fit` for two short epochs: clips per second of the second.
At tiny sizes it uses the seminar's smoke configuration instead.

A configuration whose micro-batch does not fit in memory has ``"status": "out_of_memory"`` (the
search still says what fits); one that hit another device error has ``"failed"`` and the error,
and the others are still measured. A line per configuration goes to stderr as it finishes. The
exit status is 1 when something failed, 2 for bad options (a message, no traceback).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from typing import Any

import torch
import transformers

from dlsaudio.asr.precision import PRECISIONS, resolve_precision
from dlsaudio.bench.gpu_memory import is_out_of_memory, search_micro_batch
from dlsaudio.bench.gpu_ssl import ssl_throughput
from dlsaudio.bench.gpu_whisper import (
    ASR_SEMINAR,
    EVAL_BATCH,
    WHISPER_SIZES,
    MiB,
    Trainer,
    build_whisper,
    decode_speed,
    free_memory,
    make_batches,
    seminar_estimate,
    train_throughput,
)

TRAIN_PRECISIONS = tuple(p for p in PRECISIONS if p != "auto")
MEMORY_METHOD = (
    "torch.cuda.max_memory_allocated in MiB (2**20 bytes), reset before each configuration: "
    "weights, gradients, optimizer state and activations of the timed steps; null on the CPU"
)


def parse_device(text: str | None) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; ``None`` picks cuda when available, else cpu.

    Raises:
        ValueError: not a device, not a CPU or CUDA device, or CUDA that torch cannot see.
    """
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {text!r}: this check runs on cpu or cuda, not {device.type}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {text!r}: torch sees no CUDA GPU (torch.cuda.is_available() is False; "
                f"torch {torch.__version__}, built for CUDA {torch.version.cuda}). Run on a "
                "machine with a GPU, check nvidia-smi and CUDA_VISIBLE_DEVICES, or pass --device cpu"
            )
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {text!r}: there are {torch.cuda.device_count()} CUDA devices (0-based)"
            )
        device = torch.device("cuda", index)
    return device


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and the device: name, CUDA capability and total memory (null on the CPU)."""
    info = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_build": torch.version.cuda,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            device_name=props.name,
            cuda_capability=f"{props.major}.{props.minor}",
            total_memory_mib=props.total_memory / MiB,
        )
    else:
        info.update(
            device_name=_cpu_name(),
            cuda_capability=None,
            total_memory_mib=None,
        )
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def unsupported_reason(precision: str, device: torch.device) -> str | None:
    """Why the training loop cannot train in ``precision`` on ``device``; None when it can."""
    try:
        resolve_precision(precision, device)
    except ValueError as err:
        return str(err)
    if (
        precision == "bf16"
        and device.type == "cuda"
        and resolve_precision("auto", device) != "bf16"
    ):
        major, minor = torch.cuda.get_device_capability(device)
        return (
            f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) has no "
            "native bf16: torch.cuda.is_bf16_supported(including_emulation=False) is False "
            "(bf16 needs 8.0, Ampere, or newer); the training loop uses fp16 with a GradScaler here"
        )
    return None


def _error(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _search(trainer: Trainer, batches, args: argparse.Namespace, search: list[str]) -> dict:
    if trainer.device.type != "cuda":
        return {"value": None, "reason": "no out-of-memory search on the CPU: no device memory"}
    if trainer.precision not in search:
        return {
            "value": None,
            "reason": f"not searched: --search-precisions {args.search_precisions} selects {search}",
        }
    return search_micro_batch(trainer, batches, args.max_micro_batch)


def measure_precision(
    cpu_model: torch.nn.Module, processor: Any, size: str, precision: str, device: torch.device,
    args: argparse.Namespace, search: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Training, memory, the micro-batch search and decoding for one size at one precision.

    ``status`` is ``"measured"``; ``"unsupported"`` (with the ``reason``); ``"out_of_memory"``
    when the seminar's micro-batch does not fit (the search still says what does); or
    ``"failed"`` with the ``error`` of another device error.
    """
    reason = unsupported_reason(precision, device)
    if reason is not None:
        return {"status": "unsupported", "reason": reason}
    free_memory(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result: dict[str, Any] = {"status": "measured"}
    seminar_model = WHISPER_SIZES[size].seminar_model
    model = trainer = None
    try:
        model = copy.deepcopy(cpu_model).to(device)
        trainer = Trainer(model, precision, device)
        batches = make_batches(processor, model)
        try:
            train = train_throughput(
                trainer, batches, args.micro_batch, args.accum_steps, args.steps, args.warmup
            )
        except RuntimeError as err:  # torch.cuda.OutOfMemoryError is one
            if not is_out_of_memory(err):
                raise
            result.update(status="out_of_memory", error=_error(err))
        if result["status"] == "out_of_memory":  # the error and its frames are gone: free
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.reset_scaler()
            free_memory(device)
        else:
            result["train"] = train
            result["seminar_estimate"] = seminar_estimate(
                train["samples_per_second"], seminar_model
            )
            result["peak_memory_mib"] = (
                torch.cuda.max_memory_allocated(device) / MiB if device.type == "cuda" else None
            )
        result["largest_micro_batch"] = _search(trainer, batches, args, search)
        if result["status"] == "measured":
            decode = decode_speed(model, precision, device, args.decode_clips, args.new_tokens)
            result["decode"] = decode
            rates = (train["samples_per_second"], seminar_model, decode["clips_per_second"])
            result["seminar_estimate"] = seminar_estimate(*rates)
    except RuntimeError as err:  # a CUDA error: report it, measure the other configurations
        result.update(status="failed", error=_error(err), out_of_memory=is_out_of_memory(err))
    finally:
        model = trainer = None
        free_memory(device)
    return result


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits, everywhere in a JSON-like value."""
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _names(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if not names or unknown:
        raise ValueError(f"{option} {text!r}: unknown {unknown or 'empty'}; choose from {allowed}")
    return list(dict.fromkeys(names))


def _search_list(text: str, device: torch.device) -> list[str]:
    if text == "auto":
        return [resolve_precision("auto", device)]
    if text in ("all", "none"):
        return list(TRAIN_PRECISIONS) if text == "all" else []
    return _names(text, TRAIN_PRECISIONS, "--search-precisions")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dlsaudio.bench gpu", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if any)")
    p.add_argument("--sizes", default="small,base", help=f"from {list(WHISPER_SIZES)}")
    p.add_argument("--tiny", action="store_true", help="--sizes tiny and the SSL smoke config")
    p.add_argument("--precisions", default=",".join(TRAIN_PRECISIONS), help="fp32, fp16, bf16")
    p.add_argument("--micro-batch", type=int, default=ASR_SEMINAR["micro_batch"])
    p.add_argument("--accum-steps", type=int, default=ASR_SEMINAR["accum_steps"])
    p.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first")
    p.add_argument("--decode-clips", type=int, default=EVAL_BATCH, help="clips per generate")
    p.add_argument("--new-tokens", type=int, default=ASR_SEMINAR["max_new_tokens"])
    p.add_argument("--max-micro-batch", type=int, default=64, help="search upper bound")
    p.add_argument("--search-precisions", default="auto", help="auto, all, none or a list")
    p.add_argument("--ssl-steps", type=int, default=5, help="SSL steps per epoch (0: skip)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the check and print its JSON (see the module docstring).

    Returns:
        0, or 1 when a configuration failed with a device error.

    Raises:
        SystemExit: 2 for bad options, CUDA that torch cannot see, or no ``openai-whisper``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    lowest = {"micro_batch": 1, "accum_steps": 1, "steps": 1, "warmup": 0, "decode_clips": 1,
              "new_tokens": 1, "max_micro_batch": 1, "ssl_steps": 0}  # fmt: skip
    for name, low in lowest.items():
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    if args.new_tokens > 444:
        parser.error(f"--new-tokens={args.new_tokens}: at most 444 (448 minus the 4-token prefix)")
    try:
        device = parse_device(args.device)
        sizes = ["tiny"] if args.tiny else _names(args.sizes, tuple(WHISPER_SIZES), "--sizes")
        precisions = _names(args.precisions, TRAIN_PRECISIONS, "--precisions")
        search = _search_list(args.search_precisions, device)
    except ValueError as err:
        parser.error(str(err))
    transformers.logging.set_verbosity_error()  # generate()'s notices about its defaults
    started = time.perf_counter()
    report: dict[str, Any] = {
        "environment": environment(device),
        "settings": {k: v for k, v in vars(args).items() if k != "tiny"}
        | {"device": str(device), "sizes": sizes},
        "labels": "Kyrgyz transcripts of dlsaudio/data/sample/asr/manifest.csv, tokenised with "
        "the <|kk|> <|transcribe|> <|notimestamps|> prefix and collated as in the seminar",
        "features": "random (batch, 80, frames) with the model's full window",
        "memory_method": MEMORY_METHOD,
        "whisper": {},
    }
    for size in sizes:
        try:
            cpu_model, processor = build_whisper(size)
        except ImportError as err:  # the Whisper vocabulary comes from openai-whisper
            parser.exit(2, f"{parser.prog}: error: {err}\n")
        entry = {"model": asdict(WHISPER_SIZES[size])}
        entry["model"].update(
            vocab=cpu_model.config.vocab_size,
            n_mels=cpu_model.config.num_mel_bins,
            frames=2 * cpu_model.config.max_source_positions,
            parameters=sum(p.numel() for p in cpu_model.parameters()),
        )
        entry["precisions"] = {
            p: measure_precision(cpu_model, processor, size, p, device, args, search)
            for p in precisions
        }
        report["whisper"][size] = entry
        del cpu_model
        for p, r in entry["precisions"].items():
            rate = r.get("train", {}).get("samples_per_second")
            shown = f"{rate:.3g} samples/s" if rate else r.get("reason") or r.get("error")
            print(f"whisper {size} {p}: {r['status']}, {shown}", file=sys.stderr, flush=True)
    if args.ssl_steps:
        try:
            ssl = ssl_throughput(device, sizes == ["tiny"], args.ssl_steps)
            report["ssl"] = {"status": "measured", **ssl}
        except RuntimeError as err:  # a CUDA error: keep what the Whisper part measured
            failure = "out_of_memory" if is_out_of_memory(err) else "failed"
            report["ssl"] = {"status": failure, "error": _error(err)}
            free_memory(device)
    report["wall_seconds"] = time.perf_counter() - started
    print(json.dumps(_rounded(report), indent=2, ensure_ascii=False))
    statuses = [r["status"] for e in report["whisper"].values() for r in e["precisions"].values()]
    statuses.append(report.get("ssl", {}).get("status"))
    return 1 if "failed" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
