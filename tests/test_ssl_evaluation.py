import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from dlsaudio.encoders import MelEncoder
from dlsaudio.ssl.evaluation import (
    Embeddings,
    extract_embeddings,
    knn_accuracy,
    label_efficiency,
    linear_probe,
    sample_per_class,
)
from dlsaudio.ssl.methods import SimCLR


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread per library avoids contention with other processes."""
    with threadpool_limits(limits=1):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


def blobs(n_per_class=12, classes=4, dim=8, spread=0.3, seed=0):
    centres = np.random.default_rng(100).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return Embeddings(x.astype(np.float32), labels, [f"s{i % 3}" for i in range(len(labels))])


def test_probe_separates_separable_classes_and_not_random_labels():
    train, test = blobs(seed=0), blobs(seed=1)
    assert linear_probe(train, test) == 1.0
    shuffled = Embeddings(
        train.x, np.random.default_rng(0).permutation(train.labels), train.speakers
    )
    noise = Embeddings(
        np.random.default_rng(2).normal(size=test.x.shape), test.labels, test.speakers
    )
    assert linear_probe(shuffled, noise) < 0.6


def test_sample_per_class_draws_k_of_each_class_reproducibly():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 7)
    idx = sample_per_class(labels, 3, seed=4)
    assert np.bincount(labels[idx]).tolist() == [3, 2, 3]  # class 1 has only two
    assert np.array_equal(idx, sample_per_class(labels, 3, seed=4))
    assert len(set(map(tuple, (sample_per_class(labels, 3, seed=s) for s in range(6))))) > 1


def test_label_efficiency_reports_every_k():
    train, test = blobs(seed=0), blobs(seed=1)
    curve = label_efficiency(train, test, ks=(1, 2, None), draws=3)
    assert list(curve) == ["1", "2", "all"]
    assert [curve[k]["labels"] for k in curve] == [4, 8, 48]
    assert curve["all"]["mean"] == 1.0 and curve["all"]["std"] == 0.0
    assert all(0.0 <= curve[k]["mean"] <= 1.0 for k in curve)


def test_knn_accuracy_uses_cosine_similarity():
    # Directions, not lengths, carry the class: cosine kNN gets them all.
    train = Embeddings(
        np.array([[1, 0], [10, 0.5], [0, 1], [0.4, 9]], np.float32),
        np.array([0, 0, 1, 1]),
        ["a"] * 4,
    )
    test = Embeddings(
        np.array([[100, 1], [0.1, 0.01], [1, 50]], np.float32), np.array([0, 0, 1]), ["b"] * 3
    )
    assert knn_accuracy(train, test, k=1) == 1.0


def test_extract_embeddings_uses_encoder_features_in_eval_mode():
    torch.manual_seed(0)
    method = SimCLR(MelEncoder(channels=(4, 8), blocks=(1, 1)), dim=5, hidden_dim=8).train()
    items = [{"wave": torch.randn(1000), "label": i % 2, "speaker": "x"} for i in range(5)]
    emb = extract_embeddings(method, items, batch_size=2, clip_samples=1200)
    assert emb.x.shape == (5, 8) and emb.labels.tolist() == [0, 1, 0, 1, 0]
    assert method.training  # the mode is restored
    method.eval()
    waves = torch.stack(
        [torch.nn.functional.pad(it["wave"], (100, 100)) for it in items]
    )  # centred
    np.testing.assert_allclose(emb.x, method.encoder(waves).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: linear_probe(blobs(dim=8), blobs(dim=4)), "same dim"),
        (lambda: linear_probe(blobs().subset([0, 1]), blobs()), "single class"),
        (lambda: sample_per_class(np.zeros(3), 0), "k must be a positive int"),
        (lambda: label_efficiency(blobs(), blobs(), draws=0), "draws must be a positive int"),
        (lambda: knn_accuracy(blobs(), blobs(), k=0), "k must be an int in"),
        (lambda: linear_probe(blobs().subset([]), blobs()), "empty embeddings"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_extract_embeddings_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        extract_embeddings(MelEncoder(channels=(4,), blocks=(1,)), [], batch_size=0)
