import pytest
import torch

from dlsaudio.data import WaveCache, as_cache


def items(lengths, labels=True):
    return [
        {
            "wave": torch.arange(1, n + 1, dtype=torch.float32),
            "label": i % 3 if labels else None,
            "speaker": f"s{i % 2}",
        }
        for i, n in enumerate(lengths)
    ]


def test_start_alignment_pads_at_the_end_and_keeps_the_beginning():
    cache = WaveCache(items([4, 6, 9]), length=6, align="start")
    assert cache.waves.tolist() == [[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]
    assert cache.lengths.tolist() == [4, 6, 6]


def test_center_alignment_pads_both_sides_and_keeps_the_middle():
    cache = WaveCache(items([3, 6, 9, 2]), length=6)
    assert cache.align == "center"
    assert cache.waves.tolist() == [
        [0, 1, 2, 3, 0, 0],
        [1, 2, 3, 4, 5, 6],
        [2, 3, 4, 5, 6, 7],
        [0, 0, 1, 2, 0, 0],
    ]
    assert cache.lengths.tolist() == [3, 6, 6, 2]


def test_labels_speakers_and_items():
    cache = WaveCache(items([5] * 4), length=5)
    assert cache.labels.tolist() == [0, 1, 2, 0] and cache[1]["label"] == 1
    assert cache.speakers == ["s0", "s1", "s0", "s1"]
    assert WaveCache(items([5, 5], labels=False), length=5).labels is None


def test_subset_copies_rows_without_decoding():
    cache = WaveCache(items([2, 3, 4, 5]), length=5)
    sub = cache.subset([3, 1])
    assert torch.equal(sub.waves, cache.waves[[3, 1]]) and sub.lengths.tolist() == [5, 3]
    assert sub.labels.tolist() == [0, 1] and sub.speakers == ["s1", "s1"] and sub.length == 5
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        cache.subset([4])
    with pytest.raises(ValueError, match="subset of no clips"):
        cache.subset([])


def test_as_cache_keeps_a_cache_and_refuses_another_length():
    cache = WaveCache(items([5, 6]), length=5)
    assert as_cache(cache) is cache and as_cache(cache, 5) is cache
    with pytest.raises(ValueError, match=r"holds clips of 5 samples, but 8 were asked for"):
        as_cache(cache, 8)
    assert as_cache(items([3, 3]), 4).waves.shape == (2, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"length": 0}, "length must be a positive"),
        ({"length": True}, "length must be a positive"),
        ({"align": "end"}, "align='end' is unknown"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WaveCache(items([3]), **kwargs)


def test_empty_data_set():
    with pytest.raises(ValueError, match="the data set is empty"):
        WaveCache([])
