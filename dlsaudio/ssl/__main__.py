"""Pre-train (or train supervised), then evaluate on frozen embeddings; write JSON and plots.

Example::

    python -m dlsaudio.ssl --method infonce --data fsdd:/data/free-spoken-digit-dataset \\
        --minutes 5 --out results/fsdd_infonce

The split is speaker-disjoint (``--test-speakers`` held out) for the bundled sample and
AudioMNIST, and the official split (takes 0-4 are test) for FSDD. ``results.json`` holds the
probe accuracy for each number of labels per class, the kNN accuracy, training throughput
and the embedding health at the end of training; with ``--baseline`` also the same numbers
for the randomly initialised encoder.

A supervised encoder trained on every label has seen them all, so its probe at k labels per
class is not a k-label result. ``--method supervised --labels-per-class 10`` trains it on 10
clips per digit: the fair baseline for SSL's probe at k = 10.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from dlsaudio.encoders import CONFIGS
from dlsaudio.ssl.methods import METHODS, make_method


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dlsaudio.ssl", description=__doc__.split("\n")[0])
    p.add_argument(
        "--method",
        choices=METHODS,
        default="infonce",
        help="infonce = two-view InfoNCE on the log-mel encoder (= simclr); multiformat = the seminar's waveform-vs-log-mel model",
    )
    p.add_argument(
        "--data",
        default="sample",
        help="sample | fsdd:PATH | audiomnist:PATH (see dlsaudio.data.load_digits)",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for results.json and plots")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    p.add_argument("--epochs", type=int, default=1000, help="upper bound on epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--config", choices=CONFIGS, default="small", help="encoder size")
    p.add_argument(
        "--encoder",
        choices=("mel", "wave"),
        default="mel",
        help="encoder of single-encoder methods",
    )
    p.add_argument(
        "--test-speakers",
        type=int,
        default=3,
        help="speakers held out (sample, AudioMNIST); FSDD uses its official split",
    )
    p.add_argument("--draws", type=int, default=5, help="seeded draws per k of the probe")
    p.add_argument(
        "--labels-per-class",
        type=int,
        default=None,
        help="supervised only: train on this many labelled clips per digit (default: all)",
    )
    p.add_argument(
        "--projection",
        choices=("tsne", "umap", "none"),
        nargs="+",
        default=["tsne"],
        help="2D maps of the test embeddings (several allowed: --projection tsne umap)",
    )
    p.add_argument("--baseline", action="store_true", help="also evaluate the untrained encoder")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = p.parse_args(argv)
    if args.labels_per_class is not None:
        if args.method != "supervised":
            p.error(
                f"--labels-per-class applies to --method supervised only (got --method "
                f"{args.method}, which trains without labels)"
            )
        if args.labels_per_class < 1:
            p.error(f"--labels-per-class must be >= 1, got {args.labels_per_class}")
    return args


def load_split(data: str, test_speakers: int, seed: int):
    """``(train, test)`` datasets for a ``--data`` value."""
    from dlsaudio.data import fsdd_official_split, load_digits, speaker_split

    dataset = load_digits(data)
    if data.startswith("fsdd:"):
        return fsdd_official_split(dataset)
    return speaker_split(dataset, test_speakers, seed=seed)


def _mean_health(history, last: int = 20) -> dict[str, float]:
    rows = history.steps[-last:]
    keys = ("std", "std_healthy", "effective_rank", "alignment", "uniformity")
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys} if rows else {}


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the command line; returns the results written to ``OUT/results.json``."""
    import matplotlib

    matplotlib.use("Agg")

    from dlsaudio.data import WaveCache
    from dlsaudio.ssl.evaluation import (
        DEFAULT_KS,
        extract_embeddings,
        knn_accuracy,
        label_efficiency,
        sample_per_class,
    )
    from dlsaudio.ssl.plots import plot_embeddings, plot_history, plot_label_efficiency
    from dlsaudio.ssl.train import fit

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = load_split(args.data, args.test_speakers, args.seed)
    train, test = WaveCache(train_set), WaveCache(test_set)
    print(f"{args.data}: {len(train)} train clips, {len(test)} test clips", file=sys.stderr)
    fit_on = train
    if args.labels_per_class is not None:
        few = sample_per_class(train.labels.numpy(), args.labels_per_class, seed=args.seed)
        fit_on = WaveCache(train_set.subset(few))
        if len(fit_on) < args.batch_size:
            args.batch_size = len(fit_on)
        print(
            f"training on {len(fit_on)} labelled clips, batches of {args.batch_size}",
            file=sys.stderr,
        )

    def evaluate(model) -> dict:
        e_train, e_test = extract_embeddings(model, train), extract_embeddings(model, test)
        curve = label_efficiency(e_train, e_test, DEFAULT_KS, draws=args.draws, seed=args.seed)
        return {
            "probe": curve,
            "knn": knn_accuracy(e_train, e_test, k=min(5, len(e_train))),
        }, e_test

    torch.manual_seed(args.seed)
    method = make_method(args.method, config=args.config, encoder=args.encoder)
    if args.device:
        method.to(args.device)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    curves = {}
    if args.baseline:
        results["random_init"], _ = evaluate(method)
        curves["random init"] = results["random_init"]["probe"]
    start = time.perf_counter()
    history = fit(
        method,
        fit_on,
        epochs=args.epochs,
        max_minutes=args.minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        checkpoint=args.out / "checkpoint.pt",
        resume=False,
        progress=not args.no_progress,
    )
    trained, e_test = evaluate(method)
    curves[args.method] = trained["probe"]
    results.update(
        trained,
        train_clips=len(train),
        test_clips=len(test),
        labels_seen_in_training=(0 if not method.needs_labels else len(fit_on)),
        steps=len(history.steps),
        epochs=len(history.epochs),
        wall_seconds=time.perf_counter() - start,
        clips_per_second=history.clips_per_second(),
        final_loss=history.steps[-1]["loss"] if history.steps else None,
        health=_mean_health(history),
    )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "history.json").write_text(json.dumps(history.to_dict()))
    plot_history(history).savefig(args.out / "history.png", dpi=100)
    plot_label_efficiency(curves).savefig(args.out / "label_efficiency.png", dpi=100)
    for projection in dict.fromkeys(args.projection):
        if projection != "none":
            fig = plot_embeddings(e_test, method=projection, title=f"{args.method}, test clips")
            fig.savefig(args.out / f"embeddings_{projection}.png", dpi=100)
    print(json.dumps({k: results[k] for k in ("probe", "knn", "clips_per_second")}, indent=2))
    return results


if __name__ == "__main__":
    main()
