"""Train the toy model for a few steps; run under ``torchrun`` or in one process.

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT [CKPT]``
saves the final parameters (rank 0) to ``OUT`` and, given ``CKPT``, the training checkpoint
(``CKPT/last.pt``) to that folder. ``tests/test_ddp.py`` compares them with one
process that sees the same global batches.
"""

from __future__ import annotations

import sys

import torch
from torch.utils.data import DataLoader

from dlsaudio.asr.checks import ToySeq2Seq, toy_collate, toy_items
from dlsaudio.asr.sampling import SourceWeightedSampler
from dlsaudio.asr.train import init_distributed, train, unwrap, wrap_model

MICRO_BATCH = 2
GLOBAL_ACCUM = 4  # micro-batches per optimizer step over all processes
STEPS = 3


def run(out: str | None = None, checkpoint_dir: str | None = None) -> dict[str, torch.Tensor]:
    env = init_distributed(device="cpu")
    torch.manual_seed(0)
    model = wrap_model(ToySeq2Seq(), env)
    items = toy_items(40, seed=1, max_len=10)
    sources = ["ky"] * 30 + ["kk"] * 10
    sampler = SourceWeightedSampler(
        sources, alpha=0.5, num_samples=48, seed=2, rank=env.rank, world_size=env.world_size
    )
    loader = DataLoader(items, batch_size=MICRO_BATCH, sampler=sampler, collate_fn=toy_collate)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train(
        model,
        loader,
        optimizer=optimizer,
        max_steps=STEPS,
        accum_steps=GLOBAL_ACCUM // env.world_size,
        grad_clip=None,
        checkpoint_dir=checkpoint_dir,
        progress=False,
        log_every=0,
        env=env,
    )
    state = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}
    if out is not None and env.is_main:
        torch.save(state, out)
    if env.world_size > 1:
        torch.distributed.destroy_process_group()
    return state


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
