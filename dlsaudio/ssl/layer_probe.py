"""Probing every layer of a frozen model: a linear probe per layer, and SUPERB's weighted sum.

SUPERB (Yang et al., 2021, https://arxiv.org/abs/2105.01051) freezes the pretrained model and
gives each task's small head a weighted sum of all its layers' features,
``sum_l softmax(w)_l * h_l``, with the weights ``w`` learned with the head: the task picks its
layers, and the learned weights show which ones it uses. Here the head is the linear probe of
:mod:`dlsaudio.ssl.evaluation` (logistic regression on standardised features, the same L2
penalty), trained on the same labelled draws, so one layer's weight fixed to 1 gives that
layer's own probe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dlsaudio.ssl.evaluation import DEFAULT_KS, Embeddings, label_efficiency, labelled_draws
from dlsaudio.validation import check_int, check_non_negative, check_positive


def layer_curves(
    train: Sequence[Embeddings], test: Sequence[Embeddings], ks=DEFAULT_KS, *, draws=5, seed=0
) -> list[dict[str, dict[str, float]]]:
    """:func:`~dlsaudio.ssl.evaluation.label_efficiency` of every layer: ``curves[l]`` is layer
    ``l``'s curve, all on the same labelled draws.

    Raises:
        ValueError: as :func:`_stack`, and as ``label_efficiency``.
    """
    _stack(train, test)
    return [
        label_efficiency(a, b, ks, draws=draws, seed=seed) for a, b in zip(train, test, strict=True)
    ]


class WeightedLayerProbe(torch.nn.Module):
    """A linear classifier on ``sum_l softmax(w)_l * x_l``, the layers' weighted sum (SUPERB),
    standardised.

    The sum is standardised as the linear probe standardises its features: in training mode
    with the mean and std of the batch (the whole labelled set), kept for eval mode. Without it,
    a mix of several layers would have a smaller spread than a single layer, and the classifier's
    L2 penalty alone would push the weights towards one layer.

    Args:
        layers: the number of layers mixed (``layers + 1`` hidden states of a model).
        dim: features per layer.
        classes: output classes.
        weights: ``(layers,)`` fixed layer weights, used as given (no softmax, not trained):
            a one-hot vector picks one layer; ``None`` learns ``softmax(w)``, from uniform.
    """

    def __init__(self, layers: int, dim: int, classes: int, weights=None) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(layers))  # w
        self.fixed = None if weights is None else torch.as_tensor(weights, dtype=torch.float)
        self.linear = torch.nn.Linear(dim, classes)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def layer_weights(self) -> torch.Tensor:
        """``(layers,)`` weights of the sum: ``softmax(w)``, or the fixed weights."""
        if self.fixed is not None:
            return self.fixed.to(self.logits)
        return torch.softmax(self.logits, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(layers, batch, dim)`` -> logits ``(batch, classes)``."""
        mixed = torch.einsum("l,lbd->bd", self.layer_weights(), x)  # (batch, dim)
        if self.training:
            mean, std = mixed.mean(0), mixed.std(0, correction=0)
            std = torch.where(std > 0, std, torch.ones_like(std))  # a constant feature stays 0
            self.mean, self.std = mean.detach(), std.detach()
            return self.linear((mixed - mean) / std)
        return self.linear((mixed - self.mean) / self.std)


def weighted_layer_probe(
    train: Sequence[Embeddings],
    test: Sequence[Embeddings],
    *,
    C: float = 1.0,
    layer_penalty: float = 1.0,
    weights=None,
    max_iter: int = 500,
) -> tuple[float, np.ndarray]:
    """Fit a :class:`WeightedLayerProbe` on ``train`` (one Embeddings per layer) and score it
    on ``test``.

    Every layer is standardised with its training mean and std, as the linear probe does, so
    the weights compare layers of different scales; so is their weighted sum. The loss is the
    probe's: the summed cross-entropy plus ``||W||^2 / (2 C)`` on the classifier's weights
    (scikit-learn's ``LogisticRegression(C=C)``), plus ``layer_penalty * ||w||^2 / 2`` on the
    logits of the layer weights: a pull towards the uniform mix, so the weights leave it only as
    far as the labels justify. Without it, a fit run to convergence ends on a single layer (as
    multiple kernel learning over a simplex tends to), with one labelled clip per class as
    readily as with a hundred. It is minimised in float64 with L-BFGS from uniform layer
    weights and a zero classifier.

    Returns:
        ``(accuracy on test, (layers,) layer weights)``.

    Raises:
        ValueError: layers or clips that disagree, empty sets, a single class in ``train``,
            ``weights`` of the wrong length, ``C`` <= 0 or ``layer_penalty`` < 0.
    """
    x_train, x_test = _stack(train, test)  # (layers, clips, dim) each
    check_positive("C", C)
    check_non_negative("layer_penalty", layer_penalty)
    check_int("max_iter", max_iter, minimum=1)
    classes, y = np.unique(train[0].labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"train has a single class ({classes}); a probe needs two")
    if weights is not None and len(weights) != len(train):
        raise ValueError(
            f"weights has {len(weights)} entries, expected one per layer: {len(train)}"
        )
    mean, std = x_train.mean(1, keepdims=True), x_train.std(1, keepdims=True)
    std[std == 0] = 1.0  # a constant feature stays 0, as in StandardScaler
    x_train, x_test = (torch.from_numpy((x - mean) / std) for x in (x_train, x_test))
    probe = WeightedLayerProbe(len(train), x_train.shape[2], len(classes), weights).double()
    params = [p for p in probe.parameters() if weights is None or p is not probe.logits]
    optimizer = torch.optim.LBFGS(
        params,
        max_iter=max_iter,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    target = torch.from_numpy(y)

    def closure():
        optimizer.zero_grad()
        ce = torch.nn.functional.cross_entropy(probe(x_train), target, reduction="sum")
        penalty = (
            probe.linear.weight.pow(2).sum() / (2 * C)
            + layer_penalty * probe.logits.pow(2).sum() / 2
        )
        loss = (ce + penalty) / len(target)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        probe(x_train)  # keeps the training statistics of the final mix for the test clips
        probe.eval()
        predicted = classes[probe(x_test).argmax(1).numpy()]
        layer_weights = probe.layer_weights().numpy().copy()
    return float(np.mean(predicted == test[0].labels)), layer_weights


def weighted_layer_efficiency(
    train: Sequence[Embeddings],
    test: Sequence[Embeddings],
    ks=DEFAULT_KS,
    *,
    draws: int = 5,
    seed: int = 0,
    C: float = 1.0,
    layer_penalty: float = 1.0,
    weights=None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """The label-efficiency curve of :func:`weighted_layer_probe`, on the labelled draws of
    :func:`~dlsaudio.ssl.evaluation.label_efficiency` (the same ``ks``, ``draws`` and ``seed``
    give the same clips). ``C``, ``layer_penalty`` and ``weights`` are those of
    :func:`weighted_layer_probe`.

    Returns:
        ``(curve, weights)``: the curve as ``label_efficiency``'s, and for each of its keys the
        ``(layers,)`` learned layer weights averaged over the draws.

    Raises:
        ValueError: as :func:`weighted_layer_probe`.
    """
    _stack(train, test)
    curve, learned = {}, {}
    for k in ks:
        idx = labelled_draws(train[0].labels, k, draws, seed)
        fits = [
            weighted_layer_probe(
                [e.subset(i) for e in train],
                test,
                C=C,
                layer_penalty=layer_penalty,
                weights=weights,
            )
            for i in idx
        ]
        accs = [acc for acc, _ in fits]
        key = "all" if k is None else str(k)
        curve[key] = {
            "mean": float(np.mean(accs)),
            "std": float(np.std(accs)),
            "labels": len(idx[0]),
        }
        learned[key] = np.mean([w for _, w in fits], axis=0)
    return curve, learned


def _stack(
    train: Sequence[Embeddings], test: Sequence[Embeddings]
) -> tuple[np.ndarray, np.ndarray]:
    """``(layers, clips, dim)`` float64 arrays of both sets.

    Raises:
        ValueError: no layers, a different number of layers or of features, layers whose clips
            or labels differ, or an empty set.
    """
    if len(train) == 0 or len(train) != len(test):
        raise ValueError(
            f"train and test need the same number of layers (at least one), got {len(train)} "
            f"and {len(test)}"
        )
    for name, layers in (("train", train), ("test", test)):
        shapes = {e.x.shape for e in layers}
        if len(shapes) != 1 or len(layers[0].x.shape) != 2 or len(layers[0]) == 0:
            raise ValueError(
                f"{name} layers must share one non-empty (clips, dim) shape, got {shapes}"
            )
        if any(not np.array_equal(e.labels, layers[0].labels) for e in layers):
            raise ValueError(f"{name} layers must hold the same clips (their labels differ)")
    if train[0].x.shape[1] != test[0].x.shape[1]:
        raise ValueError(f"train has dim {train[0].x.shape[1]}, test {test[0].x.shape[1]}")
    return tuple(np.stack([e.x for e in s]).astype(np.float64) for s in (train, test))
