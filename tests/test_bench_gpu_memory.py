"""The micro-batch search of ``python -m dlsaudio.bench gpu``: doubling then bisection over a
predicate, and out-of-memory errors (only those) counted as "does not fit"."""

from __future__ import annotations

import math

import pytest
import torch

from dlsaudio.bench.gpu_memory import largest_fitting, search_micro_batch


class Predicate:
    def __init__(self, limit: int) -> None:
        self.limit, self.calls = limit, []

    def __call__(self, size: int) -> bool:
        self.calls.append(size)
        return size <= self.limit


@pytest.mark.parametrize(
    ("limit", "upper", "expected"),
    [
        (37, 64, 37),
        (37, 37, 37),
        (37, 36, 36),
        (1, 64, 1),
        (0, 64, 0),
        (1000, 50, 50),
        (64, 64, 64),
    ],
)
def test_the_search_finds_the_largest_size_that_fits(limit, upper, expected):
    fits = Predicate(limit)
    assert largest_fitting(fits, upper) == expected
    assert max(fits.calls) <= upper
    assert len(fits.calls) <= 2 * math.ceil(math.log2(upper)) + 2  # doubling, then bisection
    if 0 < expected < upper:
        assert expected in fits.calls and expected + 1 in fits.calls


@pytest.mark.parametrize("upper", [0, -3, 2.5, True])
def test_the_search_bound_must_be_a_positive_integer(upper):
    with pytest.raises(ValueError, match="upper"):
        largest_fitting(Predicate(3), upper)


class FakeTrainer:
    """What search_micro_batch uses of a Trainer; a step above ``limit`` raises ``error``."""

    def __init__(self, limit: int, error: Exception | None = None) -> None:
        self.limit, self.resets = limit, 0
        self.error = error or torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate")
        self.device = torch.device("cpu")
        self.model = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def step(self, window):
        if len(window[0]["labels"]) > self.limit:
            raise self.error
        return 1, True

    def reset_scaler(self):
        self.resets += 1


def _rows(size: int) -> dict:
    return {"labels": torch.zeros(size, 3, dtype=torch.long)}


def test_the_memory_search_counts_out_of_memory_as_does_not_fit():
    trainer = FakeTrainer(limit=5)
    result = search_micro_batch(trainer, _rows, upper=16)
    assert result["value"] == 5 and result["upper_bound"] == 16
    assert {t["micro_batch"]: t["fits"] for t in result["tried"]}[6] is False
    assert trainer.resets == sum(not t["fits"] for t in result["tried"])


def test_cublas_allocation_failures_also_mean_does_not_fit():
    error = RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")
    assert search_micro_batch(FakeTrainer(9, error), _rows, upper=16)["value"] == 9


@pytest.mark.parametrize(
    "error", [RuntimeError("CUDA error: an illegal memory access"), ValueError("bad labels")]
)
def test_the_memory_search_lets_other_errors_through(error):
    with pytest.raises(type(error), match=str(error)):
        search_micro_batch(FakeTrainer(5, error), _rows, upper=16)
