"""Evaluation of frozen embeddings: linear probe, label efficiency, kNN.

The protocol of linear evaluation (SimCLR, https://arxiv.org/abs/2002.05709): freeze the
encoder, extract one vector per clip, fit a logistic regression on standardised features
of the training clips and report accuracy on held-out clips. With only k labelled clips per
class the probe shows how label-efficient a representation is; compare that curve with a model
trained from scratch on the same clips (``python -m dlsaudio.bench ssl``'s ``supervised_per_k``).

scikit-learn is imported where a probe runs, not with the module: importing it (and pandas,
which it loads) costs about 2 s, paid by every kernel that imports :mod:`dlsaudio.ssl`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlsaudio.data.waves import as_cache
from dlsaudio.validation import check_int

DEFAULT_KS = (1, 2, 5, 10, None)  # None: all labels


@dataclass
class Embeddings:
    """Frozen features of a dataset: ``x`` ``(clips, dim)``, ``labels`` ``(clips,)``, speakers."""

    x: np.ndarray
    labels: np.ndarray
    speakers: list[str]

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, index) -> Embeddings:
        index = np.asarray(index, dtype=np.int64)
        return Embeddings(self.x[index], self.labels[index], [self.speakers[i] for i in index])


@torch.no_grad()
def extract_embeddings(
    model: torch.nn.Module, dataset, *, batch_size=128, clip_samples=None, device=None
) -> Embeddings:
    """Encode every clip of ``dataset`` (items with ``"wave"``, ``"label"``, ``"speaker"``, or a
    :class:`~dlsaudio.data.WaveCache`) with a frozen model in eval mode: an SSL method's
    ``embed`` (encoder features, not projections) or a bare encoder, on ``device`` (the model's
    by default). Clips are padded or cropped to ``clip_samples`` (a cache's own length, 16000
    for a data set); labels are -1 where an item has none.

    Raises:
        ValueError: ``batch_size`` < 1 or an empty dataset.
    """
    check_int("batch_size", batch_size, minimum=1)
    cache = as_cache(dataset, clip_samples)
    if device is None:
        device = next(model.parameters()).device
    embed = getattr(model, "embed", model)
    was_training = model.training
    model.eval()
    chunks = [
        embed(cache.waves[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(cache), batch_size)
    ]
    model.train(was_training)
    labels = cache.labels if cache.labels is not None else torch.full((len(cache),), -1)
    return Embeddings(torch.cat(chunks).numpy(), labels.numpy(), list(cache.speakers))


@torch.no_grad()
def calibrate_batch_norm(
    model: torch.nn.Module, dataset, *, batch_size: int = 128, clip_samples: int | None = None
) -> torch.nn.Module:
    """Re-estimate every batch-norm layer's running statistics on ``dataset``; no weight changes.

    An untrained network in eval mode normalises with the statistics batch norm starts with
    (mean 0, variance 1), not with those of the data, so one direction dominates every feature
    and all clips look alike (std of the normalised embeddings near 0, effective rank near 1).
    One pass over the data in train mode, without gradients, gives the statistics that the
    first training step would see: the honest random-initialisation baseline. The pass goes
    through a method's ``project``, so the heads are calibrated too; ``model`` is returned.

    Raises:
        ValueError: ``batch_size`` < 2 (batch statistics need two clips).
    """
    check_int("batch_size", batch_size, minimum=2)
    cache = as_cache(dataset, clip_samples)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches
    device = next(model.parameters()).device
    was_training = model.training
    model.train()
    forward = getattr(model, "project", model)
    for i in range(0, len(cache), batch_size):
        chunk = cache.waves[i : i + batch_size]
        if len(chunk) > 1:  # train-mode batch norm needs two clips
            forward(chunk.to(device))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return model


def _check_pair(train: Embeddings, test: Embeddings) -> None:
    if train.x.ndim != 2 or test.x.ndim != 2 or train.x.shape[1] != test.x.shape[1]:
        raise ValueError(
            f"train and test embeddings must be (clips, dim) with the same dim, got "
            f"{train.x.shape} and {test.x.shape}"
        )
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"empty embeddings: {len(train)} train and {len(test)} test clips")


def linear_probe(train: Embeddings, test: Embeddings, *, C=1.0, max_iter=2000) -> float:
    """Accuracy on ``test`` of a logistic regression fitted on standardised ``train`` features.

    ``C`` is the inverse L2 regularisation strength, ``max_iter`` the solver's iterations.

    Raises:
        ValueError: shapes disagree, a set is empty, or ``train`` has a single class.
    """
    _check_pair(train, test)
    if len(np.unique(train.labels)) < 2:
        raise ValueError(f"train has a single class ({np.unique(train.labels)}); a probe needs two")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(train.x, train.labels)
    return float(probe.score(test.x, test.labels))


def sample_per_class(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` random examples of every class (all of a class if it has fewer).

    Raises:
        ValueError: ``k`` not an int >= 1.
    """
    check_int("k", k, minimum=1)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def labelled_draws(labels: np.ndarray, k: int | None, draws: int, seed: int) -> list[np.ndarray]:
    """The labelled subsets of a label-efficiency curve at ``k`` labels per class: ``draws``
    seeded draws of :func:`sample_per_class` (seeds ``seed``, ``seed + 1``, ...), or every clip
    once for ``k=None``. Every probe of a curve reads its clips from here, so two probes at the
    same ``k`` and ``seed`` see the same labels.

    Raises:
        ValueError: ``draws`` < 1 or an invalid ``k``.
    """
    check_int("draws", draws, minimum=1)
    if k is None:
        return [np.arange(len(labels))]
    return [sample_per_class(labels, k, seed + d) for d in range(draws)]


def label_efficiency(
    train: Embeddings, test: Embeddings, ks=DEFAULT_KS, *, draws: int = 5, seed: int = 0
) -> dict[str, dict[str, float]]:
    """The label-efficiency curve: probe accuracy with ``k`` labels per class for each of
    ``ks`` (``None``: all labels, one fit), averaged over ``draws`` seeded labelled subsets
    (:func:`labelled_draws`). Returns ``{"1": {"mean", "std", "labels"}, ..., "all": {...}}``,
    ``labels`` counting the labelled clips used.

    Raises:
        ValueError: ``draws`` < 1 or an invalid ``k``.
    """
    check_int("draws", draws, minimum=1)
    _check_pair(train, test)
    curve = {}
    for k in ks:
        idx = labelled_draws(train.labels, k, draws, seed)
        accs = [linear_probe(train.subset(i), test) for i in idx]
        n = len(idx[0])
        stats = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "labels": int(n)}
        curve["all" if k is None else str(k)] = stats
    return curve


def speaker_shift(
    train: Embeddings, test: Embeddings, n_held_out=2, *, ks=(10, None), draws=5, seed=0
) -> dict:
    """The probe on voices its labels came from and on voices they did not.

    ``n_held_out`` speakers (a seeded choice) give no labels: the probe is fitted on training
    clips of the other speakers only, then scored on the test clips of those same speakers
    ("same voices") and on the test clips of the held-out ones ("new voices"). The gap is
    what a representation loses when the speaker changes. Returns ``{"held_out": [speakers],
    "same voices": curve, "new voices": curve}``, curves as :func:`label_efficiency`'s.

    Raises:
        ValueError: ``n_held_out`` is not between 1 and the number of speakers minus 1, or the
            test set has no clip of a held-out or of a remaining speaker.
    """
    speakers = sorted(set(train.speakers))
    if not isinstance(n_held_out, int) or not 1 <= n_held_out <= len(speakers) - 1:
        raise ValueError(
            f"n_held_out must be an int between 1 and {len(speakers) - 1} (the training clips "
            f"have {len(speakers)} speakers), got {n_held_out!r}"
        )
    order = np.random.default_rng(seed).permutation(len(speakers))
    held_out = sorted(speakers[i] for i in order[:n_held_out])
    labelled = train.subset([i for i, s in enumerate(train.speakers) if s not in held_out])
    same = [i for i, s in enumerate(test.speakers) if s not in held_out and s in speakers]
    new = [i for i, s in enumerate(test.speakers) if s in held_out]
    if not same or not new:
        raise ValueError(
            f"the test clips must include the held-out speakers {held_out} and others; they "
            f"have {sorted(set(test.speakers))}"
        )
    return {
        "held_out": held_out,
        "same voices": label_efficiency(labelled, test.subset(same), ks, draws=draws, seed=seed),
        "new voices": label_efficiency(labelled, test.subset(new), ks, draws=draws, seed=seed),
    }


def knn_accuracy(train: Embeddings, test: Embeddings, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote with cosine distance on frozen embeddings.

    Raises:
        ValueError: ``k`` not a positive int or larger than the training set.
    """
    _check_pair(train, test)
    if not isinstance(k, int) or not 1 <= k <= len(train):
        raise ValueError(f"k must be an int in [1, {len(train)}], got {k!r}")
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(train.x, train.labels)
    return float(knn.score(test.x, test.labels))


def score(train: Embeddings, test: Embeddings, *, knn_k: int = 5, **curve) -> dict:
    """``{"probe": label_efficiency(train, test, **curve), "knn": knn_accuracy(...)}``, with
    ``knn_k`` capped at the number of training clips.

    Raises:
        ValueError: as :func:`label_efficiency` and :func:`knn_accuracy`.
    """
    return {
        "probe": label_efficiency(train, test, **curve),
        "knn": knn_accuracy(train, test, k=min(knn_k, len(train))),
    }


def evaluate(model: torch.nn.Module, train_set, test_set, **options) -> dict:
    """:func:`extract_embeddings` of both sets, then :func:`score` them with ``**options``.

    Raises:
        ValueError: as :func:`score`.
    """
    train, test = extract_embeddings(model, train_set), extract_embeddings(model, test_set)
    return score(train, test, **options)
