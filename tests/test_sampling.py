"""SourceWeightedSampler: frequencies, seeding, sharding, closed forms and every error."""

import math
from collections import Counter

import pytest
import torch
from scipy.stats import chisquare
from torch.utils.data import DataLoader

from dlsaudio.asr.sampling import (
    SourceWeightedSampler,
    example_weights,
    source_counts,
    source_probabilities,
)

SOURCES = ["ky"] * 60 + ["ky_noisy"] * 30 + ["kk"] * 10


def source_frequencies(sampler, sources=SOURCES):
    drawn = Counter(sources[i] for i in sampler)
    return [drawn[s] for s in sampler.probabilities]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"alpha": 0.0}, {"alpha": 0.5}, {"weights": {"ky": 1.0, "ky_noisy": 1.0, "kk": 2.0}}],
)
def test_frequencies_match_targets_chi_square(kwargs):
    sampler = SourceWeightedSampler(SOURCES, num_samples=20_000, seed=3, **kwargs)
    observed = source_frequencies(sampler)
    expected = [p * 20_000 for p in sampler.target_probabilities().values()]
    assert chisquare(observed, expected).pvalue > 1e-3


def test_examples_inside_a_source_are_uniform():
    sampler = SourceWeightedSampler(SOURCES, alpha=0.0, num_samples=30_000, seed=1)
    drawn = Counter(iter(sampler))
    kk = [drawn[i] for i in range(90, 100)]
    assert chisquare(kk).pvalue > 1e-3


def test_closed_forms():
    counts = {"a": 64, "b": 16, "c": 4}
    assert source_probabilities(counts) == pytest.approx({"a": 64 / 84, "b": 16 / 84, "c": 4 / 84})
    assert source_probabilities(counts, alpha=1.0) == source_probabilities(counts)
    assert source_probabilities(counts, alpha=0.0) == pytest.approx(
        {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    )
    # sqrt: 8, 4, 2
    assert source_probabilities(counts, alpha=0.5) == pytest.approx(
        {"a": 8 / 14, "b": 4 / 14, "c": 2 / 14}
    )
    assert source_probabilities(counts, weights={"a": 1, "c": 3}) == pytest.approx(
        {"a": 0.25, "b": 0.0, "c": 0.75}
    )


def test_example_weights_are_p_over_n():
    sources = ["a", "a", "a", "b"]
    weights = example_weights(sources, {"a": 0.5, "b": 0.5})
    torch.testing.assert_close(
        weights, torch.tensor([1 / 6, 1 / 6, 1 / 6, 0.5], dtype=torch.float64)
    )
    assert math.isclose(float(weights.sum()), 1.0)


def test_zero_weight_source_is_never_drawn():
    sampler = SourceWeightedSampler(SOURCES, weights={"ky": 1.0}, num_samples=2000)
    assert all(SOURCES[i] == "ky" for i in sampler)


def test_same_seed_same_order_and_set_epoch_changes_it():
    a = SourceWeightedSampler(SOURCES, alpha=0.5, seed=7)
    b = SourceWeightedSampler(SOURCES, alpha=0.5, seed=7)
    assert list(a) == list(b)
    assert list(a) != list(SourceWeightedSampler(SOURCES, alpha=0.5, seed=8))
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first


@pytest.mark.parametrize(
    "num_samples, world_size", [(100, 2), (101, 2), (50, 3), (7, 4), (1, 3), (2, 5)]
)
def test_shards_are_disjoint_and_cover_the_draw(num_samples, world_size):
    shards = [
        SourceWeightedSampler(
            SOURCES, alpha=0.0, num_samples=num_samples, seed=5, rank=r, world_size=world_size
        )
        for r in range(world_size)
    ]
    for shard in shards:
        shard.set_epoch(2)
    full = shards[0].draw().tolist()
    lists = [list(shard) for shard in shards]
    size = math.ceil(num_samples / world_size)
    # every rank yields exactly len() indices, so DDP ranks run the same number of steps
    assert all(len(items) == len(shard) == size for items, shard in zip(lists, shards, strict=True))
    # interleaving the shards (rank r takes positions r, r + W, ...) gives back the draw,
    # then a cyclic repeat of it up to size * W
    interleaved = [lists[p % world_size][p // world_size] for p in range(size * world_size)]
    assert interleaved[:num_samples] == full
    assert interleaved == [full[p % num_samples] for p in range(size * world_size)]


def test_works_with_a_dataloader():
    sampler = SourceWeightedSampler(SOURCES, num_samples=40, seed=0)
    loader = DataLoader(list(range(len(SOURCES))), batch_size=8, sampler=sampler)
    assert torch.cat(list(loader)).tolist() == list(sampler)


def test_describe_table():
    sampler = SourceWeightedSampler(SOURCES, alpha=0.0, num_samples=300)
    table = sampler.describe()
    assert list(table.index) == ["ky", "ky_noisy", "kk"]
    assert table.loc["kk", "examples"] == 10
    assert table.loc["kk", "target_p"] == pytest.approx(1 / 3)
    assert table.loc["kk", "expected_draws"] == pytest.approx(100)
    assert table.loc["kk", "epochs_equivalent"] == pytest.approx(10)
    assert table.loc["ky", "epochs_equivalent"] == pytest.approx(100 / 60)
    assert "kk: 0.333" in repr(sampler)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"weights": {"ky": 1.0, "ru": 1.0}},
            r"sources with no examples: \['ru'\]",
        ),
        ({"weights": {"ky": -1.0, "kk": 1.0}}, r"finite and >= 0.*'ky': -1.0"),
        ({"weights": {"ky": float("nan")}}, r"finite and >= 0"),
        ({"weights": {"ky": 0.0, "kk": 0}}, r"all weights are zero"),
        ({"weights": {"ky": 1.0}, "alpha": 0.5}, r"both weights=.*and alpha=0.5"),
        ({"alpha": float("inf")}, r"alpha=inf must be a finite number"),
        ({"num_samples": 0}, r"num_samples=0 must be a positive integer"),
        ({"world_size": 0}, r"world_size=0 must be a positive integer"),
        ({"rank": 2, "world_size": 2}, r"rank=2 must be an integer in"),
        ({"rank": -1}, r"rank=-1"),
    ],
)
def test_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SourceWeightedSampler(SOURCES, **kwargs)


def test_value_errors_of_the_functions():
    with pytest.raises(ValueError, match="sources is empty"):
        SourceWeightedSampler([])
    with pytest.raises(ValueError, match=r"counts\['a'\]=0"):
        source_probabilities({"a": 0, "b": 3})
    with pytest.raises(ValueError, match=r"no probability for sources \['b'\]"):
        example_weights(["a", "b"], {"a": 1.0})


def test_a_large_alpha_gives_the_largest_source_everything_without_overflow():
    probabilities = source_probabilities({"big": 300, "small": 1}, alpha=1000)
    assert probabilities["big"] == 1.0 and probabilities["small"] == 0.0
    assert source_probabilities({"a": 300, "b": 1}, alpha=-1000)["b"] == 1.0


@pytest.mark.parametrize(
    "weights, match",
    [
        (
            [1, 1, 2],
            "weights must map source names to numbers",
        ),
        (torch.ones(100), "got a Tensor of 100 values"),
        ({"ky": "2"}, r"weights must be numbers, got \{'ky': '2'\}"),
        ({"ky": None}, r"weights must be numbers, got \{'ky': None\}"),
        ({"ky": True}, r"weights must be numbers, got \{'ky': True\}"),
    ],
)
def test_weights_that_are_not_a_source_mapping_are_refused_by_what_they_are(weights, match):
    with pytest.raises(ValueError, match=match):
        SourceWeightedSampler(SOURCES, weights=weights)


@pytest.mark.parametrize("alpha", ["0.5", True])
def test_alpha_must_be_a_number(alpha):
    with pytest.raises(ValueError, match=r"alpha=.* must be a finite number"):
        SourceWeightedSampler(SOURCES, alpha=alpha)


def test_integer_source_names_match_integer_weights():
    sampler = SourceWeightedSampler([0, 0, 0, 1], weights={0: 1, 1: 3}, num_samples=4000, seed=0)
    assert sampler.target_probabilities() == {"0": 0.25, "1": 0.75}
    drawn = Counter([0, 0, 0, 1][i] for i in sampler)
    assert chisquare([drawn[0], drawn[1]], [1000, 3000]).pvalue > 1e-3
    with pytest.raises(ValueError, match="weights name one source twice"):
        SourceWeightedSampler([0, 1], weights={0: 1, "0": 2})


def test_a_huge_alpha_gives_all_the_mass_to_one_source_not_nan():
    counts = {"ky_tts": 60, "ky_tts_noisy": 20, "kk_tts": 4}
    assert source_probabilities(counts, alpha=1e308) == {
        "ky_tts": 1.0,
        "ky_tts_noisy": 0.0,
        "kk_tts": 0.0,
    }
    assert source_probabilities(counts, alpha=-1e308)["kk_tts"] == 1.0
    assert source_probabilities({"a": 3, "b": 3}, alpha=1e308) == {"a": 0.5, "b": 0.5}


def test_empty_counts_are_refused_by_name():
    with pytest.raises(ValueError, match="counts is empty"):
        source_probabilities({})


@pytest.mark.parametrize(
    "sources, match",
    [
        ("kyky", r"one source name per example.*got the str 'kyky'"),
        (b"kyky", r"one source name per example.*got the bytes"),
        ({"ky": 60, "kk": 20}, r"one source name per example.*got a dict"),
    ],
    ids=["str", "bytes", "dict"],
)
def test_sources_that_are_not_one_name_per_example_are_refused(sources, match):
    with pytest.raises(ValueError, match=match):
        SourceWeightedSampler(sources)
    with pytest.raises(ValueError, match=match):
        SourceWeightedSampler(sources, weights={"k": 1.0, "y": 1.0})
    with pytest.raises(ValueError, match=match):
        source_counts(sources)
    with pytest.raises(ValueError, match=match):
        example_weights(sources, {"k": 0.5, "y": 0.5, "ky": 0.5, "kk": 0.5})


@pytest.mark.parametrize(
    "weights, match",
    [("ky=2,kk=1", "got the str 'ky=2,kk=1'"), (b"ky", "bytes")],
)
def test_weights_given_as_text_are_refused(weights, match):
    with pytest.raises(ValueError, match=match):
        SourceWeightedSampler(SOURCES, weights=weights)


@pytest.mark.parametrize(
    "counts, match",
    [
        (SOURCES, "counts must map each source to its number of examples"),
        ("kyky", r"counts must map each source.*got the str 'kyky'"),
        ({"ky": 2.5}, r"counts\['ky'\]=2.5: every source needs a whole number"),
        ({"ky": "60"}, r"counts\['ky'\]='60'"),
        ({"ky": float("inf")}, r"counts\['ky'\]=inf"),
    ],
)
def test_counts_that_are_not_whole_numbers_per_source_are_refused(counts, match):
    with pytest.raises(ValueError, match=match):
        source_probabilities(counts)


def test_probabilities_must_be_a_mapping():
    with pytest.raises(ValueError, match="probabilities must map source names"):
        example_weights(["a", "b"], [0.5, 0.5])
