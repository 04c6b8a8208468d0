"""Checks of evaluation: the validation loss and accuracy, and the table comparing methods."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.ssl.checks.calls import (
    RECORDING_MODEL_HINT,
    _close,
    _diagnose,
    _name,
    _number,
    _randn,
)
from dlsaudio.student_calls import call_student

VALIDATION_METRICS = "validation_metrics(model, waves, labels, batch_size=64)"


class _RecordingClassifier(nn.Module):
    """A known classifier whose logits are ``2 * wave[:, :3]``, with dropout so that train mode
    changes them; it records the mode, the gradient switch and the clips of every call.

    The last sample of each wave holds the clip's index, so the clips a call saw are known.
    """

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.calls: list[tuple[bool, bool, list[int]]] = []

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        clips = wave[:, -1].detach().round().long().tolist()
        self.calls.append((self.training, torch.is_grad_enabled(), clips))
        return self.drop(wave[:, :3] * self.scale)  # (batch, 3) logits


def check_validation_metrics(fn: Callable) -> None:
    """Check ``fn(model, waves, labels, batch_size) -> (loss, accuracy)`` on a known classifier.

    Expected: the mean cross-entropy over all clips (not the mean of batch means), the
    fraction of correct argmax predictions, in eval mode and without gradients, in batches of
    ``batch_size`` that cover every clip. Order: a pair of numbers; eval mode; no gradients;
    every clip seen, in batches of at most ``batch_size``; the order of the pair; the loss;
    the accuracy.

    Raises:
        AssertionError: with an actionable message when ``fn`` is wrong.
        NotImplementedError: ``fn`` is still the stub.
    """
    n, batch_size = 10, 4
    waves = _randn(50, n, 8)
    waves[:, -1] = torch.arange(n)  # clip ids, see _RecordingClassifier
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 0, 2])  # batch accuracies 0.5, 0.5, 1
    model = _RecordingClassifier().train()
    out = call_student(
        fn,
        (model, waves, labels),
        {"batch_size": batch_size},
        expected=VALIDATION_METRICS,
        hints=[RECORDING_MODEL_HINT],
    )
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a pair (loss, accuracy), got {out!r}"
        )
    loss, acc = _number(fn, out[0], "the loss"), _number(fn, out[1], "the accuracy")
    if not model.calls:
        raise AssertionError(f"`{_name(fn)}` never ran the model on the waves")
    if any(training for training, _, _ in model.calls):
        raise AssertionError(
            f"`{_name(fn)}` ran the model in training mode: call model.eval() first (dropout "
            "and batch norm behave differently in training mode)"
        )
    if any(grad for _, grad, _ in model.calls):
        raise AssertionError(
            f"`{_name(fn)}` runs the model with gradients on: wrap the loop in "
            "`with torch.no_grad():` so evaluation keeps no activations for a backward pass"
        )
    seen = {clip for _, _, clips in model.calls for clip in clips}
    missing = sorted(set(range(n)) - seen)
    if missing == list(range(n - n % batch_size, n)):
        raise AssertionError(
            f"`{_name(fn)}` dropped the last, smaller batch (clips {missing} of {n} with "
            f"batch_size={batch_size}): loop over range(0, len(waves), batch_size); the last "
            "slice waves[start:start + batch_size] is simply shorter"
        )
    if missing:
        raise AssertionError(
            f"`{_name(fn)}` ran the model on {n - len(missing)} of the {n} clips (never on "
            f"clips {missing}); every validation clip must be evaluated"
        )
    largest = max(len(clips) for _, _, clips in model.calls)
    if largest > batch_size:
        raise AssertionError(
            f"`{_name(fn)}` ran the model on {largest} clips at once with batch_size={batch_size}: "
            "split the waves into batches of batch_size so that a large set fits in memory"
        )
    logits = waves[:, :3] * 2.0
    expected_loss = float(F.cross_entropy(logits, labels))
    expected_acc = float((logits.argmax(1) == labels).float().mean())
    if _close(loss, expected_acc) and _close(acc, expected_loss):
        raise AssertionError(
            f"wrong order: `{_name(fn)}` returns (accuracy, loss); return (loss, accuracy)"
        )
    starts = range(0, n, batch_size)
    batches = [(logits[i : i + batch_size], labels[i : i + batch_size]) for i in starts]
    per_clip = F.cross_entropy(logits, labels, reduction="none")  # (clips,)
    _diagnose(
        fn,
        f"validation loss on {n} clips, batch_size={batch_size}",
        loss,
        expected_loss,
        [
            (
                np.mean([float(F.cross_entropy(x, y)) for x, y in batches]),
                "averages the batch means; the last batch is smaller, so sum the per-clip losses "
                "(reduction='sum') and divide by the number of clips",
            ),
            (
                F.cross_entropy(logits.softmax(1), labels),
                "applies softmax before F.cross_entropy, which applies log-softmax itself: "
                "pass the raw logits",
            ),
            (
                F.nll_loss(logits, labels),
                "uses F.nll_loss on raw logits; nll_loss expects log-probabilities: use "
                "F.cross_entropy(logits, labels) (or nll_loss(logits.log_softmax(1), labels))",
            ),
            (
                F.nll_loss(logits.softmax(1), labels),
                "uses F.nll_loss on probabilities; it expects log-probabilities: use "
                "F.cross_entropy on the logits",
            ),
            (per_clip.sum(), "returns the summed loss: divide it by the number of clips"),
            (
                per_clip.sum() / len(batches),
                "divides the summed loss by the number of batches: divide by the number of clips",
            ),
        ],
        "The loss is F.cross_entropy of the logits averaged over all clips: add "
        "F.cross_entropy(logits, y, reduction='sum') over the batches and divide by len(waves)",
    )
    correct = (logits.argmax(1) == labels).float()  # (clips,)
    _diagnose(
        fn,
        f"accuracy on {n} clips, batch_size={batch_size}",
        acc,
        expected_acc,
        [
            (100 * expected_acc, "returns a percentage: return a fraction in [0, 1]"),
            (
                correct.sum(),
                "returns the number of correct clips: divide it by the number of clips",
            ),
            (
                np.mean([float(correct[i : i + batch_size].mean()) for i in starts]),
                "averages the batch accuracies; the last batch is smaller: count the correct "
                "clips over all batches and divide by the number of clips",
            ),
        ],
        "The accuracy is the fraction of clips whose argmax logit is the label",
    )
    print(f"OK: `{_name(fn)}` computes the validation loss and accuracy.")


PROBE_KS = ("1", "2", "5", "10")
HEALTH_COLUMNS = ("std", "effective_rank", "alignment", "uniformity")
# A table shown rounded to 3 decimals still matches the numbers it came from.
TABLE_TOLERANCE = 5e-4


def _probe_column(k: str) -> str:
    """The table's column of the probe with ``k`` labels per class (``"all"``: every label)."""
    return "probe all" if k == "all" else f"probe k={k}"


def _expected_cells(name: str, results: dict | None, health: dict | None) -> dict[str, tuple]:
    """``{column: (value, where it comes from)}`` for one method's row of the comparison."""
    cells: dict[str, tuple] = {}
    if results is not None:
        if name not in results:
            raise AssertionError(
                f"results has no entry {name!r} (it has {sorted(results)}); compute every "
                "method's results before building the table"
            )
        probe = results[name]["probe"]
        for k in (*PROBE_KS, "all"):
            cells[_probe_column(k)] = (
                probe[k]["mean"],
                f"results[{name!r}]['probe'][{k!r}]['mean']",
            )
        cells["knn"] = (results[name]["knn"], f"results[{name!r}]['knn']")
    if health is not None:
        if name not in health:
            raise AssertionError(f"health has no entry {name!r} (it has {sorted(health)})")
        for key in HEALTH_COLUMNS:
            if key in health[name]:
                cells[key] = (health[name][key], f"health[{name!r}][{key!r}]")
    return cells


def _what_went_wrong(got: float, name: str, column: str, results, health) -> str:
    """The likely mistake behind a cell that is not its method's number."""
    for other in results or health or {}:
        if other == name:
            continue
        cells = _expected_cells(other, results, health)
        if column in cells and abs(got - float(cells[column][0])) <= TABLE_TOLERANCE:
            return f"that is the number of {other!r}; each row must hold its own method's results"
    if results is not None and column.startswith("probe"):
        entry = results[name]["probe"][column.removeprefix("probe ").removeprefix("k=")]
        if "std" in entry and abs(got - float(entry["std"])) <= TABLE_TOLERANCE:
            return "that is the spread over the draws ('std'); the table shows the 'mean'"
        for k, other_entry in results[name]["probe"].items():
            if abs(got - float(other_entry["mean"])) <= TABLE_TOLERANCE:
                return f"that is the probe with k={k}; check which k goes in which column"
    return "fill each cell from the number it reports, in the row of its own method"


def check_comparison(
    table,
    results: dict | None = None,
    health: dict | None = None,
    methods=("supervised", "contrastive", "byol", "simsiam"),
) -> None:
    """Check the comparison table: one row per method, probe accuracies at every k, kNN, health,
    and, given the ``results`` and ``health`` it was built from, the same numbers.

    Args:
        table: a pandas DataFrame indexed by method name.
        results: ``{method: evaluate(...)}``; every probe and kNN cell must equal its entry.
        health: ``{method: health metrics}``; every health cell must equal its entry.
        methods: the rows that must be present.

    Raises:
        AssertionError: with an actionable message when the table is incomplete or a cell is not
            the number it should have been copied from.
    """
    columns = [
        "probe k=1",
        "probe k=2",
        "probe k=5",
        "probe k=10",
        "probe all",
        "knn",
        "std",
        "effective_rank",
    ]
    if not hasattr(table, "loc") or not hasattr(table, "columns"):
        raise AssertionError(f"expected a pandas DataFrame, got {type(table).__name__}")
    missing_rows = [m for m in methods if m not in table.index]
    missing_cols = [c for c in columns if c not in table.columns]
    if missing_rows or missing_cols:
        raise AssertionError(
            f"the table is incomplete: missing rows {missing_rows} and columns {missing_cols}; "
            f"index it by method and include the columns {columns}"
        )
    values = table.loc[list(methods), columns].astype(float)
    if values.isna().any().any():
        raise AssertionError("the table has empty cells (NaN); fill every method and column")
    accuracy = values[[c for c in columns if c.startswith("probe") or c == "knn"]]
    if ((accuracy < 0) | (accuracy > 1)).any().any():
        raise AssertionError("accuracies must be fractions in [0, 1], not percentages")
    for name in methods:
        for column, (expected, source) in _expected_cells(name, results, health).items():
            if column not in table.columns:
                continue
            got = float(table.loc[name, column])
            if not abs(got - float(expected)) <= TABLE_TOLERANCE:
                raise AssertionError(
                    f"table.loc[{name!r}, {column!r}] is {got:.4f} but {source} is "
                    f"{float(expected):.4f}: {_what_went_wrong(got, name, column, results, health)}"
                )
    compared = (
        " and matches results and health" if results is not None or health is not None else ""
    )
    print(f"OK: the table compares {len(methods)} methods on {len(columns)} numbers{compared}.")
