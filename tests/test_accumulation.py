"""Exact gradient accumulation, the training loop, checkpoints and the schedule."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dlsaudio.asr.checks import (
    ToySeq2Seq,
    accumulation_case,
    full_batch_gradients,
    toy_collate,
    toy_items,
)
from dlsaudio.asr.precision import optimizer_step, resolve_precision
from dlsaudio.asr.sampling import SourceWeightedSampler
from dlsaudio.asr.train import (
    History,
    TrainConfig,
    accumulate_gradients,
    plot_history,
    token_loss_sum,
    train,
    warmup_linear_decay,
    whisper_logits,
)


def grads_of(model):
    grads = [p.grad.detach().clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)
    return grads


def relative_error(a, b):
    num = math.sqrt(sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True)))
    return num / math.sqrt(sum(float(y.pow(2).sum()) for y in b))


def test_token_loss_sum_against_a_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g)
    labels = torch.randint(0, 7, (3, 5), generator=g)
    labels[0, 2:] = -100
    labels[2, 4] = -100
    total, count = 0.0, 0
    for b in range(3):
        for t in range(5):
            if labels[b, t] != -100:
                total += float(-F.log_softmax(logits[b, t], -1)[labels[b, t]])
                count += 1
    loss_sum, n_tokens = token_loss_sum(logits, labels)
    assert n_tokens == count == 11
    assert float(loss_sum) == pytest.approx(total, rel=1e-6)


def test_token_loss_sum_shape_error():
    with pytest.raises(ValueError, match=r"logits .* and labels .* do not match"):
        token_loss_sum(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_whisper_logits_shifts_labels_like_transformers():
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    seen = {}

    class Spy(ToySeq2Seq):
        def forward(self, input_features, decoder_input_ids):
            seen["ids"] = decoder_input_ids
            return super().forward(input_features, decoder_input_ids)

    model = Spy()
    batch = toy_collate(toy_items(3, seed=1))
    logits = whisper_logits(model, batch)
    assert logits.shape == (*batch["labels"].shape, 24)
    expected = shift_tokens_right(
        batch["labels"], model.config.pad_token_id, model.config.decoder_start_token_id
    )
    assert torch.equal(seen["ids"], expected)


@pytest.mark.parametrize("k, micro, seed", [(2, 1, 0), (3, 2, 1), (4, 3, 2)])
def test_window_gradient_equals_full_batch(k, micro, seed):
    model, window, full = accumulation_case(k=k, micro=micro, seed=seed)
    lengths = [int((b["labels"] != -100).sum()) for b in window]
    assert len(set(lengths)) > 1, "the case must have micro-batches with different token counts"
    reference = full_batch_gradients(model, full)
    loss, n_tokens = accumulate_gradients(model, window, logits_fn=whisper_logits)
    assert relative_error(grads_of(model), reference) <= 1e-5
    assert n_tokens == int((full["labels"] != -100).sum())
    full_sum, _ = token_loss_sum(whisper_logits(model, full), full["labels"])
    assert loss == pytest.approx(full_sum.item() / n_tokens, rel=1e-6)
    # the mean of the micro-batch means is a different gradient
    accumulate_gradients(model, window, logits_fn=whisper_logits, normalization="mean_of_means")
    assert relative_error(grads_of(model), reference) > 1e-2


def test_mean_of_means_equals_window_when_token_counts_are_equal():
    torch.manual_seed(0)
    model = ToySeq2Seq()
    items = toy_items(4, seed=3)
    for item in items:
        item["labels"] = item["labels"][:1].repeat(5)
    window = [toy_collate(items[:2]), toy_collate(items[2:])]
    accumulate_gradients(model, window, logits_fn=whisper_logits)
    exact = grads_of(model)
    accumulate_gradients(model, window, logits_fn=whisper_logits, normalization="mean_of_means")
    assert relative_error(grads_of(model), exact) <= 1e-6


def test_window_gradient_with_tiny_whisper(tiny_whisper_sizes):
    from dlsaudio.asr.whisper import build_tiny_whisper

    model, _ = build_tiny_whisper(**tiny_whisper_sizes)
    g = torch.Generator().manual_seed(0)
    lengths = [2, 9, 4, 5]
    labels = torch.full((4, 9), -100)
    for row, n in enumerate(lengths):
        labels[row, :n] = torch.randint(400, 1000, (n,), generator=g)
    features = torch.randn(4, 80, 3000, generator=g)
    full = {"input_features": features, "labels": labels}
    window = [
        {
            "input_features": features[i : i + 2],
            "labels": labels[i : i + 2, : max(lengths[i : i + 2])],
        }
        for i in (0, 2)
    ]
    reference = full_batch_gradients(model, full)
    accumulate_gradients(model, window)
    assert relative_error(grads_of(model), reference) <= 1e-5


def make_loader(seed=0, n=24, batch_size=2):
    items = toy_items(n, seed=seed)
    sources = ["a"] * (n // 2) + ["b"] * (n - n // 2)
    sampler = SourceWeightedSampler(sources, alpha=0.0, seed=seed)
    return DataLoader(items, batch_size=batch_size, sampler=sampler, collate_fn=toy_collate)


def test_one_training_step_equals_a_full_batch_sgd_step():
    torch.manual_seed(0)
    model = ToySeq2Seq()
    reference = ToySeq2Seq()
    reference.load_state_dict(model.state_dict())
    loader = make_loader(batch_size=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    train(
        model,
        loader,
        optimizer=optimizer,
        max_steps=1,
        accum_steps=3,
        grad_clip=None,
        progress=False,
    )
    first_six = torch.utils.data.Subset(loader.dataset, list(loader.sampler)[:6])
    full = toy_collate(list(first_six))
    grads = full_batch_gradients(reference, full)
    with torch.no_grad():
        for p, grad in zip(reference.parameters(), grads, strict=True):
            p -= 0.5 * grad
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_scheduler_steps_once_per_optimizer_step_and_effective_batch_is_printed(capsys):
    torch.manual_seed(0)
    model = ToySeq2Seq()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = warmup_linear_decay(optimizer, warmup=2, total=5)
    history = train(
        model,
        make_loader(),
        optimizer=optimizer,
        scheduler=scheduler,
        max_steps=5,
        accum_steps=3,
        progress=False,
    )
    assert scheduler.last_epoch == 5
    assert [r["lr"] for r in history.steps] == pytest.approx(
        [5e-3, 1e-2, 1e-2, 1e-2 * 2 / 3, 1e-2 / 3]
    )
    out = capsys.readouterr().out
    assert out.count("effective batch = 2 (micro-batch) x 3 (accum_steps) x 1 (processes) = 6") == 1


def test_resume_reproduces_the_loss_trajectory(tmp_path):
    def run(max_steps, resume, folder):
        torch.manual_seed(0)
        model = ToySeq2Seq(dropout=0.3)  # dropout: the RNG state must be restored too
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        scheduler = warmup_linear_decay(optimizer, warmup=2, total=8)
        loader = make_loader(n=10, batch_size=2)  # 5 batches per epoch: crosses epochs
        config = TrainConfig(
            max_steps=max_steps,
            accum_steps=2,
            checkpoint_dir=folder,
            checkpoint_every=1,
            resume=resume,
            progress=False,
        )
        return train(model, loader, config, optimizer=optimizer, scheduler=scheduler)

    straight = run(8, False, tmp_path / "a")
    run(3, False, tmp_path / "b")
    resumed = run(8, True, tmp_path / "b")
    assert [r["loss"] for r in resumed.steps] == [r["loss"] for r in straight.steps]
    assert len(resumed.steps) == 8
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_keyword_options_replace_fields_of_the_config():
    torch.manual_seed(0)
    model = ToySeq2Seq()
    config = TrainConfig(max_steps=5, log_every=0, progress=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(model, make_loader(), config, optimizer=optimizer, max_steps=2)
    assert [r["step"] for r in history.steps] == [1, 2] and config.max_steps == 5
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_step'"):
        train(model, make_loader(), optimizer=optimizer, max_step=2)


def test_an_overflowed_fp16_step_moves_neither_the_weights_nor_the_schedule():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scheduler = warmup_linear_decay(optimizer, warmup=2, total=10)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # fp16's scaler, on the CPU

    scaler.scale((weight * torch.tensor([1.0, float("inf"), 1.0])).sum()).backward()
    assert optimizer_step(optimizer, scaler, scheduler) is False  # overflow: step skipped
    assert torch.equal(weight.detach(), torch.ones(3)) and scheduler.last_epoch == 0
    assert scaler.get_scale() == 512.0
    optimizer.zero_grad()

    scaler.scale(weight.sum()).backward()
    assert optimizer_step(optimizer, scaler, scheduler) is True
    assert scheduler.last_epoch == 1
    assert torch.allclose(weight.detach(), torch.full((3,), 1 - 0.1 * 0.5))  # warmup: lr / 2


def test_without_a_scaler_every_step_counts():
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    weight.sum().backward()
    assert optimizer_step(optimizer, scaler) is True
    assert torch.equal(weight.detach(), torch.zeros(2))


def test_eval_every_records_metrics_and_plot():
    torch.manual_seed(0)
    model = ToySeq2Seq()
    calls = []

    def eval_fn(m):
        calls.append(m.training)
        return {"wer": 1.0 / (len(calls)), "cer": 0.5}

    history = train(
        model,
        make_loader(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        max_steps=5,
        eval_every=2,
        eval_fn=eval_fn,
        log_every=0,
        progress=False,
    )
    assert [r["step"] for r in history.eval] == [2, 4, 5]
    assert calls == [False, False, False] and model.training
    assert history.eval[0]["wer"] == 1.0
    fig = plot_history(history)
    assert len(fig.axes) == 3
    train_frame, eval_frame = history.frames()
    assert list(eval_frame["step"]) == [2, 4, 5] and len(train_frame) == 5


def test_precision():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match=r"precision='fp16' needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match=r"precision='half'; expected one of"):
        resolve_precision("half", cpu)


def test_bf16_on_cpu_trains():
    torch.manual_seed(0)
    model = ToySeq2Seq()
    history = train(
        model,
        make_loader(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        max_steps=2,
        precision="bf16",
        progress=False,
    )
    assert all(math.isfinite(r["loss"]) for r in history.steps)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_steps": 0}, r"max_steps=0 must be a positive integer"),
        ({"accum_steps": 0}, r"accum_steps=0 must be a positive integer"),
        ({"eval_every": 0}, r"eval_every=0 must be a positive integer"),
        ({"checkpoint_every": -1}, r"checkpoint_every=-1"),
        ({"grad_clip": 0.0}, r"grad_clip=0.0 must be > 0"),
        ({"resume": True}, r"resume=True needs checkpoint_dir"),
        ({"normalization": "mean"}, r"normalization='mean'; expected one of"),
        ({"precision": "fp8"}, r"precision='fp8'"),
    ],
)
def test_train_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"max_steps": 1, **kwargs})


def test_other_value_errors():
    model, window, _ = accumulation_case()
    with pytest.raises(ValueError, match=r"normalization='sum'"):
        accumulate_gradients(model, window, normalization="sum")
    with pytest.raises(ValueError, match="window is empty"):
        accumulate_gradients(model, [])
    empty = {**window[0], "labels": torch.full_like(window[0]["labels"], -100)}
    with pytest.raises(ValueError, match="no label tokens"):
        accumulate_gradients(model, [empty])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="expected 0 <= warmup < total"):
        warmup_linear_decay(optimizer, 5, 5)
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        train(
            model,
            DataLoader([], collate_fn=toy_collate),
            optimizer=optimizer,
            max_steps=1,
            progress=False,
        )
    assert History().steps == []


def test_step_cost_activation_memory_follows_the_micro_batch():
    from dlsaudio.timing import step_cost

    torch.manual_seed(0)
    model = ToySeq2Seq(dim=64)
    items = toy_items(8, seed=4, frames=4)
    for item in items:
        item["labels"] = item["labels"][:1].repeat(8)
    one = step_cost(model, [toy_collate(items)])
    four = step_cost(model, [toy_collate(items[i : i + 2]) for i in range(0, 8, 2)])
    assert one["examples"] == four["examples"] == 8
    assert 3.0 < one["activation_mb"] / four["activation_mb"] <= 4.0 + 1e-6
    assert all(p.grad is None for p in model.parameters())
