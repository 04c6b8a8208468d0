"""Self-checks for the module-11 homework, and the tiny model they test on.

Each ``check_*`` runs a student's function on a known case, prints what passed, and raises
``AssertionError`` with a message that says what to change when something is wrong, or
``NotImplementedError`` while the student's cell is still the stub.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn

from dlsaudio.asr.train import IGNORE_INDEX, accumulate_gradients, token_loss_sum, whisper_logits
from dlsaudio.sampling import source_probabilities

NOT_IMPLEMENTED = (
    "not implemented yet: fill the cell marked # YOUR CODE HERE, then run this check again"
)


class ToySeq2Seq(nn.Module):
    """A tiny encoder-decoder with Whisper's call signature, for tests and self-checks.

    ``model(input_features=(batch, n_mels, frames), decoder_input_ids=(batch, label_len))``
    returns an object with ``.logits`` ``(batch, label_len, vocab)``. The decoder is a GRU, so
    position ``t`` only sees tokens up to ``t``: right-padding a batch does not change the
    logits of real tokens, as in Whisper's causal decoder.
    """

    def __init__(
        self, n_mels: int = 8, vocab: int = 24, dim: int = 16, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.config = SimpleNamespace(pad_token_id=0, decoder_start_token_id=1, vocab_size=vocab)
        self.encoder = nn.Linear(n_mels, dim)
        self.embed = nn.Embedding(vocab, dim)
        self.decoder = nn.GRU(dim, dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)

    def forward(
        self, input_features: torch.Tensor, decoder_input_ids: torch.Tensor
    ) -> SimpleNamespace:
        context = self.encoder(input_features.mean(-1))  # (batch, dim)
        hidden = self.embed(decoder_input_ids) + context[:, None]  # (batch, label_len, dim)
        out, _ = self.decoder(self.dropout(hidden))
        return SimpleNamespace(logits=self.head(out))  # (batch, label_len, vocab)


def toy_items(
    n: int, *, n_mels: int = 8, frames: int = 12, vocab: int = 24, max_len: int = 9, seed: int = 0
) -> list[dict]:
    """``n`` examples ``{"input_features": (n_mels, frames), "labels": (label_len,)}`` of varied length."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(1, max_len + 1, (1,), generator=g))
        items.append(
            {
                "input_features": torch.randn(n_mels, frames, generator=g),
                "labels": torch.randint(2, vocab, (length,), generator=g),
            }
        )
    return items


def toy_collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack features, right-pad labels with -100."""
    length = max(len(item["labels"]) for item in items)
    labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = item["labels"]
    return {
        "input_features": torch.stack([item["input_features"] for item in items]),
        "labels": labels,
    }


def _grads(model: nn.Module) -> list[torch.Tensor | None]:
    return [
        None if p.grad is None else p.grad.detach().clone()
        for p in model.parameters()
        if p.requires_grad
    ]


def _relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    num = math.sqrt(sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True)))
    den = math.sqrt(sum(float(y.pow(2).sum()) for y in b))
    return num / max(den, 1e-30)


def accumulation_case(k: int = 3, micro: int = 2, seed: int = 0):
    """A known case: ``(model, window, full_batch)`` with labels of very different lengths."""
    torch.manual_seed(seed)
    model = ToySeq2Seq()
    items = toy_items(k * micro, seed=seed, max_len=10)
    # make the micro-batches unequal in token count: short labels first, long ones last
    items.sort(key=lambda item: len(item["labels"]))
    window = [toy_collate(items[i * micro : (i + 1) * micro]) for i in range(k)]
    return model, window, toy_collate(items)


def full_batch_gradients(model: nn.Module, batch: dict) -> list[torch.Tensor]:
    """Gradients of the mean token loss of one batch (the reference)."""
    model.zero_grad(set_to_none=True)
    loss_sum, n_tokens = token_loss_sum(whisper_logits(model, batch), batch["labels"])
    (loss_sum / n_tokens).backward()
    grads = _grads(model)
    model.zero_grad(set_to_none=True)
    return grads


def check_accumulation(fn: Callable, tolerance: float = 1e-5) -> None:
    """Check ``fn(model, window, logits_fn)`` that backpropagates one accumulation window.

    ``fn`` must leave in ``.grad`` the gradient of the whole window's mean token loss, i.e. the
    full-batch gradient, and not step or zero the gradients itself.

    Raises:
        AssertionError: with a message saying what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    model, window, full = accumulation_case()
    reference = full_batch_gradients(model, full)
    try:
        fn(model, window, whisper_logits)
    except NotImplementedError:
        raise NotImplementedError(NOT_IMPLEMENTED) from None
    got = _grads(model)
    model.zero_grad(set_to_none=True)
    if any(g is None for g in got):
        raise AssertionError(
            "some parameters have no gradient after your function: call .backward() on every "
            "micro-batch's loss, and do not call optimizer.zero_grad() or set grads to None inside it"
        )
    error = _relative_error(got, reference)
    if error <= tolerance:
        print(
            f"check passed: the accumulated gradient equals the full-batch gradient (relative error {error:.1e})"
        )
        return
    accumulate_gradients(model, window, logits_fn=whisper_logits, normalization="mean_of_means")
    naive = _grads(model)
    model.zero_grad(set_to_none=True)
    if _relative_error(got, naive) <= tolerance:
        raise AssertionError(
            f"your gradients differ from the full-batch gradient by {error:.1%} (relative): they are "
            "the mean of the micro-batch means. Did you divide each micro-batch by its own token "
            "count? Divide every micro-batch's token-loss SUM by the number of label tokens in the "
            "WHOLE window (count them before the first backward)."
        )
    if _relative_error([g / len(window) for g in got], naive) <= tolerance:
        raise AssertionError(
            f"your gradients differ from the full-batch gradient by {error:.1%} (relative): they are "
            "the SUM of the micro-batch mean losses. Dividing by the number of micro-batches is not "
            "enough either: divide every micro-batch's token-loss SUM by the number of label tokens "
            "in the WHOLE window (count them before the first backward)."
        )
    ratios = [
        float((g * r).sum() / (r * r).sum())
        for g, r in zip(got, reference, strict=True)
        if r.abs().sum() > 0
    ]
    ratio = sum(ratios) / len(ratios)
    if _relative_error([g / ratio for g in got], reference) <= 1e-4:
        raise AssertionError(
            f"your gradients point the right way but are {ratio:.3g} times the full-batch gradient: "
            "divide the sum of token losses by the number of non-padding tokens in the window "
            "(labels != -100), once, and do not also divide by the number of micro-batches"
        )
    raise AssertionError(
        f"your gradients differ from the full-batch gradient by {error:.1%} (relative). Compute "
        "each micro-batch's token-loss sum with token_loss_sum(logits, labels) (padding -100 "
        "ignored), divide it by the window's total token count, and call backward on every micro-batch."
    )


def check_source_probabilities(fn: Callable) -> None:
    """Check ``fn(counts, weights=None, alpha=None) -> {source: p}`` on closed-form cases and errors.

    Raises:
        AssertionError: with a message saying what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    counts = {"ky": 64, "ky_noisy": 16, "kk": 4}
    cases = [
        ("no weights and no alpha (proportional)", {}),
        ("alpha=1 (proportional)", {"alpha": 1.0}),
        ("alpha=0 (uniform over sources)", {"alpha": 0.0}),
        ("alpha=0.5", {"alpha": 0.5}),
        (
            "explicit weights with 'ky_noisy' missing (weight 0)",
            {"weights": {"ky": 1.0, "kk": 3.0}},
        ),
    ]
    for name, kwargs in cases:
        try:
            got = fn(dict(counts), **kwargs)
        except NotImplementedError:
            raise NotImplementedError(NOT_IMPLEMENTED) from None
        expected = source_probabilities(counts, **kwargs)
        if not isinstance(got, dict) or set(got) != set(counts):
            raise AssertionError(
                f"{name}: expected a dict with one probability per source {list(counts)}, got {got!r}"
            )
        if not math.isclose(sum(got.values()), 1.0, abs_tol=1e-6):
            raise AssertionError(
                f"{name}: probabilities sum to {sum(got.values()):.4f}; normalise them to 1"
            )
        wrong = {
            s: (round(float(got[s]), 4), round(p, 4))
            for s, p in expected.items()
            if abs(float(got[s]) - p) > 1e-6
        }
        if wrong:
            raise AssertionError(
                f"{name}: wrong probabilities {{source: (yours, expected)}} = {wrong}; "
                "p_s should be proportional to n_s ** alpha, or to the given weight"
            )
    errors = [
        ("a weight for a source that has no examples", {"weights": {"ky": 1.0, "ru": 1.0}}),
        ("a negative weight", {"weights": {"ky": -1.0, "kk": 2.0}}),
        ("all weights zero", {"weights": {"ky": 0.0, "kk": 0.0}}),
        ("both weights and alpha", {"weights": {"ky": 1.0}, "alpha": 0.5}),
    ]
    for name, kwargs in errors:
        try:
            fn(dict(counts), **kwargs)
        except ValueError:
            continue
        except NotImplementedError:
            raise NotImplementedError(NOT_IMPLEMENTED) from None
        raise AssertionError(
            f"{name} must raise ValueError naming the problem, but nothing was raised"
        )
    print(
        "check passed: proportional, uniform, alpha=0.5 and explicit mixtures; invalid inputs raise ValueError"
    )


def check_sampler(fn: Callable, num_samples: int = 20_000) -> None:
    """Check ``fn(sources, probabilities, num_samples, generator) -> indices``.

    The draw must have ``num_samples`` valid indices, hit each source with its probability
    (chi-square test), be uniform inside a source and be reproducible from the generator.

    Raises:
        AssertionError: with a message saying what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    from scipy.stats import chisquare

    sources = ["ky"] * 60 + ["ky_noisy"] * 30 + ["kk"] * 10
    probabilities = {"ky": 0.2, "ky_noisy": 0.3, "kk": 0.5}

    def run(seed: int) -> list[int]:
        try:
            indices = fn(sources, probabilities, num_samples, torch.Generator().manual_seed(seed))
        except NotImplementedError:
            raise NotImplementedError(NOT_IMPLEMENTED) from None
        return [int(i) for i in indices]

    first = run(0)
    if len(first) != num_samples:
        raise AssertionError(f"wrong length: expected {num_samples} indices, got {len(first)}")
    if min(first) < 0 or max(first) >= len(sources):
        raise AssertionError(
            f"indices must lie in [0, {len(sources)}), got min {min(first)}, max {max(first)}"
        )
    if run(0) != first:
        raise AssertionError(
            "two calls with generators seeded alike gave different draws: pass generator= to torch.multinomial"
        )
    if run(1) == first:
        raise AssertionError("different seeds gave the same draw: use the generator you are given")
    drawn = Counter(sources[i] for i in first)
    observed = [drawn[s] for s in probabilities]
    expected = [p * num_samples for p in probabilities.values()]
    if chisquare(observed, expected).pvalue < 1e-4:
        shares = {s: round(drawn[s] / num_samples, 3) for s in probabilities}
        raise AssertionError(
            f"source frequencies {shares} do not match the targets {probabilities}: give each example "
            "of source s the weight p_s / n_s (n_s = number of examples of s) and draw with replacement"
        )
    kk = Counter(i for i in first if sources[i] == "kk")
    if chisquare([kk[i] for i in range(90, 100)]).pvalue < 1e-4:
        raise AssertionError(
            "examples inside one source are not drawn uniformly: use the same weight for all of them"
        )
    print(
        f"check passed: {num_samples} draws match the source targets, are uniform inside sources and seeded"
    )
