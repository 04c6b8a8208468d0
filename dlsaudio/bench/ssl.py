"""SSL benchmark: ``python -m dlsaudio.bench ssl`` prints one JSON object.

- ``info_nce``: forward + backward time of :func:`dlsaudio.ssl.losses.info_nce` (one
  cross-entropy over the masked ``(2N, 2N)`` logits) at N = 256 and 1024 (dim 128), next to
  a straightforward reference written here (the formula term by term with ``exp`` and a
  per-row sum) and, at N = 1024 by default, a common defective version (cosine
  similarity by broadcasting to ``(2N, 2N, dim)``, whole-matrix denominator: slow and wrong;
  about 2 GB of memory at N = 1024). Times are medians in milliseconds.
- ``training``: encoder training throughput in clips per second on CPU for the default
  configuration (:func:`dlsaudio.ssl.methods.make_method` with ``config="small"``, the
  default augmentations, batch 64, 1-s clips at 16 kHz), measured on the epoch after a
  warm-up epoch.
- ``seminar`` (with ``--notebook PATH``): wall time of a notebook executed headless in smoke
  mode by :func:`dlsaudio.notebook_runner.run_notebook` in a fresh process.
- ``label_efficiency`` (with ``--data SOURCE``, :mod:`dlsaudio.bench.label_efficiency`): after the same training budget for each
  (``--minutes``), the probe accuracy at k = 1, 2, 5, 10 and all labels per class (mean and
  spread over ``--draws`` seeded draws of the labelled clips) and the kNN accuracy on the
  held-out takes for the randomly initialised encoder, InfoNCE with the package's defaults and
  any other ``--methods``, with training throughput; and ``supervised_per_k``: for each k, the
  same encoder trained from scratch, for the same time, on exactly the k labelled clips per
  class of each of the probe's draws, scored by its own classifier::

      python -m dlsaudio.bench ssl --data fsdd:/data/fsdd-train --test-takes 5-9 --skip-losses
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from dlsaudio.bench.label_efficiency import bench_label_efficiency, plot_curves
from dlsaudio.ssl import losses
from dlsaudio.ssl.config import BATCHINGS


def reference_info_nce(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Straightforward NT-Xent, the printed formula term by term: ``exp`` of the ``(2N, 2N)``
    cosine similarities over ``tau``, the diagonal masked out, a sum per row for the
    denominator, the positive's term for the numerator. Correct (the seminar's formula with
    the per-row sum), but without the log-sum-exp of a cross-entropy."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, dim)
    similarity = torch.exp(z @ z.T / tau)  # (2N, 2N)
    not_self = 1.0 - torch.eye(2 * n)
    denominator = (similarity * not_self).sum(dim=1)  # (2N,) one sum per row
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    numerator = similarity[torch.arange(2 * n), partner]  # (2N,)
    return -torch.log(numerator / denominator).mean()


def seminar_info_nce(
    z_i: torch.Tensor, z_j: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """A common defective loss: broadcast cosine similarity, whole-matrix denominator.

    Kept only to measure it. Wrong: every row shares one normaliser (see
    the seminar's ``info_nce_whole_matrix``); slow: it materialises a
    ``(2N, 2N, dim)`` tensor.
    """
    batch_size = z_i.shape[0]
    z = torch.cat([z_i, z_j], dim=0)
    sim = F.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=2)  # (2N, 2N) via (2N, 2N, dim)
    sim_ij = torch.diag(sim, batch_size)
    sim_ji = torch.diag(sim, -batch_size)
    positives = torch.cat([sim_ij, sim_ji], dim=0)
    numerator = torch.exp(positives / temperature)
    mask = (~torch.eye(2 * batch_size, dtype=torch.bool)).float()
    denominator = mask * torch.exp(sim / temperature)
    loss = -torch.log(numerator / torch.sum(denominator))
    return torch.sum(loss) / (2 * batch_size)


def time_loss(fn: Callable, n: int, dim: int = 128, repeats: int = 10, warmup: int = 2) -> float:
    """Median forward + backward time of ``fn(z1, z2)`` in milliseconds."""
    g = torch.Generator().manual_seed(n)
    z1 = torch.randn(n, dim, generator=g).requires_grad_()
    z2 = torch.randn(n, dim, generator=g).requires_grad_()
    times = []
    for i in range(warmup + repeats):
        z1.grad = z2.grad = None
        start = time.perf_counter()
        fn(z1, z2).backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def bench_info_nce(
    sizes: tuple[int, ...] = (256, 1024), seminar_n: int | None = 1024, repeats: int = 10
) -> dict:
    """Timings of the package's, the reference and the seminar's NT-Xent."""
    out: dict = {"dim": 128, "unit": "ms, forward + backward, median"}
    for n in sizes:
        ours = time_loss(losses.info_nce, n, repeats=repeats)
        ref = time_loss(reference_info_nce, n, repeats=repeats)
        out[f"N={n}"] = {
            "dlsaudio": round(ours, 2),
            "reference": round(ref, 2),
            "ratio": round(ours / ref, 2),
        }
    if seminar_n is not None:
        slow = time_loss(seminar_info_nce, seminar_n, repeats=2, warmup=1)
        ref = out.get(f"N={seminar_n}", {}).get("reference") or time_loss(
            reference_info_nce, seminar_n
        )
        g = torch.Generator().manual_seed(0)
        z1, z2 = torch.randn(seminar_n, 128, generator=g), torch.randn(seminar_n, 128, generator=g)
        out["seminar_original"] = {
            "N": seminar_n,
            "ms": round(slow, 1),
            "times_slower_than_reference": round(slow / ref, 1),
            "loss_minus_correct_loss": round(
                float(seminar_info_nce(z1, z2) - losses.info_nce(z1, z2)), 3
            ),
            "log_2N": round(float(torch.log(torch.tensor(2.0 * seminar_n))), 3),
        }
    return out


def bench_training(method: str = "infonce", clips: int = 256, batch_size: int = 64) -> dict:
    """Clips per second of :func:`dlsaudio.ssl.train.fit` on CPU, measured after a warm-up epoch."""
    from dlsaudio.ssl.methods import make_method
    from dlsaudio.ssl.train import fit

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = [{"wave": 0.1 * torch.randn(16000, generator=g), "label": i % 10} for i in range(clips)]
    model = make_method(method)
    history = fit(model, data, epochs=2, batch_size=batch_size, device="cpu", progress=False)
    last = history.epochs[-1]
    return {
        "method": method,
        "config": "small",
        "batch_size": batch_size,
        "clip_seconds": 1.0,
        "clips_per_second": round(last["clips_per_second"], 1),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def bench_seminar(path: Path, timeout: float = 1800) -> dict:
    """Wall time of a notebook executed headless in smoke mode.

    It runs :func:`dlsaudio.notebook_runner.run_notebook` in a fresh process (its command line), so
    the timing includes no state of this one.

    Raises:
        RuntimeError: the notebook failed or did not report its time.
    """
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "dlsaudio.notebooks", "run", str(path), "--out", out_dir],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DLSAUDIO_SMOKE": "1"},
        )
        wall = time.perf_counter() - start
    if proc.returncode != 0 or "{" not in proc.stdout:
        raise RuntimeError(
            f"running {path} failed (exit code {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {
        "notebook": str(path),
        "smoke": True,
        "seconds": round(report["seconds"], 1),
        "seconds_with_process_start": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the SSL benchmark and print its JSON; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.bench ssl", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--skip-losses", action="store_true", help="do not time info_nce")
    parser.add_argument(
        "--skip-training", action="store_true", help="do not measure training throughput"
    )
    parser.add_argument(
        "--notebook", type=Path, default=None, help="also time this notebook in smoke mode"
    )
    parser.add_argument("--method", default="infonce", help="method for the throughput measurement")
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed repetitions per info_nce size"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 1024],
        help="batch sizes N for the info_nce timing",
    )
    parser.add_argument(
        "--seminar-n",
        type=int,
        default=1024,
        help="N for the defective broadcast loss (slow); 0 skips it",
    )
    group = parser.add_argument_group("label efficiency on real recordings")
    group.add_argument("--data", default=None, help="digits source, e.g. fsdd:PATH")
    group.add_argument("--test-takes", default=None, help="held-out takes, e.g. 5-9")
    group.add_argument("--minutes", type=float, default=5.0, help="training budget per model")
    group.add_argument(
        "--methods", nargs="+", default=["infonce"], help="pre-training methods to compare"
    )
    group.add_argument("--draws", type=int, default=5, help="labelled subsets drawn per k")
    group.add_argument(
        "--batching",
        choices=BATCHINGS,
        default="speaker",
        help="pre-training batches: same-speaker (the notebooks' recipe) or shuffled",
    )
    group.add_argument(
        "--plot", type=Path, default=None, help="save the label-efficiency figure (PNG) here"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    if args.notebook is not None and not args.notebook.is_file():
        parser.error(f"--notebook {args.notebook}: no such file")

    result: dict = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if not args.skip_losses:
        result["info_nce"] = bench_info_nce(
            tuple(args.sizes), seminar_n=args.seminar_n or None, repeats=args.repeats
        )
    if not args.skip_training:
        result["training"] = bench_training(args.method)
    if args.notebook is not None:
        result["seminar"] = bench_seminar(args.notebook)
    if args.data is not None:
        result["label_efficiency"] = bench_label_efficiency(
            args.data,
            test_takes=args.test_takes,
            minutes=args.minutes,
            methods=tuple(args.methods),
            draws=args.draws,
            batching=args.batching,
        )
        if args.plot is not None:
            plot_curves(result["label_efficiency"]).savefig(args.plot, dpi=100)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
