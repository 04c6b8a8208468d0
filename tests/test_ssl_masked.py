"""data2vec-style masked prediction: the mask, the targets and the loss against hand-written
references, the teacher's EMA and stop-gradient, and training through ``fit`` and the bench."""

from __future__ import annotations

import json

import pytest
import torch

from dlsaudio.ssl import fit
from dlsaudio.ssl.augment import Identity
from dlsaudio.ssl.masked import (
    Data2Vec,
    FrameEncoder,
    data2vec_targets,
    masked_regression_loss,
    span_mask,
)
from dlsaudio.ssl.methods import METHODS, make_method

pytestmark = pytest.mark.usefixtures("one_thread")

TIME = 1600  # 0.1 s: 11 log-mel frames, 6 encoder frames


def tiny(top_k=2, **kw) -> Data2Vec:
    torch.manual_seed(0)
    return Data2Vec(FrameEncoder(dim=8, layers=3, heads=2, n_mels=16), top_k=top_k, span=2, **kw)


def runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a boolean row."""
    lengths, current = [], 0
    for masked in row.tolist():
        if masked:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths + ([current] if current else [])


# ----------------------------------------------------------------------------- the mask


@pytest.mark.parametrize(
    ("frames", "mask_prob", "span"), [(50, 0.65, 5), (20, 0.3, 3), (9, 0.1, 7)]
)
def test_span_mask_hides_whole_spans_about_mask_prob_of_the_frames(frames, mask_prob, span):
    mask = span_mask(200, frames, mask_prob, span, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (200, frames) and mask.dtype == torch.bool
    n = max(1, round(mask_prob * frames / span))
    for row in mask:
        assert row.any()  # every clip has something to predict
        assert all(length >= span for length in runs(row))  # whole spans, merged when overlapping
        assert span <= int(row.sum()) <= n * span
    assert 0.5 * min(n * span / frames, 1) < mask.float().mean() <= n * span / frames
    assert not (mask == mask[0]).all()  # each clip its own mask


def test_span_mask_is_reproducible_with_a_generator():
    def draw(seed):
        return span_mask(4, 30, 0.5, 4, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mask_prob": 0.0}, r"mask_prob must be a number in \(0, 1\), got 0.0"),
        ({"mask_prob": 1.0}, r"mask_prob must be a number in \(0, 1\)"),
        ({"mask_prob": float("nan")}, r"mask_prob must be a number in \(0, 1\)"),
        ({"span": 0}, "span must be an int >= 1"),
        ({"frames": 3}, r"frames \(at least span=5\) must be an int >= 5, got 3"),
        ({"batch": 0}, "batch must be an int >= 1"),
    ],
)
def test_span_mask_rejects_bad_arguments(kwargs, match):
    args = {"batch": 2, "frames": 20, "mask_prob": 0.5, "span": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        span_mask(**args)


# -------------------------------------------------------------------------- the targets


def test_targets_are_the_mean_of_the_top_k_layers_each_instance_normalised_over_time():
    g = torch.Generator().manual_seed(0)
    layers = [3.0 * torch.randn(2, 5, 4, generator=g) + i for i in range(4)]
    expected = torch.zeros(2, 5, 4)
    for x in layers[-3:]:  # by hand: per clip and feature, over the 5 frames
        for b in range(2):
            for d in range(4):
                series = x[b, :, d]
                mean = sum(series.tolist()) / 5
                var = sum((v - mean) ** 2 for v in series.tolist()) / 5
                expected[b, :, d] += (series - mean) / (var + 1e-5) ** 0.5 / 3
    torch.testing.assert_close(data2vec_targets(layers, 3), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(data2vec_targets(layers, 1), data2vec_targets(layers[-1:], 1))


@pytest.mark.parametrize(
    ("layers", "top_k", "match"),
    [
        ([], 1, "layer_outputs is empty"),
        ([torch.zeros(2, 5)], 1, r"share one shape \(batch, frames, dim\), got \[\(2, 5\)\]"),
        ([torch.zeros(2, 5, 3), torch.zeros(2, 4, 3)], 1, "share one shape"),
        ([torch.zeros(2, 5, 3)] * 2, 3, "top_k=3 is larger than the number of layers, 2"),
        ([torch.zeros(2, 5, 3)] * 2, 0, "top_k must be an int >= 1"),
    ],
)
def test_targets_reject_bad_input(layers, top_k, match):
    with pytest.raises(ValueError, match=match):
        data2vec_targets(layers, top_k)


# ----------------------------------------------------------------------------- the loss


@pytest.mark.parametrize(("batch", "frames", "dim"), [(1, 4, 1), (3, 6, 5)])
def test_loss_is_the_squared_error_averaged_over_masked_frames_and_features(batch, frames, dim):
    g = torch.Generator().manual_seed(batch)
    prediction = torch.randn(batch, frames, dim, generator=g)
    target = torch.randn(batch, frames, dim, generator=g)
    mask = torch.rand(batch, frames, generator=g) < 0.5
    mask[0, 0] = True
    total, count = 0.0, 0
    for b in range(batch):  # brute force, frame by frame
        for t in range(frames):
            if mask[b, t]:
                total += sum(
                    (p - q) ** 2 for p, q in zip(prediction[b, t], target[b, t], strict=True)
                )
                count += dim
    loss = masked_regression_loss(prediction, target, mask)
    assert loss.ndim == 0
    assert float(loss) == pytest.approx(float(total) / count, rel=1e-5)
    changed = prediction.clone()
    changed[~mask] += 100.0  # unmasked frames do not count
    assert float(masked_regression_loss(changed, target, mask)) == pytest.approx(float(loss))


@pytest.mark.parametrize(
    ("shapes", "mask", "match"),
    [
        (
            ((2, 3, 4), (2, 3, 5)),
            torch.ones(2, 3, dtype=torch.bool),
            "must be \\(batch, frames, dim\\)",
        ),
        (((2, 3, 4), (2, 3, 4)), torch.ones(2, 3), "mask must be booleans of shape \\(2, 3\\)"),
        (((2, 3, 4), (2, 3, 4)), torch.zeros(2, 3, dtype=torch.bool), "no masked frame"),
    ],
)
def test_loss_rejects_bad_input(shapes, mask, match):
    with pytest.raises(ValueError, match=match):
        masked_regression_loss(torch.zeros(shapes[0]), torch.zeros(shapes[1]), mask)


# ------------------------------------------------------------------------ the teacher


def test_no_gradient_reaches_the_teacher_and_the_student_gets_one():
    method = tiny()
    wave = torch.randn(4, TIME, generator=torch.Generator().manual_seed(1))
    method.teacher.requires_grad_(True)  # even a trainable teacher gets no gradient
    method.training_step(wave, wave).loss.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    assert method.encoder.mask_embedding.grad.abs().sum() > 0
    assert method.encoder.blocks[0].linear1.weight.grad.abs().sum() > 0


def test_the_teacher_sees_the_unmasked_clip():
    method = tiny().eval()
    wave = torch.randn(3, TIME, generator=torch.Generator().manual_seed(2))
    _, target, mask, _, teacher_last = method(wave)
    with torch.no_grad():
        whole = method.teacher.layer_outputs(method.teacher.frames(wave))
    torch.testing.assert_close(target, data2vec_targets(whole, 2))
    torch.testing.assert_close(teacher_last, whole[-1])
    assert mask.any()


def test_the_ema_update_is_t_equals_m_t_plus_one_minus_m_s():
    method = tiny(tau_base=0.9)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(torch.randn_like(p))
    teacher = [p.clone() for p in method.teacher.parameters()]
    student = [p.clone() for p in method.encoder.parameters()]
    method.on_step_end(0.25)
    m = method.momentum
    assert m == pytest.approx(1 - 0.1 * (2**-0.5 / 2 + 0.5))  # BYOL's cosine schedule at 1/4
    for after, t, s in zip(method.teacher.parameters(), teacher, student, strict=True):
        torch.testing.assert_close(after, m * t + (1 - m) * s)
    for after, s in zip(method.encoder.parameters(), student, strict=True):
        assert torch.equal(after, s)  # the student does not move


# -------------------------------------------------------------------- the method, trained


def test_loss_goes_down_on_a_fixed_batch():
    method = tiny()
    wave = torch.randn(8, TIME, generator=torch.Generator().manual_seed(3))
    trained = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=3e-3)
    torch.manual_seed(0)
    first = float(method.training_step(wave, wave).loss.detach())
    for step in range(30):
        torch.manual_seed(step)  # the same masks before and after
        loss = method.training_step(wave, wave).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.on_step_end(step / 30)
    torch.manual_seed(0)
    assert float(method.training_step(wave, wave).loss.detach()) < 0.7 * first


def test_fit_trains_data2vec_on_the_bundled_sample():
    from dlsaudio.data import load_digits

    method = tiny()
    data = load_digits("sample")
    history = fit(
        method,
        data,
        epochs=1,
        batch_size=64,
        clip_samples=4000,
        progress=False,
        augment=Identity(),
        device="cpu",
    )
    losses = [row["loss"] for row in history.steps]
    assert len(losses) == len(data) // 64 and all(torch.isfinite(torch.tensor(losses)))
    teacher = dict(method.teacher.named_parameters())
    moved = [n for n, p in method.encoder.named_parameters() if not torch.equal(p, teacher[n])]
    assert moved  # the teacher follows the student, not equal to it
    assert method.embed(torch.zeros(2, 4000)).shape == (2, 8)


def test_make_method_builds_data2vec_by_name():
    assert "data2vec" in METHODS
    method = make_method("data2vec", mel_options={"n_mels": 20, "mean_norm": False}, top_k=2)
    assert type(method) is Data2Vec and method.top_k == 2
    assert method.encoder.front.mel.n_mels == 20 and not method.encoder.mean_norm
    assert make_method("data2vec", config="resnet18").encoder.dim == 256
    with pytest.raises(ValueError, match="data2vec predicts masked log-mel frames"):
        make_method("data2vec", encoder="wave")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tiny(top_k=4), "top_k=4 is larger than the encoder's 3 blocks"),
        (lambda: tiny(mask_prob=1.5), r"mask_prob must be a number in \(0, 1\)"),
        (lambda: tiny(tau_base=2.0), r"tau_base must be a number in \[0, 1\]"),
        (lambda: FrameEncoder(dim=6, heads=4), "dim=6 must be divisible by heads=4"),
        (lambda: FrameEncoder("huge"), "config='huge' is unknown"),
        (lambda: tiny().encoder.frames(torch.zeros(2, 100)), r"time >= 400, got \(2, 100\)"),
    ],
)
def test_bad_settings_and_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_label_efficiency_benchmark_trains_and_probes_data2vec(capsys, monkeypatch):
    import dlsaudio.bench.label_efficiency as bench
    from dlsaudio.bench import ssl

    def no_baselines(*args, **kwargs):  # the supervised baselines are tested elsewhere
        return {"1": {"mean": 0.0, "std": 0.0, "draws": 1}}

    monkeypatch.setattr(bench, "supervised_per_k", no_baselines)
    argv = ["--skip-losses", "--skip-training", "--data", "sample", "--minutes", "0.003"]
    assert ssl.main([*argv, "--draws", "1", "--methods", "data2vec"]) == 0
    out = json.loads(capsys.readouterr().out)["label_efficiency"]
    assert list(out["data2vec"]["probe"]) == ["1", "2", "5", "10", "all"]
    assert out["data2vec"]["steps"] >= 1 and 0.0 <= out["data2vec"]["knn"] <= 1.0
