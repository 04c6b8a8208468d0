"""The bonus task's self-checks (data2vec's span mask and targets): each typical mistake gets
the message that names it, right answers written differently pass, and an answer that calls the
package's own solution is refused."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlsaudio.ssl import checks

pytestmark = pytest.mark.usefixtures("one_thread")


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------------- span_mask


def mask_loop(batch, frames, mask_prob, span, generator=None):
    n = max(1, round(mask_prob * frames / span))
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for b in range(batch):
        for start in torch.randperm(frames - span + 1, generator=generator)[:n].tolist():
            mask[b, start : start + span] = True
    return mask


def mask_multinomial(batch, frames, mask_prob, span, generator=None):
    n = max(1, int(mask_prob * frames / span + 0.5))
    weights = torch.ones(batch, frames - span + 1)
    starts = torch.multinomial(weights, n, replacement=False, generator=generator)  # (batch, n)
    covered = (starts[:, :, None] + torch.arange(span)).reshape(batch, -1)
    hits = torch.zeros(batch, frames).scatter_add_(1, covered, torch.ones(covered.shape))
    return (hits > 0).int()  # 0/1 integers also pass


def mask_per_frame(batch, frames, mask_prob, span, generator=None):
    return torch.rand(batch, frames, generator=generator) < mask_prob


def mask_past_the_end(batch, frames, mask_prob, span, generator=None):
    n = max(1, round(mask_prob * frames / span))
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for b in range(batch):
        for start in torch.randperm(frames, generator=generator)[:n].tolist():
            mask[b, start : start + span] = True
    return mask


def mask_may_be_empty(batch, frames, mask_prob, span, generator=None):
    n = int(mask_prob * frames / span)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for b in range(batch):
        for start in torch.randperm(frames - span + 1, generator=generator)[:n].tolist():
            mask[b, start : start + span] = True
    return mask


def mask_one_for_all(batch, frames, mask_prob, span, generator=None):
    return mask_loop(1, frames, mask_prob, span, generator).expand(batch, frames)


def mask_global_rng(batch, frames, mask_prob, span, generator=None):
    return mask_loop(batch, frames, mask_prob, span, None)


def mask_own_seed(batch, frames, mask_prob, span, generator=None):
    return mask_loop(batch, frames, mask_prob, span, torch.Generator().manual_seed(0))


def mask_start_everywhere(batch, frames, mask_prob, span, generator=None):
    starts = torch.rand(batch, frames - span + 1, generator=generator) < mask_prob
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for offset in range(span):
        mask[:, offset : offset + starts.shape[1]] |= starts
    first = torch.zeros(batch, frames, dtype=torch.bool)
    first[:, :span] = True  # a clip without a start keeps one span
    return torch.where(mask.any(dim=1, keepdim=True), mask, first)


def mask_few_spans(batch, frames, mask_prob, span, generator=None):
    return mask_loop(batch, frames, mask_prob / span, span, generator)


def mask_transposed(batch, frames, mask_prob, span, generator=None):
    return mask_loop(batch, frames, mask_prob, span, generator).T


def mask_delegates(batch, frames, mask_prob, span, generator=None):
    from dlsaudio.ssl.masked import span_mask as package_mask

    return package_mask(batch, frames, mask_prob, span, generator)


MASK_WRONG = [
    (mask_per_frame, "masked frames are not contiguous spans.*not single frames"),
    (mask_past_the_end, "masked frames are not contiguous spans.*cut by the end of the clip"),
    (mask_may_be_empty, "a clip has no masked frame"),
    (mask_one_for_all, "every clip got the same mask"),
    (mask_global_rng, "not reproducible: .*generator"),
    (mask_own_seed, "the mask ignores its generator"),
    (mask_start_everywhere, "masks too many frames"),
    (mask_few_spans, "masks too few frames"),
    (mask_transposed, r"wrong shape: .*must return \(batch, frames\)"),
    (mask_delegates, "hands its task to the package: it calls dlsaudio.ssl.masked.span_mask"),
]


@pytest.mark.parametrize(("fn", "match"), MASK_WRONG, ids=[fn.__name__ for fn, _ in MASK_WRONG])
def test_a_wrong_span_mask_gets_its_message(fn, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_span_mask(fn)


@pytest.mark.parametrize("fn", [mask_loop, mask_multinomial], ids=lambda fn: fn.__name__)
def test_a_right_span_mask_passes(fn, capsys):
    checks.check_span_mask(fn)
    assert capsys.readouterr().out.startswith("OK: ")


# ------------------------------------------------------------------------ data2vec_targets


def standardise(x, dim=1, unbiased=False):
    return (x - x.mean(dim, keepdim=True)) / (
        x.var(dim, keepdim=True, unbiased=unbiased) + 1e-5
    ).sqrt()


def targets_instance_norm(layer_outputs, top_k):
    normed = [F.instance_norm(x.transpose(1, 2)).transpose(1, 2) for x in layer_outputs[-top_k:]]
    return torch.stack(normed).mean(dim=0)


def targets_std_loop(layer_outputs, top_k):
    total = 0
    for x in layer_outputs[len(layer_outputs) - top_k :]:
        total = total + (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # unbiased
    return total / top_k


def targets_raw(layer_outputs, top_k):
    return torch.stack(layer_outputs[-top_k:]).mean(0)


def targets_normalise_the_mean(layer_outputs, top_k):
    return standardise(torch.stack(layer_outputs[-top_k:]).mean(0))


def targets_layer_norm(layer_outputs, top_k):
    return torch.stack([F.layer_norm(x, x.shape[-1:]) for x in layer_outputs[-top_k:]]).mean(0)


def targets_batch_norm(layer_outputs, top_k):
    return torch.stack([standardise(x, (0, 1)) for x in layer_outputs[-top_k:]]).mean(0)


def targets_all_layers(layer_outputs, top_k):
    return torch.stack([standardise(x) for x in layer_outputs]).mean(0)


def targets_bottom_k(layer_outputs, top_k):
    return torch.stack([standardise(x) for x in layer_outputs[:top_k]]).mean(0)


def targets_off_by_one(layer_outputs, top_k):
    return torch.stack([standardise(x) for x in layer_outputs[-top_k - 1 : -1]]).mean(0)


def targets_last_only(layer_outputs, top_k):
    return standardise(layer_outputs[-1])


def targets_sum(layer_outputs, top_k):
    return torch.stack([standardise(x) for x in layer_outputs[-top_k:]]).sum(0)


def targets_pooled(layer_outputs, top_k):
    return targets_instance_norm(layer_outputs, top_k).mean(dim=1)


def targets_delegates(layer_outputs, top_k):
    from dlsaudio.ssl import data2vec_targets

    return data2vec_targets(layer_outputs, top_k)


def targets_use_the_checks_reference(layer_outputs, top_k):
    from dlsaudio.ssl.checks.masked import _instance_norm

    return torch.stack([_instance_norm(x, 1) for x in layer_outputs[-top_k:]]).mean(0)


TARGETS_WRONG = [
    (targets_raw, "the targets are not instance-normalised per layer: standardise each layer"),
    (targets_normalise_the_mean, "normalised the average, not each layer"),
    (targets_layer_norm, r"normalised over the features \(a layer norm\)"),
    (targets_batch_norm, r"normalised over the batch and time \(a batch norm\)"),
    (targets_all_layers, "you averaged all layers, not the top K"),
    (targets_bottom_k, "you averaged the first top_k layers"),
    (targets_off_by_one, "you left out the last layer"),
    (targets_last_only, "you took the last layer only"),
    (targets_sum, "you summed the top K layers"),
    (targets_pooled, r"wrong shape: .*one target per frame"),
    (
        targets_delegates,
        "hands its task to the package: it calls dlsaudio.ssl.masked.data2vec_targets",
    ),
    (
        targets_use_the_checks_reference,
        "hands its task to the package: .*checks.masked._instance_norm",
    ),
]


@pytest.mark.parametrize(
    ("fn", "match"), TARGETS_WRONG, ids=[fn.__name__ for fn, _ in TARGETS_WRONG]
)
def test_wrong_targets_get_their_message(fn, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_data2vec_targets(fn)


@pytest.mark.parametrize(
    "fn", [targets_instance_norm, targets_std_loop], ids=lambda fn: fn.__name__
)
def test_right_targets_pass(fn, capsys):
    checks.check_data2vec_targets(fn)
    assert capsys.readouterr().out.startswith("OK: ")


@pytest.mark.parametrize("check", [checks.check_span_mask, checks.check_data2vec_targets])
def test_an_unwritten_answer_is_not_implemented(check):
    with pytest.raises(NotImplementedError, match="fill the cell marked # YOUR CODE HERE"):
        check(not_implemented)


# ------------------------------------------------------------- the training check, data2vec


def data2vec_class(mask_fn, targets_fn):
    """The homework's HomeworkData2Vec with the given answers (the EMA written here)."""
    from dlsaudio.ssl.masked import Data2Vec

    class HomeworkData2Vec(Data2Vec):
        def mask(self, batch, frames):
            return mask_fn(batch, frames, self.mask_prob, self.span)

        def targets(self, layer_outputs):
            return targets_fn(layer_outputs, self.top_k)

        def on_step_end(self, progress):
            self.momentum = 1 - (1 - self.tau_base) * (math.cos(math.pi * progress) + 1) / 2
            with torch.no_grad():
                for t, s in zip(self.teacher.parameters(), self.encoder.parameters(), strict=True):
                    t.mul_(self.momentum).add_(s, alpha=1 - self.momentum)

    return HomeworkData2Vec


@pytest.mark.parametrize(
    ("mask_fn", "targets_fn", "refused"),
    [
        (mask_loop, targets_instance_norm, ""),
        (mask_delegates, targets_instance_norm, "dlsaudio.ssl.masked.span_mask"),
        (mask_loop, targets_delegates, "dlsaudio.ssl.masked.data2vec_targets"),
    ],
    ids=["own answers", "delegated mask", "delegated targets"],
)
def test_the_training_check_refuses_a_data2vec_trained_with_the_packages_answers(
    mask_fn, targets_fn, refused, capsys
):
    from ssl_fit import tiny_fit

    from dlsaudio.ssl.masked import FrameEncoder

    torch.manual_seed(0)
    encoder = FrameEncoder(dim=8, layers=2, heads=2, n_mels=16)
    model = data2vec_class(mask_fn, targets_fn)(encoder, top_k=2, span=2)
    history = tiny_fit(model)
    methods = ("mask", "targets", "on_step_end")
    if not refused:
        checks.check_training_history(history, model=model, methods=methods)
        assert capsys.readouterr().out.startswith("OK: ")
        return
    with pytest.raises(AssertionError, match=f"hands its task to the package: it calls {refused}"):
        checks.check_training_history(history, model=model, methods=methods)
