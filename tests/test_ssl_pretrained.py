"""A pretrained speech SSL model probed layer by layer: loading offline, pooling, the weighted probe.

Every model here is a tiny random HuBERT written by ``save_pretrained`` and read back by
``from_pretrained``; the network is refused (``conftest.py``), so nothing downloads.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torchaudio

from dlsaudio.data.waves import WaveCache
from dlsaudio.ssl.evaluation import Embeddings, label_efficiency, linear_probe
from dlsaudio.ssl.layer_probe import (
    WeightedLayerProbe,
    layer_curves,
    weighted_layer_efficiency,
    weighted_layer_probe,
)
from dlsaudio.ssl.plots import plot_layer_probe
from dlsaudio.ssl.pretrained import (
    TINY_LOCAL,
    build_tiny_hubert,
    layer_embeddings,
    load_pretrained,
    pooled_hidden_states,
)

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 16000


@pytest.fixture(scope="module", params=["group", "layer"])
def tiny(request, tmp_path_factory):
    """A tiny HuBERT with a group-normalised front end (as HuBERT base) or a layer-normalised
    one (as HuBERT large), loaded from its folder."""
    folder = tmp_path_factory.mktemp(f"hubert-{request.param}")
    return load_pretrained(build_tiny_hubert(folder, feat_extract_norm=request.param))


def clips(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) for n in lengths]


@torch.no_grad()
def pooled_alone(model, extractor, wave):
    """The brute-force reference: one clip, no padding, every frame averaged."""
    x = extractor(wave.numpy(), sampling_rate=RATE, return_tensors="pt")["input_values"]
    hidden = model(x, output_hidden_states=True).hidden_states
    return torch.stack([h[0].mean(0) for h in hidden])  # (layers + 1, dim)


def test_pooling_ignores_padding(tiny):
    model, extractor = tiny
    waves = clips([3000, 8000, 5230, 8000, 10000, 4110])
    pooled = pooled_hidden_states(model, extractor, waves, RATE, batch_size=4, progress=False)
    alone = torch.stack([pooled_alone(model, extractor, w) for w in waves], dim=1)
    torch.testing.assert_close(pooled, alone, atol=1e-5, rtol=1e-4)
    # the check has teeth: a plain mean over a padded batch is far from it
    x = extractor([w.numpy() for w in waves], sampling_rate=RATE, padding=True, return_tensors="pt")
    with torch.no_grad():
        naive = torch.stack(model(x["input_values"], output_hidden_states=True).hidden_states)
    assert (naive.mean(2) - alone).abs().max() > 0.1


def test_one_row_per_hidden_state_layers_plus_one(tmp_path):
    model, extractor = load_pretrained(build_tiny_hubert(tmp_path, num_hidden_layers=3))
    pooled = pooled_hidden_states(model, extractor, clips([4000, 9000]), RATE, progress=False)
    assert pooled.shape == (3 + 1, 2, 32)
    assert pooled.dtype == torch.float32


def test_clips_at_another_rate_are_resampled_to_the_models(tiny):
    model, extractor = tiny
    waves = clips([4000, 2500], seed=1)  # at 8 kHz: 0.5 and 0.31 s
    at_8k = pooled_hidden_states(model, extractor, waves, 8000, progress=False)
    resampled = [torchaudio.functional.resample(w, 8000, RATE) for w in waves]
    at_16k = pooled_hidden_states(model, extractor, resampled, RATE, progress=False)
    torch.testing.assert_close(at_8k, at_16k)


def test_layer_embeddings_read_the_cache_without_its_padding_in_its_order(tiny):
    model, extractor = tiny
    waves = clips([7000, 12000, 3000])
    items = [
        {"wave": w, "label": d, "speaker": f"s{d}"} for d, w in zip((3, 1, 2), waves, strict=True)
    ]
    cache = WaveCache(items, 10000)  # pads the first and last clip, crops the middle one
    torch.testing.assert_close(cache.unpadded(0), waves[0])
    torch.testing.assert_close(cache.unpadded(1), waves[1][1000:11000])
    layers = layer_embeddings(model, extractor, cache, RATE, progress=False)
    assert len(layers) == model.config.num_hidden_layers + 1
    assert [e.labels.tolist() for e in layers] == [[3, 1, 2]] * len(layers)
    assert layers[0].speakers == ["s3", "s1", "s2"]
    alone = pooled_alone(model, extractor, waves[2])
    torch.testing.assert_close(torch.from_numpy(np.stack([e.x[2] for e in layers])), alone)


def test_tiny_local_is_built_and_read_back_offline():
    model, extractor = load_pretrained(TINY_LOCAL)
    assert type(model).__name__ == "HubertModel" and not model.training
    assert extractor.sampling_rate == RATE


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/no/such/folder/hubert", "no such folder"),
        ("facebook/hubert-base-ls960", "Hugging Face Hub .no network"),
    ],
)
def test_a_model_that_cannot_be_loaded_says_why_and_what_to_do(name, message):
    with pytest.raises(OSError, match=message) as error:
        load_pretrained(name)
    assert "tiny-local" in str(error.value)


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(OSError, match="from this folder. It needs the files that save_pretrained"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("waves", "options", "message"),
    [
        ([], {}, "waves is empty"),
        ([torch.randn(5000)], {"batch_size": 0}, "batch_size must be an int >= 1"),
        ([torch.randn(5000), torch.randn(300)], {}, "clip 1 has 300 samples"),
    ],
)
def test_pooling_rejects_what_it_cannot_read(tiny, waves, options, message):
    model, extractor = tiny
    with pytest.raises(ValueError, match=message):
        pooled_hidden_states(model, extractor, waves, RATE, progress=False, **options)


# ---------------------------------------------------------------- the probes on the layers


def layered(n_per_class, seed, layers=3, dim=6, classes=4):
    """Layer ``l`` carries the class with strength ``l``: layer 0 is noise, the last the clearest."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100).normal(size=(layers, classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    speakers = [f"s{i % 2}" for i in range(len(labels))]
    return [
        Embeddings(
            (0.6 * layer * centres[layer][labels] + rng.normal(size=(len(labels), dim))).astype(
                np.float32
            ),
            labels,
            speakers,
        )
        for layer in range(layers)
    ]


def test_learned_layer_weights_are_a_softmax_that_favours_the_informative_layer():
    train, test = layered(8, seed=1), layered(20, seed=2)
    accuracy, weights = weighted_layer_probe(train, test)
    assert weights.shape == (3,) and np.all(weights > 0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights.argmax() == 2
    assert accuracy > 0.5  # four classes: chance is 0.25
    probe = WeightedLayerProbe(3, 6, 4)
    probe.logits.data = torch.tensor([2.0, -1.0, 0.5])
    assert float(probe.layer_weights().detach().sum()) == pytest.approx(1.0)


def test_layer_weights_leave_the_uniform_mix_as_far_as_the_labels_justify():
    test = layered(10, seed=2)
    peaks = [weighted_layer_probe(layered(n, seed=1), test)[1].max() for n in (1, 4, 30)]
    assert 1 / 3 <= peaks[0] < peaks[1] < peaks[2]
    _, unpulled = weighted_layer_probe(layered(1, seed=1), test, layer_penalty=0.0)
    assert unpulled.max() > peaks[0]


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_one_hot_layer_weights_give_that_layers_linear_probe(layer):
    train, test = layered(5, seed=3), layered(20, seed=4)
    one_hot = np.eye(3)[layer]
    accuracy, weights = weighted_layer_probe(train, test, weights=one_hot)
    assert accuracy == linear_probe(train[layer], test[layer])
    np.testing.assert_array_equal(weights, one_hot)  # fixed weights are not trained


def test_the_weighted_curve_uses_the_draws_of_the_layers_curves():
    train, test = layered(6, seed=5), layered(10, seed=6)
    ks = (1, 3, None)
    curves = layer_curves(train, test, ks, draws=3, seed=7)
    assert len(curves) == 3 and list(curves[0]) == ["1", "3", "all"]
    picked, weights = weighted_layer_efficiency(
        train, test, ks, draws=3, seed=7, weights=np.eye(3)[1]
    )
    assert picked == curves[1]
    learned, weights = weighted_layer_efficiency(train, test, ks, draws=3, seed=7)
    assert list(weights) == ["1", "3", "all"]
    assert all(w.sum() == pytest.approx(1.0) for w in weights.values())
    assert learned["all"]["labels"] == label_efficiency(train[0], test[0], (None,))["all"]["labels"]


def test_weighted_probe_rejects_mismatched_layers():
    train, test = layered(3, seed=0), layered(3, seed=1)
    with pytest.raises(ValueError, match="same number of layers"):
        weighted_layer_probe(train, test[:2])
    with pytest.raises(ValueError, match="weights has 2 entries, expected one per layer: 3"):
        weighted_layer_probe(train, test, weights=[0.5, 0.5])
    shuffled = [*train[:2], Embeddings(train[2].x, train[2].labels[::-1].copy(), train[2].speakers)]
    with pytest.raises(ValueError, match="train layers must hold the same clips"):
        weighted_layer_probe(shuffled, test)
    with pytest.raises(ValueError, match="layer_penalty"):
        weighted_layer_probe(train, test, layer_penalty=-1.0)


def test_layer_plot_shows_each_layer_and_the_learned_weights():
    train, test = layered(4, seed=0), layered(5, seed=1)
    curves = layer_curves(train, test, (1, 4), draws=2)
    weighted, weights = weighted_layer_efficiency(train, test, (1, 4), draws=2)
    fig = plot_layer_probe(curves, weights, weighted)
    accuracy, mixing = fig.axes
    labels = {t.get_text() for t in accuracy.get_legend().get_texts()}
    assert labels == {"k = 1", "weighted, k = 1", "k = 4", "weighted, k = 4"}
    dashed = [line.get_ydata()[0] for line in accuracy.lines if line.get_linestyle() == "--"]
    assert dashed == [weighted["1"]["mean"], weighted["4"]["mean"]]
    np.testing.assert_allclose(mixing.lines[0].get_ydata(), weights["1"])
    plt.close(fig)
    with pytest.raises(ValueError, match="layer_curves is empty"):
        plot_layer_probe([])
