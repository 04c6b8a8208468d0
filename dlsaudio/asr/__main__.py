"""Fine-tune Whisper for Kyrgyz from the command line: in one process, or under torchrun.

Example (a GPU box; ``torchrun`` runs the same command on every GPU)::

    python -m dlsaudio.asr --model openai/whisper-small --data common_voice:/data/cv/ky \\
        --steps 3000 --micro-batch 8 --accum-steps 2 --lr 1e-5 --warmup 300 --out results/ky
    torchrun --nproc_per_node 2 -m dlsaudio.asr --model openai/whisper-small ...

The options are the fields of :class:`FineTuneConfig` (``--help`` lists them). The training
split of ``--data`` is drawn by :class:`dlsaudio.asr.sampling.SourceWeightedSampler` (``--weights``
or ``--alpha`` set the mixture of sources; each process gets its shard of the same draw) and
trained with the exact gradient accumulation of :func:`dlsaudio.asr.train.train`: the
effective batch is micro-batch x accum-steps x processes. The test split is scored before and
after training (WER and CER, raw and normalised, overall and per source) on the main process.

Written to ``--out``: ``results.json``, ``history.json``, ``history.png``, the fine-tuned model
and processor in ``model/`` (``save_pretrained``), and ``last.pt`` to continue with ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict

import torch

from dlsaudio.asr.options import FineTuneConfig
from dlsaudio.asr.resume import CHECKPOINT_KEYS, CHECKPOINT_NAME
from dlsaudio.asr.sampling import source_counts, source_probabilities
from dlsaudio.asr.train import (
    TrainingDiverged,
    init_distributed,
    plot_history,
    train,
    unwrap,
    warmup_linear_decay,
    wrap_model,
)
from dlsaudio.asr.whisper import TINY_LOCAL
from dlsaudio.checkpoint import CheckpointError, check_output_dir, read_checkpoint, state_nbytes

PROG = "python -m dlsaudio.asr"


def parse_args(argv: Sequence[str] | None = None) -> FineTuneConfig:
    """The :class:`FineTuneConfig` of a command line; exits with a message on a bad value."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(FineTuneConfig, prog=PROG, description=__doc__.split("\n")[0])
    try:
        (config,) = parser.parse_args_into_dataclasses(argv)
    except ValueError as err:
        parser.error(str(err))
    return config


def load_splits(config: FineTuneConfig):
    """``(train, test)`` ASR datasets for the command line's data options."""
    from dlsaudio.data import load_asr_splits

    # data without a test split (the sample, a manifest) hold one out and print how
    train_data, test_data = load_asr_splits(config.data, **config.data_options)
    train = _first_of_shuffled(train_data, config.max_train, config.seed)
    _check_weights_survive_the_cut(config, train_data.sources, train.sources)
    return train, _first_of_shuffled(test_data, config.max_test, config.seed)


def _check_weights_survive_the_cut(
    config: FineTuneConfig, before: Sequence[str], after: Sequence[str]
) -> None:
    """A source named in ``--weights`` that the data have must keep rows after ``--max-train``.

    Raises:
        ValueError: ``--max-train`` kept no row of a named source; the message says so.
    """
    counts, kept = source_counts(before), set(after)
    dropped = [s for s in config.source_weights or {} if s in counts and s not in kept]
    if dropped:
        have = ", ".join(f"{counts[s]} of {s}" for s in dropped)
        raise ValueError(
            f"--weights names {dropped}, but --max-train {config.max_train} kept none of "
            f"their rows (the training split has {have}); raise --max-train or drop the weight"
        )


def _first_of_shuffled(data, limit: int | None, seed: int):
    """``limit`` utterances drawn at random (seeded, kept in their order), so that a limit
    keeps every source of a corpus sorted by source; all of them for ``None``."""
    if limit is None or limit >= len(data):
        return data
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:limit]
    return data.subset(sorted(keep.tolist()))


@contextlib.contextmanager
def _refused(*errors: type[Exception]):
    """Turn the checks' errors (default: ``ValueError``, which includes ``CheckpointError``)
    into a command-line error: a message, no traceback."""
    caught = errors or (ValueError,)
    try:
        yield
    except caught as err:
        raise SystemExit(f"{PROG}: error: {err}") from None


def check_model_fits(config: FineTuneConfig, model, processor) -> None:
    """What can only be checked with the model: transcript length, disk space and ``--resume``.

    Raises:
        ValueError: ``--max-new-tokens`` beyond the decoder's positions, too little free space
            in ``--out``, or a checkpoint in ``--out`` without ``--resume``.
        CheckpointError: ``--resume`` with a checkpoint this run cannot continue.
    """
    positions, prefix = model.config.max_target_positions, len(processor.tokenizer.prefix_tokens)
    if config.max_new_tokens > positions - prefix:
        raise ValueError(
            f"--max-new-tokens must be in [1, {positions - prefix}], got {config.max_new_tokens}: "
            f"the decoder has {positions} positions, {prefix} of them taken by the prefix of "
            "special tokens"
        )
    path = config.out / CHECKPOINT_NAME
    if config.resume and path.exists():
        read_checkpoint(path, model, required=CHECKPOINT_KEYS, batch_size=config.micro_batch)
    elif path.exists():
        raise ValueError(
            f"--out {config.out} holds the checkpoint of an earlier run ({path}); pass --resume "
            "to continue it, or give another --out (or delete the folder) to start afresh"
        )
    weights = state_nbytes(model)
    existing = path.stat().st_size if path.exists() else 0
    # a checkpoint is the weights and AdamW's two moments; a new one is written beside the last
    check_output_dir(config.out, need_bytes=2 * 3 * weights + weights - existing)


def check_training_data(config: FineTuneConfig, sources: Sequence[str], world_size: int) -> None:
    """Enough utterances for one micro-batch per process, and a mixture of sources they have.

    Raises:
        ValueError: the message names the options to change.
    """
    needed = (config.micro_batch - 1) * world_size + 1  # every process gets a full micro-batch
    if len(sources) < needed:
        raise ValueError(
            f"{len(sources)} training utterances are fewer than one micro-batch per process "
            f"(--micro-batch {config.micro_batch} x {world_size} process(es)): give "
            f"--max-train >= {needed} (or more data), or a smaller --micro-batch"
        )
    try:
        source_probabilities(source_counts(sources), config.source_weights, config.alpha)
    except ValueError as err:
        option = "--weights" if config.weights is not None else "--alpha"
        raise ValueError(f"{option}: {err}") from None


def score(model, processor, examples, *, max_new_tokens: int, progress: bool = True) -> dict:
    """WER/CER overall and per source on ``examples``."""
    from dlsaudio.asr import error_report, evaluate_examples

    report, hyps = evaluate_examples(
        model, processor, examples, max_new_tokens=max_new_tokens, progress=progress
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
    import transformers
    from torch.utils.data import DataLoader

    from dlsaudio.asr import (
        DataCollatorSpeechSeq2SeqWithPadding,
        asr_eval_fn,
        load_whisper,
        prepare_dataset,
    )
    from dlsaudio.asr.sampling import SourceWeightedSampler

    config = parse_args(argv)
    transformers.logging.set_verbosity_error()  # generate()'s notices about its own defaults
    env = init_distributed()
    torch.manual_seed(config.seed)
    with _refused():
        check_output_dir(config.out)
    tiny = TINY_LOCAL if config.model == "tiny-local" else {}
    model, processor = load_whisper(config.model, language=config.language, **tiny)
    with _refused():
        check_model_fits(config, model, processor)
    with _refused():
        train_data, test_data = load_splits(config)
    with _refused():
        check_training_data(config, train_data.sources, env.world_size)
    show = env.is_main and not config.no_progress
    bad_audio = {"max_bad_audio": config.max_bad_audio, "max_bad_audio_name": "--max-bad-audio"}
    with _refused():
        train_examples, train_report = prepare_dataset(
            train_data, processor, progress=show, **bad_audio
        )
        test_examples, test_report = prepare_dataset(
            test_data, processor, progress=show, **bad_audio
        )
    with _refused():
        check_training_data(config, train_examples.sources, env.world_size)
    model.to(env.device)

    def scored(model) -> dict:
        return score(
            model,
            processor,
            test_examples,
            max_new_tokens=config.max_new_tokens,
            progress=not config.no_progress,
        )

    results: dict = {
        "args": {k: str(v) for k, v in asdict(config).items()},
        "world_size": env.world_size,
        "effective_batch": config.micro_batch * config.accum_steps * env.world_size,
        "train": train_report,
        "test": test_report,
    }
    sampler = SourceWeightedSampler(
        train_examples.sources,
        weights=config.source_weights,
        alpha=config.alpha,
        seed=config.seed,
        rank=env.rank,
        world_size=env.world_size,
    )
    if env.is_main:
        print(sampler.describe().round(3).to_string())
        results["before"] = scored(model)
        print(f"zero-shot: WER {results['before']['wer']:.3f}, CER {results['before']['cer']:.3f}")
    env.barrier()

    loader = DataLoader(
        train_examples,
        batch_size=config.micro_batch,
        sampler=sampler,
        collate_fn=DataCollatorSpeechSeq2SeqWithPadding(
            processor, decoder_start_token_id=model.config.decoder_start_token_id
        ),
        num_workers=config.num_workers,
        drop_last=True,
    )
    model = wrap_model(model, env)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    started = time.perf_counter()
    with _refused(CheckpointError, TrainingDiverged):
        history = train(
            model,
            loader,
            config.train_config(),
            optimizer=optimizer,
            scheduler=warmup_linear_decay(optimizer, config.warmup, config.steps),
            eval_fn=asr_eval_fn(processor, test_examples, max_new_tokens=config.max_new_tokens),
            env=env,
        )
    if not env.is_main:
        torch.distributed.destroy_process_group()
        return None
    results["train_seconds"] = round(time.perf_counter() - started, 1)
    results["steps"] = len(history.steps)
    results["after"] = scored(unwrap(model))
    print(
        f"WER {results['before']['wer']:.3f} -> {results['after']['wer']:.3f}, "
        f"CER {results['before']['cer']:.3f} -> {results['after']['cer']:.3f}"
    )
    unwrap(model).save_pretrained(config.out / "model")
    processor.save_pretrained(config.out / "model")
    (config.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (config.out / "history.json").write_text(
        json.dumps({"steps": history.steps, "eval": history.eval}, indent=2)
    )
    plot_history(history).savefig(config.out / "history.png", dpi=100)
    if env.world_size > 1:
        torch.distributed.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
