"""Plots for SSL runs: training curves, label-efficiency curves, 2D maps of embeddings.

Every function returns a matplotlib Figure (a notebook displays it; a script saves it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from dlsaudio.history import History
from dlsaudio.ssl.evaluation import Embeddings
from dlsaudio.ssl.losses import DEFAULT_TAU
from dlsaudio.ssl.negatives import candidate_probabilities
from dlsaudio.validation import check_choice

PROJECTIONS = ("tsne", "umap")
#: A label-efficiency curve, ``{"1": {"mean", "std", ...}, ..., "all": {...}}``.
Curve = Mapping[str, Mapping[str, float]]


def plot_history(histories: History | Mapping[str, History], *, smooth: int = 5) -> Figure:
    """Loss (a ``smooth``-step moving average), learning rate and embedding health (std,
    effective rank) against the step, for one :class:`History` or ``{name: History}``.

    Raises:
        ValueError: an empty mapping.
    """
    runs = {"run": histories} if isinstance(histories, History) else dict(histories)
    if not runs:
        raise ValueError("histories is empty; pass a History or {name: History}")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    for name, h in runs.items():
        steps = np.asarray(h.column("step"))
        loss = np.asarray(h.column("loss"), dtype=float)
        if 1 < smooth <= len(loss):  # a moving average
            loss = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        axes[0].plot(steps[len(steps) - len(loss) :], loss, label=name)
        for ax, column in zip(axes[1:], ("lr", "std", "effective_rank"), strict=True):
            ax.plot(steps, h.column(column), label=name)
    first = next(iter(runs.values()))
    if first.steps and "std_healthy" in first.steps[0]:
        axes[2].axhline(first.steps[0]["std_healthy"], ls="--", c="gray", label="1/sqrt(dim)")
    titles = ("loss", "learning rate", "std of normalised z", "effective rank of z")
    for ax, title in zip(axes, titles, strict=True):
        ax.set(title=title, xlabel="step")
    for ax in (axes[0], axes[2]):
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _k_positions(keys: list[str]) -> np.ndarray:
    """X positions of ``"1", "2", ..., "all"`` on a log axis: "all" one doubling past the top k."""
    ks = [float(k) for k in keys if k != "all"]
    return np.array([float(k) if k != "all" else 2 * max(ks, default=1.0) for k in keys])


def crossover(curve: Curve, baseline: Curve) -> float | None:
    """The labels per class at which ``baseline`` catches up with ``curve`` (means, the first
    sign change of ``curve - baseline`` after a lead, interpolated in log k); ``None`` if it
    never does. Keys as in :func:`~dlsaudio.ssl.evaluation.label_efficiency`; "all" excluded.
    """
    keys = [k for k in curve if k != "all" and k in baseline]
    gap = [curve[k]["mean"] - baseline[k]["mean"] for k in keys]
    for i in range(len(keys) - 1):
        g0, g1 = gap[i], gap[i + 1]
        if g0 > 0 >= g1:
            x0, x1 = math.log(float(keys[i])), math.log(float(keys[i + 1]))
            return math.exp(x0 + (x1 - x0) * g0 / (g0 - g1))
    return None


def plot_label_efficiency(curves: Mapping[str, Curve], supervised: Curve | None = None) -> Figure:
    """Probe accuracy against labels per class (log axis), one line per method of ``curves``
    (``{method: label_efficiency(...)}``), with its spread over the draws of labelled clips.

    ``supervised``, the model trained from scratch on the same k clips per class
    (``supervised_per_k`` of ``python -m dlsaudio.bench ssl``), is drawn dashed; where it
    catches up with a method, a dotted line marks the :func:`crossover`.

    Raises:
        ValueError: an empty mapping.
    """
    if not curves:
        raise ValueError("curves is empty; pass {method name: label_efficiency(...)}")
    fig, ax = plt.subplots(figsize=(6, 4))
    keys = list(next(iter(curves.values())))
    lines = dict(curves)
    if supervised is not None:
        lines["supervised from scratch"] = supervised
    for name, curve in lines.items():
        shown = [k for k in keys if k in curve]
        x = _k_positions(keys)[[keys.index(k) for k in shown]]
        means, stds = [curve[k]["mean"] for k in shown], [curve[k]["std"] for k in shown]
        style = {"linestyle": "--", "color": "black"} if name == "supervised from scratch" else {}
        ax.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=name, **style)
        cross = None if supervised is None or curve is supervised else crossover(curve, supervised)
        if cross is not None:
            ax.axvline(cross, linestyle=":", color="grey")
            ax.annotate(f"{name}: crossover at {cross:.1f}", (cross, 0.05), fontsize="small")
    ax.set_xscale("log")
    ax.set_xticks(_k_positions(keys), keys)
    ax.minorticks_off()
    ax.set(xlabel="labels per class", ylabel="accuracy", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_layer_probe(
    layer_curves: Sequence[Curve],
    weights: Mapping[str, np.ndarray] | None = None,
    weighted: Curve | None = None,
    *,
    title: str = "",
) -> Figure:
    """Probe accuracy layer by layer and, beside it, the layer weights a weighted probe learned.

    Left: one line per key of the curves (``"1"``, ``"10"``: labels per class) with its spread
    over the draws, layer 0 being the input of the first Transformer layer; the weighted-layer
    probe's accuracy at the same key (``weighted``, a curve) is a dashed line of the same colour.
    Right: the ``(layers,)`` weights of ``weights`` (``{key: weights}``, softmax weights summing
    to 1), one line per key; a uniform mix would be flat at ``1 / layers``.

    Raises:
        ValueError: no curves.
    """
    if not layer_curves:
        raise ValueError("layer_curves is empty; pass one label_efficiency curve per layer")
    layers = np.arange(len(layer_curves))
    panels = 2 if weights else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.8), squeeze=False)
    ax = axes[0, 0]
    for key in layer_curves[0]:
        means = [c[key]["mean"] for c in layer_curves]
        stds = [c[key]["std"] for c in layer_curves]
        line = ax.errorbar(layers, means, yerr=stds, marker="o", capsize=3, label=f"k = {key}")
        if weighted is not None and key in weighted:
            colour = line.lines[0].get_color()
            ax.axhline(weighted[key]["mean"], ls="--", color=colour, label=f"weighted, k = {key}")
    ax.set(xlabel="layer", ylabel="probe accuracy", ylim=(0, 1.02), xticks=layers)
    ax.set_title("linear probe on each layer (mean over draws)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if weights:
        ax = axes[0, 1]
        for key, w in weights.items():
            ax.plot(layers, w, marker="o", label=f"k = {key}")
        ax.axhline(1 / len(layers), ls=":", color="grey", label="uniform")
        ax.set(xlabel="layer", ylabel="softmax weight", xticks=layers)
        ax.set_ylim(0, None)  # near-uniform weights look near-uniform
        ax.set_title("learned layer weights of the weighted probe")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def project_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Map ``(clips, dim)`` features to ``(clips, 2)`` with t-SNE (scikit-learn) or UMAP.

    Raises:
        ValueError: unknown ``method`` or fewer than 5 clips.
    """
    check_choice("method", method, PROJECTIONS)
    if x.ndim != 2 or x.shape[0] < 5:
        raise ValueError(f"need (clips >= 5, dim) features, got shape {x.shape}")
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (x.shape[0] - 1) / 3)
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    import umap

    n_neighbors = min(15, x.shape[0] - 1)
    # A seeded UMAP runs on one thread anyway; saying so avoids its warning.
    return umap.UMAP(n_neighbors=n_neighbors, random_state=seed, n_jobs=1).fit_transform(x)


def plot_embeddings(emb: Embeddings, *, method="tsne", seed=0, title="") -> Figure:
    """2D map of embeddings, coloured by digit (left) and by speaker (right).

    A good representation for digit recognition groups clips by digit and mixes speakers;
    clusters by speaker mean the encoder learned who speaks, not what is said. ``method`` and
    ``seed`` are those of :func:`project_2d`.

    Raises:
        ValueError: unknown ``method`` or fewer than 5 clips.
    """
    xy = project_2d(emb.x, method, seed)
    speakers, speaker_id = np.unique(emb.speakers, return_inverse=True)  # sorted names
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, values, name, cmap in (
        (axes[0], emb.labels, "digit", "tab10"),
        (axes[1], speaker_id, "speaker", "tab20"),
    ):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, cmap=cmap, s=9)
        ax.set(title=f"{method.upper()} coloured by {name}", xticks=[], yticks=[])
        if name == "digit":
            ax.legend(*sc.legend_elements(num=None), fontsize="x-small", loc="best", ncol=2)
        else:  # which colour is which speaker
            handles = sc.legend_elements(num=None)[0]  # one per speaker id, in order
            ax.legend(handles, speakers, fontsize="x-small", loc="best", ncol=2, title="speaker")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_similarity(z1: torch.Tensor, z2: torch.Tensor, tau=DEFAULT_TAU, *, title="") -> Figure:
    """What InfoNCE sees for a batch: the masked ``(2N, 2N)`` logits and each row's softmax.

    Left, the cosine similarities of the ``2N`` views divided by ``tau``, with the diagonal
    (a view with itself) masked out; right, the softmax of each row, the probability InfoNCE
    gives each candidate of being the anchor's positive. The positives (the other view of the
    same clip) are circled: the loss is the mean of ``-log`` of the circled probabilities.

    Raises:
        ValueError: shapes that :func:`dlsaudio.ssl.losses.info_nce` rejects.
    """
    probs = candidate_probabilities(z1, z2, tau)  # (2N, 2N), checked as the loss checks
    n = z1.shape[0]
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).detach().float(), dim=1)  # (2N, dim)
    shown = (z @ z.T / tau).fill_diagonal_(float("nan"))  # (2N, 2N), the diagonal left blank
    partner = torch.cat([torch.arange(n) + n, torch.arange(n)])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, values, title in (
        (axes[0], shown, f"similarity / tau (tau = {tau}), diagonal masked"),
        (axes[1], probs, "softmax of each row"),
    ):
        im = ax.imshow(values.numpy(), cmap="viridis")
        ax.scatter(partner.numpy(), np.arange(2 * n), s=40, facecolors="none", edgecolors="red")
        ax.axhline(n - 0.5, c="white", lw=0.8)
        ax.axvline(n - 0.5, c="white", lw=0.8)
        ax.set(title=title, xlabel="candidate k", ylabel="anchor i")
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_temperature(
    z1: torch.Tensor, z2: torch.Tensor, taus=(0.05, 0.1, 0.5, 1.0), *, anchor: int = 0
) -> Figure:
    """How the temperature reshapes one anchor's softmax over its ``2N - 1`` candidates.

    Candidates are sorted by cosine similarity to the anchor (most similar first); the bar of
    the positive (the anchor's other view) is red. A low ``tau`` puts almost all of the
    probability, and so of the loss's push, on the few most similar candidates; a high ``tau``
    spreads it over all of them.

    One panel for each of ``taus``; ``anchor`` is the row of ``[z1; z2]`` shown.

    Raises:
        ValueError: shapes that :func:`~dlsaudio.ssl.losses.info_nce` rejects, an empty ``taus``
            or an ``anchor`` outside ``[0, 2N)``.
    """
    taus = list(taus)
    n = z1.shape[0]
    if not taus:
        raise ValueError("taus is empty; pass temperatures such as (0.05, 0.1, 0.5)")
    if not 0 <= anchor < 2 * n:
        raise ValueError(f"anchor must be in [0, {2 * n}), got {anchor}")
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).detach().float(), dim=1)
    similarity = z @ z[anchor]  # (2N,)
    others = [k for k in torch.argsort(similarity, descending=True).tolist() if k != anchor]
    partner = (anchor + n) % (2 * n)
    colours = ["tab:red" if k == partner else "tab:blue" for k in others]
    fig, axes = plt.subplots(1, len(taus), figsize=(3.2 * len(taus), 3), sharey=True, squeeze=False)
    for ax, tau in zip(axes[0], taus, strict=True):
        probs = candidate_probabilities(z1, z2, tau)[anchor, others]
        ax.bar(range(len(others)), probs.numpy(), color=colours)
        entropy = float(-(probs * probs.clamp_min(1e-30).log()).sum())
        ax.set_title(f"tau = {tau}: about {math.exp(entropy):.1f} candidates")
        ax.set_xlabel("candidates, most similar first")
    axes[0, 0].set_ylabel("softmax probability (red: positive)")
    fig.tight_layout()
    return fig
