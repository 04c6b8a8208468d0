"""LoRA on the tiny offline Whisper: only adapters train, accumulation stays exact, training
resumes from a checkpoint, and the merged model is a plain Whisper with the same outputs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("whisper")
pytest.importorskip("peft")

from transformers import WhisperForConditionalGeneration  # noqa: E402

from dlsaudio.asr import build_tiny_whisper, load_whisper, transcribe_features  # noqa: E402
from dlsaudio.asr.lora import LORA_TARGETS, add_lora, count_parameters, merge_lora  # noqa: E402
from dlsaudio.asr.train import accumulate_gradients, token_loss_sum, train, whisper_logits  # noqa: E402

D_MODEL, RANK = 32, 4


def tiny():
    return build_tiny_whisper(d_model=D_MODEL, layers=1, heads=2, chunk_seconds=1, seed=0)


def micro_batch(size: int, max_len: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    lengths = torch.randint(1, max_len + 1, (size,), generator=generator)
    labels = torch.full((size, int(lengths.max())), -100)
    for row, n in enumerate(lengths.tolist()):
        labels[row, :n] = torch.randint(400, 50000, (n,), generator=generator)
    return {"input_features": torch.randn(size, 80, 100, generator=generator), "labels": labels}


def window(k: int = 3, micro: int = 2, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [micro_batch(micro, 2 + 4 * i, g) for i in range(k)]  # unequal token counts


def concat(batches):
    length = max(b["labels"].shape[1] for b in batches)
    labels = [
        torch.nn.functional.pad(b["labels"], (0, length - b["labels"].shape[1]), value=-100)
        for b in batches
    ]
    return {
        "input_features": torch.cat([b["input_features"] for b in batches]),
        "labels": torch.cat(labels),
    }


def lora_model(seed: int = 0):
    """A tiny Whisper with adapters whose B is random, so that A has gradients too."""
    model, processor = tiny()
    model = add_lora(model, RANK)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model, processor


def test_only_the_adapters_train():
    model, _ = tiny()
    total_before = count_parameters(model)[1]
    model = add_lora(model, RANK)
    trainable, total = count_parameters(model)
    # q_proj and v_proj of 1 encoder self-attention, 1 decoder self- and 1 cross-attention
    linears = 2 * (1 + 2)
    assert trainable == linears * RANK * (D_MODEL + D_MODEL)
    assert total == total_before + trainable
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_A" in n or "lora_B" in n for n in names)
    assert {n.split(".")[-4] for n in names} == set(LORA_TARGETS)


def test_accumulation_stays_exact_with_lora():
    """The accumulated gradient of every adapter equals the gradient of one big batch made of
    the whole window (brute force); the frozen weights get none."""
    model, _ = lora_model()
    model.eval()
    batches = window()
    loss_sum, n_tokens = token_loss_sum(
        whisper_logits(model, concat(batches)), concat(batches)["labels"]
    )
    (loss_sum / n_tokens).backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, batches)
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert set(got) == set(reference) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n and reference[n].abs().sum() > 0 for n in reference)
    num = sum(float((got[n] - reference[n]).pow(2).sum()) for n in got) ** 0.5
    den = sum(float(r.pow(2).sum()) for r in reference.values()) ** 0.5
    assert num / den < 1e-5
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, batches, normalization="mean_of_means")
    naive = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert sum(float((naive[n] - reference[n]).pow(2).sum()) for n in naive) ** 0.5 / den > 1e-3


def run(model, steps, folder=None, resume=False):
    batches = [micro for seed in range(4) for micro in window(2, 2, seed)]
    optimizer = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-2)
    return train(
        model, batches, optimizer=optimizer, max_steps=steps, accum_steps=2, log_every=0,
        checkpoint_dir=folder, resume=resume, progress=False,
    )  # fmt: skip


def test_lora_training_resumes_from_its_checkpoint(tmp_path):
    straight, _ = lora_model()
    frozen = {n: p.detach().clone() for n, p in straight.named_parameters() if not p.requires_grad}
    run(straight, 4)
    for name, p in straight.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} is frozen but changed"
    first, _ = lora_model()
    run(first, 2, tmp_path)
    second, _ = lora_model()  # a new session: the same model built again, then resumed
    history = run(second, 4, tmp_path, resume=True)
    assert [r["step"] for r in history.steps] == [1, 2, 3, 4]
    for (name, a), b in zip(straight.named_parameters(), second.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_merged_model_is_a_plain_whisper_with_the_same_outputs(tmp_path):
    model, processor = lora_model()
    model.eval()
    batch = concat(window())
    with torch.no_grad():
        adapted = whisper_logits(model, batch)
    feats = list(batch["input_features"][:2])
    adapted_text = transcribe_features(model, processor, feats, max_new_tokens=4)
    merged = merge_lora(model)
    assert type(merged) is WhisperForConditionalGeneration
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(whisper_logits(merged, batch), adapted, atol=1e-5)
    assert transcribe_features(merged, processor, feats, max_new_tokens=4) == adapted_text
    merged.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, _ = load_whisper(str(tmp_path))
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(whisper_logits(loaded, batch), adapted, atol=1e-5)


def test_adding_the_same_adapters_twice_keeps_them():
    model = add_lora(tiny()[0], RANK)
    assert add_lora(model, RANK) is model
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        add_lora(model, 8)


def test_no_rank_means_full_fine_tuning():
    model, _ = tiny()
    before = count_parameters(model)
    assert add_lora(model, None) is model
    assert merge_lora(model) is model
    assert count_parameters(model) == before


def test_same_seed_same_adapters_and_the_callers_random_state_is_left_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = add_lora(tiny()[0], RANK)
    assert torch.equal(torch.rand(1), expected_next)
    b = add_lora(tiny()[0], RANK)
    c = add_lora(tiny()[0], RANK, seed=1)
    first = next(p for n, p in a.named_parameters() if "lora_A" in n)
    assert torch.equal(first, next(p for n, p in b.named_parameters() if "lora_A" in n))
    assert not torch.equal(first, next(p for n, p in c.named_parameters() if "lora_A" in n))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rank": 0}, "rank=0; expected a positive integer"),
        ({"rank": 2.5}, "rank=2.5; expected a positive integer"),
        ({"rank": True}, "rank=True; expected a positive integer"),
        ({"rank": 4, "alpha": 0}, "alpha=0; expected a positive number"),
        ({"rank": 4, "dropout": 1.0}, "dropout=1.0; expected a number in"),
        (
            {"rank": 4, "targets": ("query", "v_proj")},
            r"no linear layer is called \['query'\]",
        ),
        (
            {"rank": 4, "targets": ()},
            r"targets=\[\]: no layer to adapt",
        ),
    ],
)
def test_bad_lora_arguments_raise(kwargs, match):
    model, _ = tiny()
    with pytest.raises(ValueError, match=match):
        add_lora(model, **kwargs)
