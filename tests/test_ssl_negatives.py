"""InfoNCE's candidates and false negatives, against brute-force loops and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from dlsaudio.ssl.negatives import (
    candidate_probabilities,
    same_label_negatives,
    same_label_weight,
)


def _brute_probabilities(z1, z2, tau):
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    m = len(z)
    out = torch.zeros(m, m, dtype=torch.float64)
    for i in range(m):
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(m) if k != i)
        for k in range(m):
            if k != i:
                out[i, k] = math.exp(float(z[i] @ z[k]) / tau) / denom
    return out


@pytest.mark.parametrize(("n", "dim", "tau"), [(3, 4, 0.1), (5, 8, 0.5), (8, 3, 1.0)])
def test_probabilities_match_a_loop_and_the_loss(n, dim, tau):
    g = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)
    probs = candidate_probabilities(z1, z2, tau)
    assert torch.allclose(probs.double(), _brute_probabilities(z1, z2, tau), atol=1e-5)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2 * n))
    assert torch.all(probs.diagonal() == 0)
    # InfoNCE is the mean of -log of the positives' probabilities
    from dlsaudio.ssl.losses import info_nce

    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    loss = -probs[torch.arange(2 * n), partner].log().mean()
    assert torch.allclose(loss, info_nce(z1, z2, tau), atol=1e-5)


def test_identical_embeddings_give_a_uniform_softmax():
    z = torch.ones(4, 6)
    probs = candidate_probabilities(z, z, 0.1)
    off = probs[~torch.eye(8, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, 1 / 7))


def test_a_lower_temperature_concentrates_the_softmax():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)

    def entropy(tau):
        p = candidate_probabilities(z1, z2, tau)
        return float(-(p * p.clamp_min(1e-30).log()).sum(dim=1).mean())

    assert entropy(0.05) < entropy(0.1) < entropy(0.5) < entropy(5.0) < math.log(11)


def test_same_label_negatives_count_both_views_but_not_the_partner():
    labels = torch.tensor([0, 0, 1, 2, 0])  # three clips of digit 0
    counts = same_label_negatives(labels)
    # an anchor of digit 0 has 2 other clips of digit 0, two views each: 4 false negatives
    assert counts.tolist() == [4, 4, 0, 0, 4] * 2


def test_push_share_equals_count_share_when_the_softmax_is_uniform():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    z = torch.ones(6, 4)
    shares = same_label_weight(z, z, labels, 0.1)
    # negatives: 10 per anchor, of which 2 share the label
    assert shares["count_share"] == pytest.approx(0.2)
    assert shares["push_share"] == pytest.approx(0.2)


def test_push_share_grows_when_same_label_clips_look_alike():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    centres = torch.randn(4, 16, generator=g) * 3
    z1 = centres[labels] + 0.1 * torch.randn(8, 16, generator=g)
    z2 = centres[labels] + 0.1 * torch.randn(8, 16, generator=g)
    low, high = same_label_weight(z1, z2, labels, 0.05), same_label_weight(z1, z2, labels, 5.0)
    assert low["push_share"] > high["push_share"] > low["count_share"]
    assert low["count_share"] == pytest.approx(2 / 14)


def test_bad_labels_are_refused():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="labels has 3 entries for a batch of 4"):
        same_label_weight(z, z, torch.tensor([0, 1, 2]), 0.1)
    with pytest.raises(ValueError, match=r"labels must be \(batch,\)"):
        same_label_negatives(torch.zeros(2, 2))
