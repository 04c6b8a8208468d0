"""Pre-train (or train supervised), then evaluate on frozen embeddings; write JSON and plots.

Examples::

    python -m dlsaudio.ssl --method infonce --data fsdd:/data/free-spoken-digit-dataset \\
        --minutes 5 --out results/fsdd_infonce
    # a folder of FSDD's training takes only (5-49): hold out validation takes
    python -m dlsaudio.ssl --data fsdd:/data/fsdd-train --test-takes 5-9 --out results/val

The split is by take (:func:`dlsaudio.data.take_split`): the test clips are other recordings
of the training speakers, FSDD's official split by default (takes 0-4). ``results.json``
holds the probe accuracy for each number of labels per class, the kNN accuracy, training
throughput and the embedding health at the end of training; ``--baseline`` adds the same
numbers for the randomly initialised encoder (:func:`dlsaudio.ssl.calibrate_batch_norm`).

A supervised encoder trained on every label has seen them all, so its probe at k labels per
class is not a k-label result: ``--method supervised --labels-per-class 10`` trains on 10
clips per digit, the fair baseline for SSL's probe at k = 10. A previous run in ``--out`` is
not overwritten: pass ``--resume`` to continue it or ``--overwrite`` to replace it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

import torch

from dlsaudio.checkpoint import CheckpointError
from dlsaudio.cli import add_dataclass_arguments, add_out_argument, dataclass_from_args
from dlsaudio.data.waves import ALIGNMENTS, DEFAULT_CLIP_SAMPLES
from dlsaudio.ssl.config import BATCHINGS, TrainConfig
from dlsaudio.ssl.encoders import CONFIGS, ENCODERS
from dlsaudio.ssl.methods import DEFAULT_METHOD, METHODS, TAU_METHODS, make_method
from dlsaudio.ssl.outputs import check_resume, prepare_out, run_bytes, run_settings, write_json

PROJECTIONS = ("tsne", "umap", "none")
#: The command line trains for a time budget; epochs are only an upper bound.
DEFAULT_MINUTES = 5.0
MAX_EPOCHS = 1000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dlsaudio.ssl", description=__doc__.split("\n")[0])
    methods = "infonce = SimCLR's two-view InfoNCE; multiformat = the seminar's wave-vs-mel model; "
    methods += "data2vec = masked prediction of log-mel frames"
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=methods)
    p.add_argument("--data", default="sample", help="sample | fsdd:PATH | audiomnist:PATH")
    takes = "the source's own split, FSDD's official takes 0-4, or DLSAUDIO_TEST_TAKES"
    p.add_argument("--test-takes", help=f"takes held out for testing, e.g. 5-9 (default: {takes})")
    add_out_argument(p, "results.json and plots")
    budget = "training time budget (default: %(default)s)"
    p.add_argument(
        "--minutes", type=float, default=DEFAULT_MINUTES, dest="max_minutes", help=budget
    )
    train = p.add_argument_group("training (dlsaudio.ssl.TrainConfig)")
    add_dataclass_arguments(
        train, TrainConfig, exclude=("max_minutes",), choices={"batching": BATCHINGS}
    )
    train.set_defaults(epochs=MAX_EPOCHS)
    tau = f"InfoNCE temperature of {', '.join(TAU_METHODS)} (default: the method's own)"
    p.add_argument("--tau", type=float, help=tau)
    p.add_argument("--config", choices=CONFIGS, default="small", help="encoder size")
    p.add_argument("--encoder", choices=tuple(ENCODERS), default="mel", help="of 1-encoder methods")
    p.add_argument("--n-mels", type=int, help="mel bins (default: 40)")
    keep = "keep each clip's mean log-mel spectrum (the encoder subtracts it by default)"
    p.add_argument("--no-mean-norm", action="store_true", help=keep)
    p.add_argument("--align", choices=ALIGNMENTS, default="center", help="short clips' place")
    p.add_argument("--draws", type=int, default=5, help="seeded draws per k of the probe")
    few = "supervised only: train on this many labelled clips per digit (default: all)"
    p.add_argument("--labels-per-class", type=int, help=few)
    maps = "2D maps of the test embeddings (several allowed: --projection tsne umap)"
    p.add_argument("--projection", choices=PROJECTIONS, nargs="+", default=["tsne"], help=maps)
    p.add_argument("--baseline", action="store_true", help="also evaluate the untrained encoder")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    args = p.parse_args(argv)
    if args.labels_per_class is not None and args.method != "supervised":
        p.error(
            f"--labels-per-class applies to --method supervised only (got --method "
            f"{args.method}, which trains without labels)"
        )
    if args.method == "data2vec" and args.encoder != "mel":
        p.error(
            f"--method data2vec predicts masked log-mel frames; --encoder {args.encoder} does not apply"
        )
    if args.tau is not None:
        if args.method not in TAU_METHODS:
            p.error(f"--tau applies to {', '.join(TAU_METHODS)}, not to --method {args.method}")
        if not args.tau > 0:
            p.error(f"--tau must be positive, got {args.tau}")
    for option in ("draws", "labels_per_class", "n_mels"):
        value = getattr(args, option)
        if value is not None and value < 1:
            p.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    if args.device is not None:
        _check_device(p, args.device)
    try:
        args.train = dataclass_from_args(TrainConfig, args)
    except ValueError as err:
        field = str(err).split()[0]
        option = "--minutes" if field == "max_minutes" else "--" + field.replace("_", "-")
        p.error(f"{option}: {err}")
    if args.test_takes is not None:
        from dlsaudio.data import parse_takes

        try:
            parse_takes(args.test_takes)
        except ValueError as err:
            p.error(f"--test-takes: {err}")
    return args


def _check_device(p: argparse.ArgumentParser, device: str) -> None:
    try:
        kind = torch.device(device).type
    except RuntimeError:
        p.error(f"--device {device}: not a torch device; use cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        p.error(
            f"--device {device}: no CUDA GPU is visible here (torch.cuda.is_available() is "
            "False); use --device cpu"
        )


def check_clip_length(length: int, method, name: str) -> None:
    """Clips of ``length`` samples must fill the first window of every encoder of ``method``.

    Raises:
        SystemExit: a shorter ``--clip-samples``, naming the encoder and its minimum.
    """
    encoder = max((m for m in method.modules() if hasattr(m, "min_time")), key=lambda m: m.min_time)
    if length < encoder.min_time:
        sys.exit(
            f"error: --clip-samples {length}: the {type(encoder).__name__} of {name} needs "
            f"clips of at least {encoder.min_time} samples (one analysis window); give "
            f"--clip-samples >= {encoder.min_time}, or leave it out for 1 s clips"
        )


def load_split(data: str, test_takes: str | None):
    """``(train, test)`` data sets for a ``--data`` value, split by take."""
    from dlsaudio.data import load_digits, take_split

    return take_split(load_digits(data), test_takes)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the command line; returns the results written to ``OUT/results.json``."""
    import matplotlib

    matplotlib.use("Agg")

    from dlsaudio.checkpoint import read_checkpoint
    from dlsaudio.data import WaveCache
    from dlsaudio.data.digits import format_takes
    from dlsaudio.ssl.evaluation import (
        calibrate_batch_norm,
        extract_embeddings,
        sample_per_class,
        score,
    )
    from dlsaudio.ssl.plots import plot_embeddings, plot_history, plot_label_efficiency
    from dlsaudio.ssl.train import CHECKPOINT_KEYS, fit

    args = parse_args(argv)
    torch.manual_seed(args.seed)
    kwargs = {} if args.tau is None else {"tau": args.tau}
    kwargs["mel_options"] = {"mean_norm": not args.no_mean_norm}
    if args.n_mels is not None:
        kwargs["mel_options"]["n_mels"] = args.n_mels
    method = make_method(args.method, config=args.config, encoder=args.encoder, **kwargs)
    length = args.train.clip_samples or DEFAULT_CLIP_SAMPLES
    check_clip_length(length, method, args.method)
    need = run_bytes(method)
    prepare_out(args.out, resume=args.resume, overwrite=args.overwrite, need_bytes=need)
    settings = run_settings(args)
    saved = args.out / "checkpoint.pt"
    if args.resume:
        check_resume(args.out, settings)
        try:
            read_checkpoint(saved, method, required=CHECKPOINT_KEYS, mmap=True)
        except CheckpointError as err:
            sys.exit(
                f"error: --resume: {err}. To start afresh in {args.out}, pass --overwrite "
                "instead of --resume"
            )
    else:
        write_json(args.out / "run.json", settings)
    try:
        train_set, test_set = load_split(args.data, args.test_takes)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: --data {args.data}: {err}")
    train = WaveCache(train_set, length, args.align)
    test = WaveCache(test_set, length, args.align)
    speakers = len(set(test.speakers))
    split = f"test takes {format_takes(test_set.takes)}: {len(test)} clips of the same "
    split += f"{speakers} speakers as the {len(train)} training clips"
    print(f"{args.data}: {split}", file=sys.stderr)
    fit_on = train
    config = args.train
    if args.labels_per_class is not None:
        picked = sample_per_class(train.labels.numpy(), args.labels_per_class, args.seed)
        fit_on = train.subset(picked)
        if len(fit_on) < config.batch_size:
            config = TrainConfig(**{**asdict(config), "batch_size": len(fit_on)})
            args.batch_size = config.batch_size
        batches = f"batches of {config.batch_size}"
        print(f"training on {len(fit_on)} labelled clips, {batches}", file=sys.stderr)

    def evaluate(model) -> tuple[dict, object]:
        e_train, e_test = extract_embeddings(model, train), extract_embeddings(model, test)
        return score(e_train, e_test, draws=args.draws, seed=args.seed), e_test

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    method.to(device)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "split": split}
    curves = {}
    if args.baseline:
        untrained = make_method(args.method, config=args.config, encoder=args.encoder, **kwargs)
        untrained.load_state_dict(method.state_dict())
        calibrate_batch_norm(untrained.to(device), train)
        results["random_init"], _ = evaluate(untrained)
        curves["random init"] = results["random_init"]["probe"]
    start = time.perf_counter()
    show = not args.no_progress
    history = fit(
        method, fit_on, config, device=device, checkpoint=saved, resume=args.resume, progress=show
    )
    trained, e_test = evaluate(method)
    rows = history.steps[-20:]  # the embedding health at the end of training, averaged
    keys = ("std", "std_healthy", "effective_rank", "alignment", "uniformity")
    health = {k: sum(row[k] for row in rows) / len(rows) for k in keys} if rows else {}
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
        health=health,
    )
    write_json(args.out / "history.json", history.to_dict())
    plot_history(history).savefig(args.out / "history.png", dpi=100)
    plot_label_efficiency(curves).savefig(args.out / "label_efficiency.png", dpi=100)
    for projection in dict.fromkeys(args.projection):
        if projection != "none":
            fig = plot_embeddings(e_test, method=projection, title=f"{args.method}, test clips")
            fig.savefig(args.out / f"embeddings_{projection}.png", dpi=100)
    write_json(args.out / "results.json", results)
    print(json.dumps({k: results[k] for k in ("probe", "knn", "clips_per_second")}, indent=2))
    return results


if __name__ == "__main__":
    main()
