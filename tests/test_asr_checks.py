"""Homework self-checks: pass on the reference, fail with the right message on typical mistakes."""

import pytest
import torch

from dlsaudio.asr.checks import (
    check_accumulation,
    check_sampler,
    check_source_probabilities,
)
from dlsaudio.asr.train import accumulate_gradients, token_loss_sum
from dlsaudio.sampling import example_weights, source_probabilities


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# --------------------------------------------------------------------------- accumulation


def reference_accumulation(model, window, logits_fn):
    return accumulate_gradients(model, window, logits_fn=logits_fn)


def per_micro_batch_mean(model, window, logits_fn):
    for batch in window:
        loss_sum, n = token_loss_sum(logits_fn(model, batch), batch["labels"])
        (loss_sum / n / len(window)).backward()


def sum_of_means(model, window, logits_fn):
    for batch in window:
        loss_sum, n = token_loss_sum(logits_fn(model, batch), batch["labels"])
        (loss_sum / n).backward()


def unnormalised_sum(model, window, logits_fn):
    for batch in window:
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        loss_sum.backward()


def zeroes_between(model, window, logits_fn):
    total = sum(int((b["labels"] != -100).sum()) for b in window)
    for batch in window:
        model.zero_grad(set_to_none=True)
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        (loss_sum / total).backward()


def no_backward(model, window, logits_fn):
    for batch in window:
        logits_fn(model, batch)


def test_check_accumulation_passes_the_reference(capsys):
    check_accumulation(reference_accumulation)
    assert "check passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, match",
    [
        (
            per_micro_batch_mean,
            "mean of the micro-batch means. Did you divide each micro-batch by its own token count",
        ),
        (sum_of_means, "SUM of the micro-batch mean losses"),
        (unnormalised_sum, r"point the right way but are \d+ times the full-batch gradient"),
        (zeroes_between, "differ from the full-batch gradient by"),
        (no_backward, "have no gradient after your function: call .backward"),
    ],
)
def test_check_accumulation_explains_mistakes(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_accumulation(fn)


# --------------------------------------------------------------------------- probabilities


def proportional_always(counts, weights=None, alpha=None):
    total = sum(counts.values())
    return {s: n / total for s, n in counts.items()}


def no_validation(counts, weights=None, alpha=None):
    if weights is not None:
        total = sum(weights.values())
        return {s: weights.get(s, 0.0) / total for s in counts}
    return source_probabilities(counts, alpha=alpha)


def unnormalised(counts, weights=None, alpha=None):
    return {s: float(n) ** (1.0 if alpha is None else alpha) for s, n in counts.items()}


def test_check_source_probabilities_passes_the_reference(capsys):
    check_source_probabilities(source_probabilities)
    assert "check passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, match",
    [
        (proportional_always, r"alpha=0 \(uniform over sources\): wrong probabilities"),
        (unnormalised, "probabilities sum to 84.0000; normalise them to 1"),
        (no_validation, "must raise ValueError naming the problem"),
        (
            lambda counts, weights=None, alpha=None: [0.5, 0.5],
            "expected a dict with one probability per source",
        ),
    ],
)
def test_check_source_probabilities_explains_mistakes(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_source_probabilities(fn)


# --------------------------------------------------------------------------- draws


def reference_draw(sources, probabilities, num_samples, generator):
    return torch.multinomial(
        example_weights(sources, probabilities), num_samples, replacement=True, generator=generator
    )


def per_example_p(sources, probabilities, num_samples, generator):
    weights = torch.tensor([probabilities[s] for s in sources])  # forgets the / n_s
    return torch.multinomial(weights, num_samples, replacement=True, generator=generator)


def unseeded(sources, probabilities, num_samples, generator):
    return torch.multinomial(example_weights(sources, probabilities), num_samples, replacement=True)


def too_short(sources, probabilities, num_samples, generator):
    return reference_draw(sources, probabilities, num_samples - 1, generator)


def test_check_sampler_passes_the_reference(capsys):
    check_sampler(reference_draw)
    assert "check passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, match",
    [
        (per_example_p, r"do not match the targets.*weight p_s / n_s"),
        (unseeded, "pass generator= to torch.multinomial"),
        (too_short, "wrong length: expected 20000 indices, got 19999"),
    ],
)
def test_check_sampler_explains_mistakes(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_sampler(fn)


@pytest.mark.parametrize("check", [check_accumulation, check_source_probabilities, check_sampler])
def test_checks_say_a_stub_is_not_implemented_yet(check):
    """A stub's NotImplementedError stays one, so an unfinished notebook stops at its task, with
    a message that says which cell to fill."""
    with pytest.raises(
        NotImplementedError, match="not implemented yet: fill the cell marked # YOUR CODE HERE"
    ):
        check(not_implemented)
