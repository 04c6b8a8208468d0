import re

import matplotlib

matplotlib.use("Agg")

import math

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dlsaudio.history import History  # noqa: E402
from dlsaudio.ssl.augment import Gain  # noqa: E402
from dlsaudio.ssl.evaluation import Embeddings  # noqa: E402
from dlsaudio.ssl.plots import (  # noqa: E402
    crossover,
    plot_embeddings,
    plot_history,
    plot_label_efficiency,
    plot_similarity,
    project_2d,
)
from dlsaudio.ssl.widgets import AugmentationExplorer, EmbeddingExplorer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def history(n=12, scale=1.0):
    rows = [
        {
            "step": i + 1,
            "loss": scale / (i + 1),
            "lr": 1e-3,
            "std": 0.08,
            "std_healthy": 0.088,
            "effective_rank": 10.0,
        }
        for i in range(n)
    ]
    return History(rows, [])


def embeddings(n=30):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    x = np.eye(3)[labels] * 5 + 0.1 * rng.normal(size=(n, 3))
    return Embeddings(x.astype(np.float32), labels, [f"s{i % 2}" for i in range(n)])


def test_plot_history_draws_loss_lr_and_health_for_each_run():
    fig = plot_history({"a": history(), "b": history(scale=2.0)}, smooth=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    loss_lines = fig.axes[0].get_lines()
    assert len(loss_lines) == 2 and len(loss_lines[0].get_xdata()) == 10  # smoothed by 3
    assert isinstance(plot_history(history()), Figure)


def test_plot_label_efficiency_has_one_line_per_method():
    curve = {k: {"mean": 0.5, "std": 0.1, "labels": 1} for k in ("1", "10", "all")}
    fig = plot_label_efficiency({"random": curve, "byol": curve})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "all"]
    assert ax.get_xscale() == "log"
    assert len(ax.get_legend().get_texts()) == 2


def _curve(means: dict[str, float]) -> dict:
    return {k: {"mean": m, "std": 0.01} for k, m in means.items()}


def test_crossover_is_where_the_baseline_catches_up_interpolated_in_log_k():
    ssl = _curve({"1": 0.5, "2": 0.6, "5": 0.8, "10": 0.85, "all": 0.95})
    supervised = _curve({"1": 0.3, "2": 0.5, "5": 0.8, "10": 0.95, "all": 0.99})
    # the gap is +0.1 at k = 2 and 0 at k = 5: the baseline catches up at 5 exactly
    assert crossover(ssl, supervised) == pytest.approx(5.0)
    late = _curve({"1": 0.3, "2": 0.5, "5": 0.75, "10": 0.95, "all": 0.99})
    # +0.05 at k = 5, -0.10 at k = 10: one third of the way from log 5 to log 10
    assert crossover(ssl, late) == pytest.approx(math.exp(math.log(5) + math.log(2) / 3))
    assert crossover(ssl, _curve({k: 0.0 for k in ssl})) is None  # never catches up
    assert crossover(_curve({k: 0.0 for k in ssl}), ssl) is None  # never behind: no lead


def test_label_efficiency_plot_draws_the_supervised_baseline_and_marks_the_crossover():
    ssl = _curve({"1": 0.5, "2": 0.6, "5": 0.8, "10": 0.85, "all": 0.95})
    supervised = _curve({"1": 0.3, "2": 0.5, "5": 0.75, "10": 0.95, "all": 0.99})
    fig = plot_label_efficiency({"infonce": ssl}, supervised=supervised)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["infonce", "supervised from scratch"]
    marks = [t.get_text() for t in ax.texts]
    assert marks == [f"infonce: crossover at {crossover(ssl, supervised):.1f}"]


def test_tsne_keeps_classes_apart_and_embedding_plot_has_two_panels():
    emb = embeddings()
    xy = project_2d(emb.x, "tsne")
    assert xy.shape == (30, 2)
    centres = np.stack([xy[emb.labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(xy[emb.labels == c] - centres[c], axis=1).mean() for c in range(3))
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)) > spread
    fig = plot_embeddings(emb, method="tsne", title="t")
    assert [ax.get_title() for ax in fig.axes] == [
        "TSNE coloured by digit",
        "TSNE coloured by speaker",
    ]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: project_2d(np.zeros((10, 2)), "pca"), "method='pca' is unknown"),
        (lambda: project_2d(np.zeros((3, 2))), "need"),
        (lambda: plot_label_efficiency({}), "curves is empty"),
        (lambda: plot_history({}), "histories is empty"),
    ],
)
def test_plot_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_augmentation_explorer_applies_the_chosen_augmentation():
    waves = torch.randn(3, 1600, generator=torch.Generator().manual_seed(0)) * 0.1
    aug = {"loud": lambda s: Gain(6.0 * s, 6.0 * s), "quiet": lambda s: Gain(-6.0 * s, -6.0 * s)}
    explorer = AugmentationExplorer(waves, augmentations=aug)
    gain = 10 ** (6.0 / 20)
    torch.testing.assert_close(explorer.augmented, waves[0] * gain)
    explorer.name.value = "quiet"  # the observer redraws
    torch.testing.assert_close(explorer.augmented, waves[0] / gain)
    explorer.clip.value = 2
    torch.testing.assert_close(explorer.augmented, waves[2] / gain)
    explorer.strength.value = 0.0
    torch.testing.assert_close(explorer.augmented, waves[2])


def test_augmentation_explorer_runs_every_registered_augmentation():
    from dlsaudio.ssl.augment import AUGMENTATIONS

    explorer = AugmentationExplorer(torch.randn(1, 4000) * 0.1)
    for name in AUGMENTATIONS:
        explorer.name.value = name
        assert explorer.augmented.ndim in (1, 2) and torch.isfinite(explorer.augmented).all()
    explorer.name.value = "noise"
    first = explorer.augmented.clone()
    explorer.resample.click()
    assert not torch.equal(first, explorer.augmented) and explorer.seed == 1


def test_embedding_explorer_finds_cosine_neighbours():
    emb = embeddings(12)
    explorer = EmbeddingExplorer(emb, torch.randn(12, 800), k=3)
    assert all(emb.labels[j] == emb.labels[0] for j in explorer.shown)
    explorer.clip.value = 4
    assert 4 not in explorer.shown and all(emb.labels[j] == emb.labels[4] for j in explorer.shown)
    assert explorer.neighbours(4) == explorer.shown


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: AugmentationExplorer(torch.randn(10)), "waves must be"),
        (
            lambda: AugmentationExplorer(torch.randn(1, 10), augmentations={}),
            "augmentations is empty",
        ),
        (lambda: EmbeddingExplorer(embeddings(12), torch.randn(5, 10)), "emb has 12 clips"),
        (lambda: EmbeddingExplorer(embeddings(12), torch.randn(12, 10), k=12), "k must be an int"),
    ],
)
def test_widget_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.slow  # UMAP compiles its kernels on first use (about 15 s)
def test_umap_map_has_one_point_per_clip():
    emb = embeddings()
    xy = project_2d(emb.x, "umap")
    assert xy.shape == (30, 2) and np.isfinite(xy).all()


def test_explorer_plays_augmented_audio_at_its_own_loudness():
    from dlsaudio.ssl.widgets import playable

    wave = torch.sin(torch.linspace(0, 200, 800)) * 0.1
    quiet, loud = playable(wave, 8000), playable(4 * wave, 8000)
    assert quiet.data != loud.data, "a normalising player would make every gain sound the same"
    assert playable(20 * wave, 8000).data == playable((20 * wave).clamp(-1, 1), 8000).data


def test_similarity_plot_shows_the_masked_logits_and_row_softmax():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    fig = plot_similarity(z1, z2, tau=0.5)
    left, right = (ax.images[0].get_array() for ax in fig.axes[:2] if ax.images)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    expected = (z @ z.T / 0.5).numpy()
    off = ~np.eye(8, dtype=bool)
    np.testing.assert_allclose(np.asarray(left)[off], expected[off], rtol=1e-5)
    assert np.isnan(np.asarray(left)[~off]).all()  # the diagonal is masked
    np.testing.assert_allclose(np.asarray(right).sum(axis=1), np.ones(8), rtol=1e-5)
    assert np.allclose(np.asarray(right)[~off], 0)
    plt.close(fig)
    with pytest.raises(ValueError, match="same shape"):
        plot_similarity(z1, z2[:3])


def test_the_speaker_map_names_every_speaker_in_its_legend():
    rng = np.random.default_rng(0)
    speakers = ["george", "jackson", "lucas"] * 10
    emb = Embeddings(rng.normal(size=(30, 8)).astype("float32"), np.arange(30) % 10, speakers)
    fig = plot_embeddings(emb, method="tsne", seed=0)
    legend = fig.axes[1].get_legend()
    assert legend is not None and legend.get_title().get_text() == "speaker"
    assert [t.get_text() for t in legend.get_texts()] == ["george", "jackson", "lucas"]
    plt.close(fig)


@pytest.mark.parametrize("names", [["ann", "bob"], [f"s{i:02d}" for i in range(12)]])
def test_each_legend_entry_has_the_colour_of_its_own_points(names):
    from matplotlib.colors import to_rgba

    rng = np.random.default_rng(0)
    speakers = names * (36 // len(names))
    labels = np.arange(len(speakers)) % 10
    emb = Embeddings(rng.normal(size=(len(speakers), 8)).astype("float32"), labels, speakers)
    fig = plot_embeddings(emb, method="tsne", seed=0)
    for ax, values in ((fig.axes[0], [str(d) for d in labels]), (fig.axes[1], speakers)):
        scatter = ax.collections[0]
        points = scatter.to_rgba(scatter.get_array())  # (clips, 4): the colour of each point
        legend = ax.get_legend()
        entries = [
            re.sub(r"^\$\\mathdefault\{(.*)\}\$$", r"\1", t.get_text()) for t in legend.get_texts()
        ]
        colours = [to_rgba(h.get_markerfacecolor()) for h in legend.legend_handles]
        assert sorted(entries) == sorted(set(values))  # every digit and speaker, once
        for entry, colour in zip(entries, colours, strict=True):
            want = points[[v == entry for v in values]]
            assert np.allclose(want, colour), entry
    plt.close(fig)


def test_the_temperature_figure_shows_each_anchor_softmax_and_its_spread():
    from dlsaudio.ssl.plots import plot_temperature

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    fig = plot_temperature(z1, z2, taus=(0.05, 1.0), anchor=3)
    sharp, flat = fig.axes
    heights = [[bar.get_height() for bar in ax.patches] for ax in (sharp, flat)]
    assert all(len(h) == 15 and abs(sum(h) - 1) < 1e-5 for h in heights)
    assert max(heights[0]) > max(heights[1])  # a low tau concentrates the softmax
    red = matplotlib.colors.to_rgba("tab:red")
    assert sum(bar.get_facecolor() == red for bar in sharp.patches) == 1  # the positive, marked
    spread = [float(ax.get_title().split("about ")[1].split(" ")[0]) for ax in (sharp, flat)]
    assert spread[0] < spread[1] <= 15
    plt.close(fig)
    with pytest.raises(ValueError, match="anchor must be in"):
        plot_temperature(z1, z2, anchor=16)


def test_the_explorer_draws_wave_and_spectrogram_on_one_time_axis():
    """Seen in the browser test's screenshot: the spectrogram's frames stretched the wave's
    shared axis, so the wave filled a hundredth of its panel."""
    explorer = AugmentationExplorer(torch.randn(2, 8000) * 0.1, sample_rate=16000)
    axes = explorer.figure.axes
    wave_axis, mel_axis = axes[0], axes[2]
    assert wave_axis.get_xlim() == pytest.approx((0.0, 0.5))
    assert mel_axis.get_xlim() == pytest.approx((0.0, 0.5))
    assert mel_axis.images[0].get_extent()[:2] == pytest.approx([0.0, 0.5])
