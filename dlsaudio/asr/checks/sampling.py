"""Checks of multi-source sampling: the probability of each source, and the draw of examples."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable, Mapping

import torch

from dlsaudio.asr.checks import answers
from dlsaudio.asr.checks.calls import _as_real
from dlsaudio.delegation import refuses_delegation
from dlsaudio.student_calls import call_student, not_implemented, on_error

SOURCE_COUNTS = {"ky": 64, "ky_noisy": 16, "kk": 4}


def _normalised(raw: Mapping[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    return {s: v / total for s, v in raw.items()}


def _probability_cases() -> list[tuple[str, dict, dict[str, float], str]]:
    """(name, kwargs, expected, hint) in the order that lets each hint be reached.

    ``alpha=1`` comes before ``alpha=0``, so that a function that treats ``alpha=0`` as "not
    given" passes the proportional cases and is then named by :data:`ALPHA_ZERO_HINT`.
    """
    counts = SOURCE_COUNTS
    proportional = _normalised({s: float(n) for s, n in counts.items()})
    return [
        (
            "no weights and no alpha",
            {},
            proportional,
            "with neither weights nor alpha the mixture is proportional: p_s = n_s / sum of all n",
        ),
        (
            "alpha=1",
            {"alpha": 1.0},
            proportional,
            "alpha=1 keeps the natural proportions, p_s = n_s / sum of all n",
        ),
        (
            "alpha=0",
            {"alpha": 0.0},
            _normalised({s: 1.0 for s in counts}),
            "p_s is proportional to n_s ** alpha; with alpha=0 that is 1 for every source, so "
            "every source is equally likely",
        ),
        (
            "alpha=0.5",
            {"alpha": 0.5},
            _normalised({s: math.sqrt(n) for s, n in counts.items()}),
            "p_s is proportional to n_s ** alpha (here sqrt(n_s)), then normalised to sum to 1",
        ),
        (
            "weights={'ky': 1.0, 'kk': 3.0} ('ky_noisy' has no weight)",
            {"weights": {"ky": 1.0, "kk": 3.0}},
            {"ky": 0.25, "ky_noisy": 0.0, "kk": 0.75},
            "p_s = w_s / sum of the weights, and a source missing from weights gets weight 0",
        ),
    ]


ALPHA_ZERO_HINT = (
    "alpha=0 gave the proportional mixture, as if alpha had been ignored or not given. p_s is "
    "proportional to n_s ** alpha, and 0 is a valid alpha (uniform over sources): test "
    "`alpha is None`, not `if alpha:` or `alpha or 1`"
)
PROBABILITY_ERRORS = [
    ("a weight for a source that has no examples", {"weights": {"ky": 1.0, "ru": 1.0}}),
    ("a negative weight", {"weights": {"ky": -1.0, "kk": 2.0}}),
    ("all weights zero", {"weights": {"ky": 0.0, "kk": 0.0}}),
    ("both weights and alpha", {"weights": {"ky": 1.0}, "alpha": 0.5}),
    ("a NaN weight", {"weights": {"ky": math.nan, "kk": 1.0}}),
    ("an infinite weight", {"weights": {"ky": math.inf, "kk": 1.0}}),
]


@refuses_delegation(*answers.SOURCE_PROBABILITIES)
def check_source_probabilities(fn: Callable) -> None:
    """Check ``fn(counts, weights=None, alpha=None) -> {source: p}`` on closed-form cases and errors.

    The expected values are computed here from the formulas (proportional, ``n_s ** alpha``,
    explicit weights); any real number type is accepted for a probability. Invalid inputs
    (unknown source, negative, NaN or infinite weight, all zero, both arguments) must raise
    ``ValueError``.

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    counts = SOURCE_COUNTS
    for name, kwargs, expected, hint in _probability_cases():
        called = f"source_probabilities({counts}, **{kwargs}) ({name})"
        got = call_student(
            fn,
            (dict(counts),),
            kwargs,
            called=called,
            hints=[
                on_error(
                    KeyError,
                    "A source missing from weights has weight 0: read it with weights.get(source, 0.0).",
                )
            ],
        )
        if not isinstance(got, Mapping):
            raise AssertionError(
                f"{name}: expected a dict {{source: probability}} with one entry per source of "
                f"counts {list(counts)}, got {type(got).__name__} {got!r}"
            )
        missing, extra = set(counts) - set(got), set(got) - set(counts)
        if missing or extra:
            raise AssertionError(
                f"{name}: the dict must have exactly the sources of counts {list(counts)} as keys "
                f"(missing: {sorted(missing)}, unexpected: {sorted(map(str, extra))}); a source "
                "that is never drawn gets probability 0.0"
            )
        values = {s: _as_real(got[s]) for s in counts}
        bad = {s: got[s] for s, v in values.items() if v is None or not math.isfinite(v)}
        if bad:
            raise AssertionError(f"{name}: probabilities must be finite numbers, got {bad}")
        total = sum(values.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise AssertionError(
                f"{name}: probabilities sum to {total:.4f}; normalise them to sum to 1"
            )
        wrong = {
            s: (round(v, 4), round(expected[s], 4))
            for s, v in values.items()
            if abs(v - expected[s]) > 1e-6
        }
        if wrong:
            proportional = _probability_cases()[0][2]
            if kwargs.get("alpha") == 0 and all(
                abs(v - proportional[s]) <= 1e-6 for s, v in values.items()
            ):
                hint = ALPHA_ZERO_HINT
            raise AssertionError(
                f"{name}: wrong probabilities {{source: (yours, expected)}} = {wrong}; {hint}"
            )
    for name, kwargs in PROBABILITY_ERRORS:
        try:
            got = fn(dict(counts), **kwargs)
        except ValueError as err:
            if not str(err).strip():
                raise AssertionError(
                    f"{name}: the ValueError has no message; say what is wrong and with which source"
                ) from None
            continue
        except NotImplementedError:
            raise NotImplementedError(not_implemented(fn)) from None
        except Exception as err:
            raise AssertionError(
                f"{name} ({kwargs}) must raise ValueError naming the problem, but your function "
                f"raised {type(err).__name__}: {err}"
            ) from err
        shown = {s: _as_real(v) for s, v in got.items()} if isinstance(got, Mapping) else got
        if isinstance(shown, dict) and any(
            v is None or not math.isfinite(v) for v in shown.values()
        ):
            raise AssertionError(
                f"{name} ({kwargs}) returned {shown}: a NaN or infinite weight turns every "
                "probability into NaN (w < 0 is False for NaN, so a negativity test lets it "
                "through). Check each weight with math.isfinite and raise ValueError naming the source."
            )
        raise AssertionError(
            f"{name} ({kwargs}) must raise ValueError naming the problem, but it returned {shown!r}"
        )
    print(
        "check passed: proportional, uniform, alpha=0.5 and explicit mixtures; invalid inputs "
        "(unknown source, negative, NaN or infinite weight, all zero, both given) raise ValueError"
    )


SAMPLER_CALL = (
    "draw_indices(sources, probabilities, num_samples, generator) with sources = a list of "
    "100 source names, probabilities = {source: p_s} with a key for every source, and "
    "generator = a seeded torch.Generator"
)


def _indices(got, num_samples: int) -> list[int]:
    if isinstance(got, torch.Tensor):
        if got.is_floating_point() or got.is_complex() or got.ndim != 1:
            raise AssertionError(
                f"expected a (num_samples,) tensor of integer indices, got dtype {got.dtype} and "
                f"shape {tuple(got.shape)} (torch.multinomial returns int64 indices)"
            )
        return got.tolist()
    try:
        values = list(got)
    except TypeError:
        raise AssertionError(
            f"expected a sequence of {num_samples} indices, got {type(got).__name__}"
        ) from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise AssertionError("expected integer indices into sources, got other values")
    return [int(v) for v in values]


@refuses_delegation(*answers.DRAW_INDICES)
def check_sampler(fn: Callable, num_samples: int = 20_000) -> None:
    """Check ``fn(sources, probabilities, num_samples, generator) -> indices``.

    The draw must have ``num_samples`` valid integer indices, be reproducible from the
    generator, hit each source with its probability (chi-square test), be uniform inside a
    source, and never draw a source of probability 0.

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    from scipy.stats import chisquare

    sources = ["ky"] * 60 + ["ky_noisy"] * 30 + ["kk"] * 10
    hints = [
        on_error(
            RuntimeError,
            "Draw WITH replacement (torch.multinomial(..., replacement=True)): num_samples is "
            "larger than the number of examples.",
            "replacement",
        ),
        on_error(
            KeyError,
            "probabilities has one entry per source name: the weight of example i is "
            "probabilities[sources[i]] / (number of examples of that source).",
        ),
    ]

    def run(probabilities: dict, seed: int) -> list[int]:
        got = call_student(
            fn,
            (sources, probabilities, num_samples, torch.Generator().manual_seed(seed)),
            called=SAMPLER_CALL,
            hints=hints,
        )
        indices = _indices(got, num_samples)
        if len(indices) != num_samples:
            raise AssertionError(
                f"wrong length: expected {num_samples} indices, got {len(indices)}"
            )
        if min(indices) < 0 or max(indices) >= len(sources):
            raise AssertionError(
                f"indices must lie in [0, {len(sources)}), got min {min(indices)}, max {max(indices)}"
            )
        return indices

    probabilities = {"ky": 0.2, "ky_noisy": 0.3, "kk": 0.5}
    first = run(probabilities, 0)
    if run(probabilities, 0) != first:
        raise AssertionError(
            "two calls with generators seeded alike gave different draws: pass generator= to torch.multinomial"
        )
    if run(probabilities, 1) == first:
        raise AssertionError("different seeds gave the same draw: use the generator you are given")
    drawn = Counter(sources[i] for i in first)
    observed = [drawn[s] for s in probabilities]
    expected = [p * num_samples for p in probabilities.values()]
    if chisquare(observed, expected).pvalue < 1e-4:
        shares = {s: round(drawn[s] / num_samples, 3) for s in probabilities}
        raise AssertionError(
            f"source frequencies {shares} do not match the targets {probabilities}: give each example "
            "of source s the weight p_s / n_s (n_s = number of examples of s) and draw with replacement"
        )
    kk = Counter(i for i in first if sources[i] == "kk")
    if chisquare([kk[i] for i in range(90, 100)]).pvalue < 1e-4:
        raise AssertionError(
            "examples inside one source are not drawn uniformly: give all of them the same weight p_s / n_s"
        )
    never = run({"ky": 0.5, "ky_noisy": 0.5, "kk": 0.0}, 2)
    if any(sources[i] == "kk" for i in never):
        raise AssertionError(
            "a source with probability 0 was drawn: its examples must get weight 0"
        )
    print(
        f"check passed: {num_samples} draws match the source targets, are uniform inside sources, "
        "seeded, and skip a source of probability 0"
    )
