"""The ASR training loop under bad input: unusable checkpoints and a diverging loss."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from dlsaudio.asr.checks import ToySeq2Seq, toy_collate, toy_items
from dlsaudio.asr.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def run(folder, *, steps=2, batch_size=2, n=10, model=None, resume=False, lr=0.1):
    torch.manual_seed(0)
    model = ToySeq2Seq() if model is None else model
    loader = DataLoader(toy_items(n, seed=0), batch_size=batch_size, collate_fn=toy_collate)
    train(
        model,
        loader,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        max_steps=steps,
        accum_steps=2,
        grad_clip=None,
        checkpoint_dir=folder,
        resume=resume,
        progress=False,
        log_every=0,
    )
    return model


def test_a_truncated_checkpoint_is_named_with_what_to_do(tmp_path):
    run(tmp_path)
    path = tmp_path / "last.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*last\.pt"):
        run(tmp_path, steps=4, resume=True)


class Wider(ToySeq2Seq):
    def __init__(self):
        super().__init__(dim=32)


class WithAHead(ToySeq2Seq):
    def __init__(self):
        super().__init__()
        self.extra = nn.Linear(2, 2)


@pytest.mark.parametrize(
    "other, problem",
    [(Wider, r"\d+ of another shape \(e\.g\. encoder\.weight"), (WithAHead, r"2 missing")],
)
def test_a_checkpoint_of_another_model_is_named_with_the_mismatch(tmp_path, other, problem):
    run(tmp_path)
    with pytest.raises(ValueError, match=rf"checkpoint .*last\.pt holds another model.*{problem}"):
        run(tmp_path, steps=4, model=other(), resume=True)


def test_a_checkpoint_of_another_training_loop_is_named(tmp_path):
    torch.save(
        {"model": {}, "optimizer": {}, "scaler": {}, "epoch": 3, "history": {}},
        tmp_path / "last.pt",
    )
    with pytest.raises(ValueError, match=r"last\.pt lacks \['scheduler', 'step', 'consumed'\]"):
        run(tmp_path, steps=4, resume=True)


def test_an_optimizer_over_other_parameters_is_named(tmp_path):
    run(tmp_path)
    torch.manual_seed(0)
    model = ToySeq2Seq()
    loader = DataLoader(toy_items(10, seed=0), batch_size=2, collate_fn=toy_collate)
    optimizer = torch.optim.SGD(model.encoder.parameters(), lr=0.1)  # not the whole model
    with pytest.raises(ValueError, match=r"the optimizer state in .*last\.pt does not fit"):
        train(model, loader, optimizer=optimizer, max_steps=4, checkpoint_dir=tmp_path, resume=True)


def test_resuming_with_another_micro_batch_says_which_one_to_use(tmp_path):
    run(tmp_path, steps=1)  # 2 micro-batches of 2 consumed in epoch 0
    with pytest.raises(ValueError, match="micro-batches of 2 examples, this run has 4"):
        run(tmp_path, steps=4, batch_size=4, resume=True)


def test_resuming_on_data_that_end_before_the_recorded_position_is_refused(tmp_path):
    run(tmp_path, steps=2)  # 4 of the 5 micro-batches of epoch 0 consumed
    with pytest.raises(ValueError, match=r"last\.pt: the position .* batch 4 of epoch 0"):
        run(tmp_path, steps=4, n=6, resume=True)


def test_resume_without_a_checkpoint_says_it_starts_afresh(tmp_path, capsys):
    run(tmp_path / "new", steps=1, resume=True)
    assert "does not exist yet, training from step 0" in capsys.readouterr().out


def test_a_diverging_run_stops_at_the_first_non_finite_loss_before_it_changes_the_weights(
    tmp_path,
):
    reference = run(tmp_path / "a", steps=2, lr=1e38)  # checkpoints at its last step, 2
    torch.manual_seed(0)
    diverging = ToySeq2Seq()
    with pytest.raises(
        FloatingPointError,
        match=r"step 3: the loss is (inf|nan).*before this step changed the weights",
    ):
        run(tmp_path / "a", steps=5, model=diverging, resume=True, lr=1e38)
    for p, q in zip(reference.parameters(), diverging.parameters(), strict=True):
        assert torch.isfinite(p).all() and torch.equal(p, q)


def test_a_model_with_no_trainable_parameter_is_refused_before_any_step(tmp_path):
    """A merged LoRA model keeps its base weights frozen: training it would fail deep inside
    backward with an autograd message; the loop names the cause and the fix instead."""
    frozen = ToySeq2Seq().requires_grad_(False)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    with pytest.raises(
        ValueError,
        match="none of the model's parameters requires a gradient",
    ):
        run(tmp_path, model=frozen)
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    assert not (tmp_path / "last.pt").exists()
    trained = run(tmp_path, model=frozen.requires_grad_(True))  # the fix the message gives works
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())
