"""Checkpoint files and random state shared by both training loops."""

import errno
import random

import numpy as np
import pytest
import torch

from dlsaudio.checkpoint import rank_rng_state, rng_state, save_checkpoint, set_rng_state


def test_save_checkpoint_is_atomic(tmp_path):
    path = save_checkpoint(tmp_path / "ck" / "last.pt", {"step": 3})
    assert torch.load(path)["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})
    real_save = torch.save

    def disk_full_mid_write(obj, f):
        real_save({"step": 2, "big": torch.zeros(1000)}, f)  # part of the file is written...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(torch, "save", disk_full_mid_write)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*last\.pt"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(path)["step"] == 1


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - a lambda cannot be pickled
        save_checkpoint(tmp_path / "last.pt", {"fn": lambda: 1})
    assert list(tmp_path.iterdir()) == []


def test_rng_state_round_trip():
    state = rng_state()
    drawn = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(state)
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(drawn[0], again[0]) and drawn[1:] == again[1:]


def test_each_rank_gets_its_own_state_when_the_number_of_ranks_matches():
    saved = [{"rank": 0}, {"rank": 1}]
    assert rank_rng_state(saved, 1, 2) == {"rank": 1}
    assert rank_rng_state(saved, 1, 4) == {"rank": 0}  # another number of processes
    assert rank_rng_state({"rank": 0}, 3, 4) == {"rank": 0}  # a single saved state


def test_reading_names_a_missing_file_and_a_file_that_is_not_a_checkpoint(tmp_path):
    from dlsaudio.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*nothing\.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
