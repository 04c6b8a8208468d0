"""Fine-tune Whisper for Kyrgyz from the command line: in one process, or under torchrun.

Example (a GPU box; ``torchrun`` runs the same command on every GPU)::

    python -m dlsaudio.asr --model openai/whisper-small --data common_voice:/data/cv/ky \\
        --steps 3000 --micro-batch 8 --accum-steps 2 --lr 1e-5 --warmup 300 --out results/ky
    torchrun --nproc_per_node 2 -m dlsaudio.asr --model openai/whisper-small ...

The training split of ``--data`` is drawn by :class:`dlsaudio.sampling.SourceWeightedSampler`
(``--weights`` or ``--alpha`` set the mixture of sources; each process gets its shard of the
same draw) and trained with the exact gradient accumulation of :func:`dlsaudio.asr.train.train`:
the effective batch is micro-batch x accum-steps x processes. The test split is scored before
and after training (WER and CER, raw and normalised, overall and per source) on the main
process.

Written to ``--out``: ``results.json``, ``history.json``, ``history.png``, the fine-tuned model
and processor in ``model/`` (``save_pretrained``), and ``last.pt`` to continue with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

TINY_LOCAL = {"d_model": 64, "layers": 2, "heads": 2, "chunk_seconds": 6}
"""Sizes of the offline tiny model (``--model tiny-local``), as in the seminar's smoke mode."""


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"ky_tts=2,kk_tts=1"`` -> ``{"ky_tts": 2.0, "kk_tts": 1.0}``.

    Raises:
        ValueError: an entry is not ``source=number``.
    """
    if text is None:
        return None
    weights = {}
    for entry in text.split(","):
        name, _, value = entry.partition("=")
        try:
            if not name.strip():
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--weights entry {entry!r} is not source=number; "
                "write for example --weights ky_tts=2,kk_tts=1"
            ) from None
    return weights


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dlsaudio.asr", description=__doc__.split("\n")[0])
    p.add_argument(
        "--model",
        default="openai/whisper-small",
        help="Hub id or save_pretrained folder; tiny-local builds the offline tiny model",
    )
    p.add_argument(
        "--language",
        default="kk",
        help="language token (Whisper has no Kyrgyz one; kk = Kazakh); none = no language token",
    )
    p.add_argument(
        "--data",
        default="sample",
        help="sample | common_voice:PATH | manifest:PATH | hf:NAME[:CONFIG] (see dlsaudio.data.load_asr)",
    )
    p.add_argument("--hf-revision", default=None, help="hf: only; refs/convert/parquet for FLEURS")
    p.add_argument("--text-column", default="sentence", help="hf: only; FLEURS: transcription")
    p.add_argument("--out", required=True, type=Path, help="folder for results, model, checkpoint")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps")
    p.add_argument("--micro-batch", type=int, default=8, help="utterances per micro-batch")
    p.add_argument(
        "--accum-steps", type=int, default=2, help="micro-batches per optimizer step, per process"
    )
    p.add_argument("--lr", type=float, default=1e-5, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=300, help="warmup steps, then linear decay to 0")
    p.add_argument("--eval-every", type=int, default=500, help="steps between WER/CER evaluations")
    p.add_argument(
        "--weights", default=None, help="source mixture, e.g. ky_tts=2,kk_tts=1 (others: 0)"
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="temperature mixture: p_s proportional to n_s**alpha",
    )
    p.add_argument(
        "--max-train", type=int, default=None, help="N random training utterances (default: all)"
    )
    p.add_argument("--max-test", type=int, default=500, help="N random test utterances")
    p.add_argument("--max-new-tokens", type=int, default=225, help="longest transcript")
    p.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="training"
    )
    p.add_argument("--num-workers", type=int, default=2, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    for name in ("steps", "micro_batch", "accum_steps", "eval_every", "max_new_tokens"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.warmup < args.steps:
        p.error(f"--warmup must be in [0, --steps), got {args.warmup} with --steps {args.steps}")
    if args.weights is not None and args.alpha is not None:
        p.error("give --weights or --alpha, not both")
    try:
        args.weights = parse_weights(args.weights)
    except ValueError as err:
        p.error(str(err))
    if args.language.lower() == "none":
        args.language = None
    return args


def load_splits(args: argparse.Namespace):
    """``(train, test)`` ASR datasets for the command line's data options."""
    from dlsaudio.data import load_asr

    options = {"revision": args.hf_revision, "text_column": args.text_column}
    # data without a test split (the sample, a manifest) holds one out and prints how
    train_data = load_asr(args.data, split="train", **options)
    test_data = load_asr(args.data, split="test", **options)
    return _first_of_shuffled(train_data, args.max_train, args.seed), _first_of_shuffled(
        test_data, args.max_test, args.seed
    )


def _first_of_shuffled(data, limit: int | None, seed: int):
    """``limit`` utterances drawn at random (seeded, kept in their order), so that a limit
    keeps every source of a corpus sorted by source; all of them for ``None``."""
    if limit is None or limit >= len(data):
        return data
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:limit]
    return data.subset(sorted(keep.tolist()))


def score(model, processor, examples, args) -> dict:
    """WER/CER overall and per source on ``examples``."""
    from dlsaudio.asr import error_report, evaluate_examples

    report, hyps = evaluate_examples(
        model,
        processor,
        examples,
        max_new_tokens=args.max_new_tokens,
        progress=not args.no_progress,
    )
    per_source = {}
    for source in sorted(set(examples.sources)):
        rows = [i for i, s in enumerate(examples.sources) if s == source]
        per_source[source] = error_report(
            [examples.texts[i] for i in rows], [hyps[i] for i in rows]
        )
    return {**report, "per_source": per_source}


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Run the command line; returns the results on the main process (None on the others)."""
    import matplotlib

    matplotlib.use("Agg")
    import torch.distributed as dist
    import transformers
    from torch.utils.data import DataLoader

    from dlsaudio.asr import (
        DataCollatorSpeechSeq2SeqWithPadding,
        asr_eval_fn,
        load_whisper,
        prepare_dataset,
    )
    from dlsaudio.asr.train import (
        init_distributed,
        plot_history,
        train,
        unwrap,
        warmup_linear_decay,
        wrap_model,
    )
    from dlsaudio.sampling import SourceWeightedSampler

    args = parse_args(argv)
    transformers.logging.set_verbosity_error()  # generate()'s notices about its own defaults
    env = init_distributed()
    torch.manual_seed(args.seed)
    if env.is_main:
        args.out.mkdir(parents=True, exist_ok=True)
    train_data, test_data = load_splits(args)
    tiny = TINY_LOCAL if args.model == "tiny-local" else {}
    model, processor = load_whisper(args.model, language=args.language, **tiny)
    show = env.is_main and not args.no_progress
    train_examples, train_report = prepare_dataset(train_data, processor, progress=show)
    test_examples, test_report = prepare_dataset(test_data, processor, progress=show)
    model.to(env.device)

    results: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "world_size": env.world_size,
        "effective_batch": args.micro_batch * args.accum_steps * env.world_size,
        "train": train_report,
        "test": test_report,
    }
    sampler = SourceWeightedSampler(
        train_examples.sources,
        weights=args.weights,
        alpha=args.alpha,
        seed=args.seed,
        rank=env.rank,
        world_size=env.world_size,
    )
    if env.is_main:
        print(sampler.describe().round(3).to_string())
        results["before"] = score(model, processor, test_examples, args)
        print(f"zero-shot: WER {results['before']['wer']:.3f}, CER {results['before']['cer']:.3f}")
    if env.world_size > 1:
        dist.barrier()

    loader = DataLoader(
        train_examples,
        batch_size=args.micro_batch,
        sampler=sampler,
        collate_fn=DataCollatorSpeechSeq2SeqWithPadding(
            processor, decoder_start_token_id=model.config.decoder_start_token_id
        ),
        num_workers=args.num_workers,
        drop_last=True,
    )
    model = wrap_model(model, env)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    started = time.perf_counter()
    history = train(
        model,
        loader,
        optimizer=optimizer,
        scheduler=warmup_linear_decay(optimizer, args.warmup, args.steps),
        max_steps=args.steps,
        accum_steps=args.accum_steps,
        eval_fn=asr_eval_fn(processor, test_examples, max_new_tokens=args.max_new_tokens),
        eval_every=args.eval_every,
        precision=args.precision,
        checkpoint_dir=args.out,
        checkpoint_every=args.eval_every,
        resume=args.resume,
        progress=not args.no_progress,
        log_every=0 if args.no_progress else 50,
    )
    if not env.is_main:
        dist.destroy_process_group()
        return None
    results["train_seconds"] = round(time.perf_counter() - started, 1)
    results["steps"] = len(history.train)
    results["after"] = score(unwrap(model), processor, test_examples, args)
    print(
        f"WER {results['before']['wer']:.3f} -> {results['after']['wer']:.3f}, "
        f"CER {results['before']['cer']:.3f} -> {results['after']['cer']:.3f}"
    )
    unwrap(model).save_pretrained(args.out / "model")
    processor.save_pretrained(args.out / "model")
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (args.out / "history.json").write_text(
        json.dumps({"train": history.train, "eval": history.eval}, indent=2)
    )
    plot_history(history).savefig(args.out / "history.png", dpi=100)
    if env.world_size > 1:
        dist.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
