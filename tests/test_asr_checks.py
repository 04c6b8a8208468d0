"""Module-11 self-checks: right answers written in several ways pass; each typical mistake fails
with the message that names it."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlsaudio.asr import checks
from dlsaudio.asr.checks import (
    check_accumulation,
    check_sampler,
    check_source_probabilities,
    check_train_step,
)
from dlsaudio.asr.train import token_loss_sum


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize(
    "check", [check_accumulation, check_train_step, check_source_probabilities, check_sampler]
)
def test_checks_say_a_stub_is_not_implemented_yet(check):
    """A stub's NotImplementedError stays one, so an unfinished notebook stops at its task, with
    a message that says which cell to fill."""
    with pytest.raises(
        NotImplementedError, match="not implemented yet: fill the cell marked # YOUR CODE HERE"
    ):
        check(not_implemented)


# --------------------------------------------------------------------------- accumulation


def tokens(batch):
    return int((batch["labels"] != -100).sum())


def reference_window(model, window, scaler, logits_fn):
    """The homework's solution."""
    total = sum(tokens(batch) for batch in window)
    loss = 0.0
    for batch in window:
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        scaler.scale(loss_sum / total).backward()
        loss += loss_sum.item()
    return loss / total


def hf_loss_reweighted(model, window, scaler, logits_fn):
    """Right, in the Hugging Face habit: Whisper's mean loss times this micro-batch's share."""
    total = sum((batch["labels"] >= 0).sum() for batch in window)  # a tensor, not an int
    losses = []
    for batch in window:
        out = model(**batch)
        share = (batch["labels"] >= 0).sum() / total
        scaler.scale(out.loss * share).backward()
        losses.append(out.loss.detach() * share)
    return torch.stack(losses).sum()  # a 0-d tensor


def cross_entropy_by_hand(model, window, scaler, logits_fn):
    """Right, with F.cross_entropy and a NumPy number returned."""
    n = np.sum([np.count_nonzero(b["labels"].numpy() != -100) for b in window])
    total = np.float32(0)
    for batch in window:
        logits = logits_fn(model, batch)
        ce = F.cross_entropy(
            logits.transpose(1, 2), batch["labels"], ignore_index=-100, reduction="sum"
        )
        scaler.scale(ce / float(n)).backward()
        total += np.float32(ce.item())
    return total / n


def hf_mean_of_means(model, window, scaler, logits_fn):
    """The Hugging Face habit: model(**batch).loss / k."""
    for batch in window:
        scaler.scale(model(**batch).loss / len(window)).backward()
    return 0.0


def sum_of_means(model, window, scaler, logits_fn):
    for batch in window:
        loss_sum, n = token_loss_sum(logits_fn(model, batch), batch["labels"])
        scaler.scale(loss_sum / n).backward()


def divided_by(name, denominator):
    """Backpropagates every micro-batch's token-loss sum over ``denominator(window)``: the right
    shape with the wrong normaliser."""

    def fn(model, window, scaler, logits_fn):
        d = denominator(window)
        for batch in window:
            loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
            scaler.scale(loss_sum / d).backward()

    fn.__name__ = name
    return fn


per_example = divided_by("per_example", lambda w: sum(len(b["labels"]) for b in w))
padding_counted = divided_by("padding_counted", lambda w: sum(b["labels"].numel() for b in w))
tokens_and_micro_batches = divided_by(
    "tokens_and_micro_batches", lambda w: sum(tokens(b) for b in w) * len(w)
)
unnormalised_sum = divided_by("unnormalised_sum", lambda w: 1)
half_of_it = divided_by("half_of_it", lambda w: 2 * sum(tokens(b) for b in w))


def zeroes_between(model, window, scaler, logits_fn):
    total = sum(tokens(batch) for batch in window)
    for batch in window:
        model.zero_grad()
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        scaler.scale(loss_sum / total).backward()


def returns_in_the_loop(model, window, scaler, logits_fn):
    total = sum(tokens(batch) for batch in window)
    for batch in window:
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        scaler.scale(loss_sum / total).backward()
        return loss_sum.item() / total


def no_backward(model, window, scaler, logits_fn):
    for batch in window:
        logits_fn(model, batch)


def number_instead_of_loss(model, window, scaler, logits_fn):
    total = sum(tokens(batch) for batch in window)
    for batch in window:
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        scaler.scale(loss_sum.item() / total).backward()


def ignores_the_scaler(model, window, scaler, logits_fn):
    total = sum(tokens(batch) for batch in window)
    for batch in window:
        loss_sum, _ = token_loss_sum(logits_fn(model, batch), batch["labels"])
        (loss_sum / total).backward()
    return reference_loss(model, window)


def reference_loss(model, window):
    with torch.no_grad():
        sums = [token_loss_sum(checks.whisper_logits(model, b), b["labels"]) for b in window]
    return sum(float(s) for s, _ in sums) / sum(n for _, n in sums)


def returns_nothing(model, window, scaler, logits_fn):
    reference_window(model, window, scaler, logits_fn)


def returns_the_sum(model, window, scaler, logits_fn):
    return reference_window(model, window, scaler, logits_fn) * sum(tokens(b) for b in window)


def old_signature(model, window, logits_fn):
    return reference_window(model, window, torch.amp.GradScaler("cpu", enabled=False), logits_fn)


@pytest.mark.parametrize("fn", [reference_window, hf_loss_reweighted, cross_entropy_by_hand])
def test_check_accumulation_passes_right_answers(fn, capsys):
    check_accumulation(fn)
    assert "check passed" in capsys.readouterr().out


ACCUMULATION_MISTAKES = [
    (hf_mean_of_means, "MEAN OF THE MICRO-BATCH MEANS"),
    (sum_of_means, "it is the SUM of the micro-batch mean losses"),
    (per_example, "divided by the number of EXAMPLES in the window"),
    (padding_counted, r"padding included: count only the real tokens"),
    (tokens_and_micro_batches, "AND by the number of micro-batches"),
    (unnormalised_sum, "plain sum of token losses, without dividing"),
    (zeroes_between, "only the LAST micro-batch is left in .grad"),
    (returns_in_the_loop, "only the FIRST micro-batch contributed"),
    (half_of_it, "is 0\\.5 times the full-batch gradient"),
    (no_backward, "no parameter has a gradient after your function"),
    (
        number_instead_of_loss,
        "raised AttributeError: 'float' object has no attribute 'backward'",
    ),
    (returns_nothing, r"the gradient is right, but the function returned None"),
    (
        returns_the_sum,
        "the gradient is right, but the function returned .*: return the window's mean",
    ),
    (
        ignores_the_scaler,
        "the scaler was ignored",
    ),
    (
        old_signature,
        "raised TypeError: .*unexpected keyword argument 'scaler'",
    ),
]


@pytest.mark.parametrize(
    "fn, match", ACCUMULATION_MISTAKES, ids=[fn.__name__ for fn, _ in ACCUMULATION_MISTAKES]
)
def test_check_accumulation_names_the_mistake(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_accumulation(fn)


def test_accumulation_mistakes_are_all_different_from_the_reference():
    """Every known mistake really changes the gradient on the check's case, so no message can
    be reached by a right answer."""
    model, window, full = checks.accumulation_case()
    reference = checks.window_gradient(model, window)
    for normalization in ("mean_of_means", "last_only"):
        wrong = checks.window_gradient(model, window, normalization)
        assert checks._relative_error(wrong, reference) > 100 * checks.TOLERANCE
    counts = [tokens(b) for b in window]
    assert len(set(counts)) == len(counts), "micro-batches must differ in token count"


# --------------------------------------------------------------------------- the training step


def reference_step(model, window, optimizer, scheduler, scaler, max_grad_norm=1.0, logits_fn=None):
    """The homework's solution."""
    optimizer.zero_grad(set_to_none=True)
    loss = reference_window(model, window, scaler, logits_fn)
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss


def zeroes_at_the_end(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn):
    """Right: zeroing after the step instead of before it."""
    loss = hf_loss_reweighted(model, window, scaler, logits_fn)
    scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, max_norm=max_grad_norm)
    previous = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    if scaler.get_scale() >= previous:  # the package's habit: no schedule step on a skipped step
        scheduler.step()
    model.zero_grad()
    return float(loss)


def steps_every_micro_batch(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn):
    losses = []
    for batch in window:
        optimizer.zero_grad()
        losses.append(reference_window(model, [batch], scaler, logits_fn))
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    scheduler.step()
    return sum(losses) / len(losses)


def steps_every_micro_batch_one_update(
    model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn
):
    optimizer.zero_grad()
    for batch in window:
        reference_window(model, [batch], scaler, logits_fn)
        scaler.step(optimizer)
    scaler.update()
    scheduler.step()


def without(*skipped, accumulate=reference_window):
    """The reference step with some of its lines left out or changed, or with another
    accumulation."""

    def step(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn):
        if "zero" not in skipped:
            optimizer.zero_grad()
        loss = accumulate(model, window, scaler, logits_fn)
        if "clip_first" in skipped:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        if "unscale" not in skipped:
            scaler.unscale_(optimizer)
        if "clip" not in skipped and "clip_first" not in skipped:
            norm = 1.0 if "fixed_clip" in skipped else max_grad_norm
            torch.nn.utils.clip_grad_norm_(model.parameters(), norm)
        if "scaler_step" in skipped:
            optimizer.step()
        else:
            scaler.step(optimizer)
        if "double_step" in skipped:
            optimizer.step()
        if "update" not in skipped:
            scaler.update()
        if "schedule" not in skipped:
            for _ in range(3 if "schedule_per_micro_batch" in skipped else 1):
                scheduler.step()
        return None if "return" in skipped else loss

    step.__name__ = "_".join(["without", *skipped]) if skipped else accumulate.__name__
    return step


forgets_to_zero = without("zero")
mean_of_means_step = without(accumulate=hf_mean_of_means)


def no_optimizer_step(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn):
    optimizer.zero_grad()
    reference_window(model, window, scaler, logits_fn)
    scheduler.step()


def reuses_the_first_window(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn):
    """Keeps state between calls: stores the first window and trains on it every time."""
    if not hasattr(reuses_the_first_window, "window"):
        reuses_the_first_window.window = window
    return reference_step(
        model,
        reuses_the_first_window.window,
        optimizer,
        scheduler,
        scaler,
        max_grad_norm,
        logits_fn,
    )


@pytest.mark.parametrize("fn", [reference_step, zeroes_at_the_end])
def test_check_train_step_passes_right_answers(fn, capsys):
    check_train_step(fn)
    assert "check passed" in capsys.readouterr().out


STEP_MISTAKES = [
    (forgets_to_zero, "the gradients of the first window were still in .grad"),
    (
        steps_every_micro_batch,
        "you stepped after every micro-batch",
    ),
    (
        steps_every_micro_batch_one_update,
        r"scaler.step\(optimizer\) ran twice before scaler.update\(\)",
    ),
    (mean_of_means_step, r"MEAN OF THE MICRO-BATCH MEANS"),
    (without("clip"), "the gradient was not clipped"),
    (
        without("clip_first"),
        "clipped while still SCALED by the GradScaler",
    ),
    (without("unscale"), r"clipped while still SCALED by the GradScaler"),
    (without("fixed_clip"), "clipped at 1.0"),
    (
        without("schedule"),
        "the learning-rate schedule did not move",
    ),
    (
        without("schedule_per_micro_batch"),
        "stepped 3 times for one window: step it once per optimizer step",
    ),
    (without("update"), r"scaler.update\(\) did not run after the previous scaler.step"),
    (
        without("scaler_step"),
        "the parameters must not change, but yours did",
    ),
    (without("double_step"), "stepped 2 times for one window"),
    (without("return"), "the step is right, but it returned None"),
    (
        no_optimizer_step,
        "the parameters did not change",
    ),
    (reuses_the_first_window, "does the function keep state between calls"),
]


@pytest.mark.parametrize("fn, match", STEP_MISTAKES, ids=[fn.__name__ for fn, _ in STEP_MISTAKES])
def test_check_train_step_names_the_mistake(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_train_step(fn)


def test_step_case_tells_the_mistakes_apart():
    """On the check's case every simulated mistake gives a different update, and clipping is
    active at both steps with a threshold far from 1.0."""
    model, windows, max_norm = checks.step_case()
    assert abs(max_norm - 1.0) > 0.2
    outcomes = {
        "reference": {},
        "mean_of_means": {"normalization": "mean_of_means"},
        "last_only": {"normalization": "last_only"},
        "no clip": {"clip": "none"},
        "clip first": {"clip": "before_unscale"},
        "fixed clip": {"clip": "fixed"},
        "no zero": {"zero": False},
    }
    runs = {
        name: checks.simulate_steps(model, windows, max_norm=max_norm, **kw)
        for name, kw in outcomes.items()
    }
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            last = -1 if "no zero" in (a, b) else 0  # not zeroing only shows at step 2
            error = checks._relative_error(runs[a][last], runs[b][last])
            assert error > 1e-6, (a, b)
    for step, window in enumerate(windows):
        at = model if step == 0 else checks.model_at(runs["reference"][0], model)
        gradient = checks.window_gradient(at, window)
        assert math.sqrt(sum(float(g.pow(2).sum()) for g in gradient)) > 1.5 * max(max_norm, 1.0)


def test_simulation_matches_real_sgd_steps():
    """The hand-written SGD simulation is what torch's SGD, GradScaler and clipping do."""
    model, windows, max_norm = checks.step_case()
    expected = checks.simulate_steps(model, windows, max_norm=max_norm)
    optimizer, scheduler, scaler = checks._setup(model, checks.STEP_SCALE)
    for step, window in enumerate(windows):
        reference_step(model, window, optimizer, scheduler, scaler, max_norm, checks.whisper_logits)
        got = [p.detach() for p in model.parameters()]
        assert checks._relative_error(got, expected[step]) < 1e-6


# --------------------------------------------------------------------------- probabilities


def reference_probabilities(counts, weights=None, alpha=None):
    """The homework's solution."""
    if weights is not None and alpha is not None:
        raise ValueError("pass weights or alpha, not both")
    if weights is None:
        alpha = 1.0 if alpha is None else alpha
        raw = {s: n**alpha for s, n in counts.items()}
    else:
        unknown = [s for s in weights if s not in counts]
        if unknown:
            raise ValueError(f"no examples for sources {unknown}")
        bad = {s: w for s, w in weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"weights must be finite and >= 0, got {bad}")
        raw = {s: float(weights.get(s, 0.0)) for s in counts}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("all weights are zero")
    return {s: v / total for s, v in raw.items()}


def numpy_probabilities(counts, weights=None, alpha=None):
    """Right, with NumPy: returns np.float64 values."""
    if weights is not None and alpha is not None:
        raise ValueError("weights and alpha are exclusive")
    names = list(counts)
    if weights is not None:
        if set(weights) - set(names):
            raise ValueError(f"unknown sources {set(weights) - set(names)}")
        w = np.array([weights.get(s, 0) for s in names], dtype=float)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"bad weights {weights}")
    else:
        w = np.array([counts[s] for s in names], dtype=float) ** (1 if alpha is None else alpha)
    if w.sum() == 0:
        raise ValueError("nothing to draw: all weights are 0")
    return dict(zip(names, w / w.sum(), strict=True))


def fraction_probabilities(counts, weights=None, alpha=None):
    """Right, with exact fractions where it can, float32 tensors elsewhere."""
    if weights is not None and alpha is not None:
        raise ValueError("both given")
    if weights is None:
        p = torch.tensor([n ** (1.0 if alpha is None else alpha) for n in counts.values()])
        return dict(zip(counts, p / p.sum(), strict=True))  # 0-d float32 tensors
    for s, w in weights.items():
        if s not in counts or not w >= 0 or w == math.inf:
            raise ValueError(f"bad weight {s}={w}")
    total = sum(Fraction(w) for w in weights.values())
    if total == 0:
        raise ValueError("all zero")
    return {s: Fraction(weights.get(s, 0)) / total for s in counts}


def ignores_alpha(counts, weights=None, alpha=None):
    total = sum(counts.values())
    return {s: n / total for s, n in counts.items()}


def alpha_zero_as_not_given(counts, weights=None, alpha=None):
    if alpha:
        return reference_probabilities(counts, alpha=alpha)
    if weights is None:
        return reference_probabilities(counts)
    return reference_probabilities(counts, weights=weights)


def sqrt_always(counts, weights=None, alpha=None):
    """Gets alpha 0 and 1 right by special cases, and every other alpha wrong."""
    if weights is not None or alpha in (None, 0, 1):
        return reference_probabilities(counts, weights=weights, alpha=alpha)
    return reference_probabilities(counts, alpha=1 - alpha / 2)


def unnormalised(counts, weights=None, alpha=None):
    return {s: float(n) ** (1.0 if alpha is None else alpha) for s, n in counts.items()}


def no_validation(counts, weights=None, alpha=None):
    if weights is not None:
        total = sum(weights.values())
        return {s: weights.get(s, 0.0) / total for s in counts}
    return reference_probabilities(counts, alpha=alpha)


def indexes_weights(counts, weights=None, alpha=None):
    if weights is None:
        return reference_probabilities(counts, alpha=alpha)
    total = sum(weights.values())
    return {s: weights[s] / total for s in counts}


def drops_zero_sources(counts, weights=None, alpha=None):
    p = reference_probabilities(counts, weights=weights, alpha=alpha)
    return {s: v for s, v in p.items() if v > 0}


def nan_passes(counts, weights=None, alpha=None):
    """The check's old reference: w < 0 is False for NaN, and NaN <= 0 is False."""
    if weights is not None and alpha is not None:
        raise ValueError("both")
    if weights is None:
        return reference_probabilities(counts, alpha=alpha)
    if any(s not in counts for s in weights) or any(w < 0 for w in weights.values()):
        raise ValueError("bad weights")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("all zero")
    return {s: weights.get(s, 0.0) / total for s in counts}


def zero_division(counts, weights=None, alpha=None):
    if weights is not None and alpha is not None:
        raise ValueError("both")
    if weights is not None:
        if any(s not in counts or not 0 <= w < math.inf for s, w in weights.items()):
            raise ValueError("bad weights")
        total = sum(weights.values())
        return {s: weights.get(s, 0.0) / total for s in counts}
    return reference_probabilities(counts, alpha=alpha)


def silent_error(counts, weights=None, alpha=None):
    if weights is not None and alpha is not None:
        raise ValueError()
    return reference_probabilities(counts, weights=weights, alpha=alpha)


@pytest.mark.parametrize(
    "fn", [reference_probabilities, numpy_probabilities, fraction_probabilities]
)
def test_check_source_probabilities_passes_right_answers(fn, capsys):
    check_source_probabilities(fn)
    assert "check passed" in capsys.readouterr().out


PROBABILITY_MISTAKES = [
    (ignores_alpha, "alpha=0: wrong probabilities .* as if alpha had been ignored"),
    (alpha_zero_as_not_given, "alpha=0: .* 0 is a valid alpha"),
    (sqrt_always, "alpha=0\\.5: wrong probabilities"),
    (unnormalised, "probabilities sum to 84.0000"),
    (
        no_validation,
        "a weight for a source that has no examples .* must raise ValueError",
    ),
    (indexes_weights, "raised KeyError: 'ky_noisy'"),
    (
        drops_zero_sources,
        r"missing: \['ky_noisy'\]",
    ),
    (lambda counts, weights=None, alpha=None: [0.5, 0.5], "expected a dict {source: probability}"),
    (nan_passes, "a NaN weight"),
    (zero_division, "all weights zero .* must raise ValueError"),
    (silent_error, "both weights and alpha: the ValueError has no message"),
]


@pytest.mark.parametrize(
    "fn, match",
    PROBABILITY_MISTAKES,
    ids=[getattr(fn, "__name__", "list") for fn, _ in PROBABILITY_MISTAKES],
)
def test_check_source_probabilities_names_the_mistake(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_source_probabilities(fn)


# --------------------------------------------------------------------------- draws


def reference_draw(sources, probabilities, num_samples, generator):
    """The homework's solution."""
    counts = Counter(sources)
    weights = torch.tensor([probabilities[s] / counts[s] for s in sources], dtype=torch.float64)
    return torch.multinomial(weights, num_samples, replacement=True, generator=generator)


def two_stage_draw(sources, probabilities, num_samples, generator):
    """Right, differently: draw a source, then an example of it; returns a list of ints."""
    names = list(probabilities)
    members = {s: [i for i, x in enumerate(sources) if x == s] for s in names}
    p = torch.tensor([probabilities[s] for s in names], dtype=torch.float64)
    picks = torch.multinomial(p, num_samples, replacement=True, generator=generator).tolist()
    offsets = torch.rand(num_samples, generator=generator).tolist()
    return [
        members[names[k]][int(u * len(members[names[k]]))]
        for k, u in zip(picks, offsets, strict=True)
    ]


def per_example_p(sources, probabilities, num_samples, generator):
    weights = torch.tensor([probabilities[s] for s in sources])  # forgets the / n_s
    return torch.multinomial(weights, num_samples, replacement=True, generator=generator)


def unseeded(sources, probabilities, num_samples, generator):
    counts = Counter(sources)
    weights = torch.tensor([probabilities[s] / counts[s] for s in sources])
    return torch.multinomial(weights, num_samples, replacement=True)


def without_replacement(sources, probabilities, num_samples, generator):
    counts = Counter(sources)
    weights = torch.tensor([probabilities[s] / counts[s] for s in sources])
    return torch.multinomial(weights, num_samples, generator=generator)


def too_short(sources, probabilities, num_samples, generator):
    return reference_draw(sources, probabilities, num_samples - 1, generator)


def float_indices(sources, probabilities, num_samples, generator):
    return reference_draw(sources, probabilities, num_samples, generator).double()


def indexes_by_position(sources, probabilities, num_samples, generator):
    weights = torch.tensor([probabilities[i] for i in range(len(sources))])
    return torch.multinomial(weights, num_samples, replacement=True, generator=generator)


def smoothed(sources, probabilities, num_samples, generator):
    counts = Counter(sources)
    weights = torch.tensor([probabilities[s] / counts[s] + 1e-4 for s in sources])
    return torch.multinomial(weights, num_samples, replacement=True, generator=generator)


@pytest.mark.parametrize("fn", [reference_draw, two_stage_draw])
def test_check_sampler_passes_right_answers(fn, capsys):
    check_sampler(fn)
    assert "check passed" in capsys.readouterr().out


SAMPLER_MISTAKES = [
    (per_example_p, r"do not match the targets.*weight p_s / n_s"),
    (unseeded, "pass generator= to torch.multinomial"),
    (without_replacement, r"raised RuntimeError.*Draw WITH replacement"),
    (too_short, "wrong length: expected 20000 indices"),
    (float_indices, "tensor of integer indices"),
    (indexes_by_position, "raised KeyError: 0"),
    (smoothed, "a source with probability 0 was drawn"),
]


@pytest.mark.parametrize(
    "fn, match", SAMPLER_MISTAKES, ids=[fn.__name__ for fn, _ in SAMPLER_MISTAKES]
)
def test_check_sampler_names_the_mistake(fn, match):
    with pytest.raises(AssertionError, match=match):
        check_sampler(fn)
