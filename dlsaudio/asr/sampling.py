"""Weighted sampling of data sources inside one dataset.

A speech corpus is usually a mixture: a little real Kyrgyz speech, more synthetic speech, a
related language. How often each ``source`` is seen during training is a design choice. This
module turns that choice into per-example weights and a seeded, shardable sampler.

Two ways to set the mixture, for sources ``s`` with ``n_s`` examples:

* explicit weights: ``p_s = w_s / sum(w)``;
* temperature sampling (multilingual MT and speech, e.g. XLS-R, arXiv 2111.09296, and
  Conneau & Lample 2019, arXiv 1901.07291): ``p_s`` proportional to ``n_s ** alpha``, where
  ``alpha = 1`` keeps the natural proportions and ``alpha = 0`` makes every source equally
  likely; values in between up-sample small sources.

Each example of source ``s`` then gets the weight ``p_s / n_s``, so the draws land on source
``s`` with probability ``p_s`` and, inside the source, uniformly on its examples.

Why not ``torch.utils.data.WeightedRandomSampler`` alone: it takes one weight per *example*,
so the per-source probabilities must be converted by hand (the ``p_s / n_s`` step above), and
with ``replacement=False`` it stops keeping the ratio as soon as the small sources run out of
examples. It also has no notion of ranks: under DDP every process would need its own sampler
that yields disjoint parts of one draw. :class:`SourceWeightedSampler` does all three.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
import torch
from torch.utils.data import Sampler


def source_counts(sources: Sequence[str]) -> dict[str, int]:
    """Number of examples per source, in order of first appearance.

    Raises:
        ValueError: ``sources`` is a string or a mapping, not one source name per example.
    """
    return dict(Counter(_check_sources(sources)))


def _check_sources(sources) -> Sequence:
    """``sources`` itself, or a clear error when it is not one source name per example.

    A string is a sequence too: ``"kyky"`` would be read as four examples of sources ``"k"``
    and ``"y"``; a mapping would be read as its keys, one example per source.
    """
    if isinstance(sources, (str, bytes)):
        raise ValueError(
            "sources must hold one source name per example (a list, e.g. dataset.sources or "
            f"[item['source'] for item in dataset]), got the {type(sources).__name__} "
            f"{sources!r}, which would be read as one source per character"
        )
    if isinstance(sources, Mapping):
        raise ValueError(
            "sources must hold one source name per example (a list, e.g. dataset.sources), got "
            f"a {type(sources).__name__} of {len(sources)} entries ({dict(sources)!r:.80}), "
            "which would be read as one example per key; weights per source go to weights="
        )
    return sources


def _is_number(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_weights(weights, name: str = "weights") -> dict:
    """``weights`` as a dict ``{source: float}``, or a clear error for what people pass instead."""
    if isinstance(weights, (str, bytes)):
        raise ValueError(
            f"{name} must map source names to numbers, e.g. {{'ky_tts': 2, 'kk_tts': 1}}; got "
            f"the {type(weights).__name__} {weights!r}; write the weights as a dict, not as text"
        )
    if not isinstance(weights, Mapping):
        count = len(weights) if hasattr(weights, "__len__") else "several"
        raise ValueError(
            f"{name} must map source names to numbers, e.g. {{'ky_tts': 2, 'kk_tts': 1}}; got a "
            f"{type(weights).__name__} of {count} values. One weight per example is what "
            "torch.utils.data.WeightedRandomSampler takes; here give one weight per source"
        )
    bad = {source: w for source, w in weights.items() if not _is_number(w)}
    if bad:
        raise ValueError(
            f"{name} must be numbers, got {bad}; write them as numbers, e.g. {{'ky_tts': 2.0}}"
        )
    weights = {source: float(w) for source, w in weights.items()}
    bad = {source: w for source, w in weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"{name} must be finite and >= 0, got {bad}")
    return weights


def check_mixture(
    weights: Mapping[str, float] | None,
    alpha: float | None,
    names: tuple[str, str] = ("weights", "alpha"),
) -> dict[str, float] | None:
    """Check what can be checked of a mixture before the sources are known.

    Args:
        weights: explicit weights per source, or None.
        alpha: temperature exponent, or None.
        names: how the caller calls the two (a command line: ``("--weights", "--alpha")``).

    Returns:
        ``weights`` as ``{source: float}``, or None when not given.

    Raises:
        ValueError: both given, a non-numeric or non-finite ``alpha``, weights that are not a
            mapping from source names to numbers, or a negative or non-finite weight.
    """
    weights_name, alpha_name = names
    if weights is not None and alpha is not None:
        shown = dict(weights) if isinstance(weights, Mapping) else weights
        raise ValueError(
            f"got both {weights_name}={shown!r} and {alpha_name}={alpha!r}; give "
            f"{weights_name} or {alpha_name}, not both ({weights_name} for an explicit mixture, "
            f"{alpha_name} for temperature sampling)"
        )
    if alpha is not None and not (_is_number(alpha) and math.isfinite(alpha)):
        raise ValueError(
            f"{alpha_name}={alpha!r} must be a finite number (1 = proportional, 0 = uniform)"
        )
    return None if weights is None else _check_weights(weights, weights_name)


def source_probabilities(
    counts: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    alpha: float | None = None,
) -> dict[str, float]:
    """Target probability of drawing each source.

    Args:
        counts: examples per source, e.g. ``{"ky_tts": 60, "kk_tts": 20}``.
        weights: explicit, unnormalised weight per source. Sources missing from ``weights`` get
            weight 0 (never drawn).
        alpha: temperature exponent: ``p_s`` proportional to ``n_s ** alpha``. ``1`` keeps the
            natural proportions, ``0`` is uniform over sources; computed in log space, so a
            large ``alpha`` gives (almost) all the mass to the largest source, without overflow.
        When neither is given the mixture is proportional (``alpha = 1``).

    Returns:
        ``{source: p_s}`` summing to 1, in the order of ``counts``.

    Raises:
        ValueError: ``counts`` not a mapping (e.g. the list of sources itself) or empty; both
            ``weights`` and ``alpha`` given; ``weights`` not a mapping from source names to
            numbers (per-example weights are refused); a weight for a source that has no
            examples; a negative or non-finite weight; all weights zero; a non-finite or
            non-numeric ``alpha``; a source whose count is not an integer >= 1.
    """
    if not isinstance(counts, Mapping):
        shown = f"the {type(counts).__name__} {counts!r:.80}"
        raise ValueError(
            f"counts must map each source to its number of examples, e.g. {{'ky_tts': 60}}, got "
            f"{shown}; for one source name per example pass source_counts(sources)"
        )
    if not counts:
        raise ValueError(
            "counts is empty: source_probabilities needs the number of examples of at least one "
            "source, e.g. {'ky_tts': 60}"
        )
    for source, n in counts.items():
        if not (_is_number(n) and math.isfinite(n) and n == int(n) and n >= 1):
            raise ValueError(
                f"counts[{source!r}]={n!r}: every source needs a whole number of examples, >= 1"
            )
    weights = check_mixture(weights, alpha)
    if weights is None:
        alpha = 1.0 if alpha is None else float(alpha)
        # alpha * (log n - log n_ref) <= 0 with n_ref the source alpha favours most: no
        # inf - inf even when alpha * log(n) alone would overflow
        ref = math.log(max(counts.values()) if alpha >= 0 else min(counts.values()))
        raw = {source: math.exp(alpha * (math.log(n) - ref)) for source, n in counts.items()}
    else:
        unknown = [source for source in weights if source not in counts]
        if unknown:
            raise ValueError(
                f"weights name sources with no examples: {unknown}; known sources are {list(counts)}"
            )
        raw = {source: weights.get(source, 0.0) for source in counts}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(
            f"all weights are zero ({raw}); give at least one source a positive weight"
        )
    return {source: value / total for source, value in raw.items()}


def example_weights(sources: Sequence[str], probabilities: Mapping[str, float]) -> torch.Tensor:
    """Per-example weight ``p_s / n_s`` as a ``(num_examples,)`` float64 tensor.

    Raises:
        ValueError: ``sources`` is a string or a mapping, not one source name per example;
            ``probabilities`` is not a mapping; an example's source has no probability.
    """
    counts = source_counts(sources)
    if not isinstance(probabilities, Mapping):
        raise ValueError(
            f"probabilities must map source names to probabilities (source_probabilities(...)), "
            f"got a {type(probabilities).__name__}"
        )
    missing = [source for source in counts if source not in probabilities]
    if missing:
        raise ValueError(f"no probability for sources {missing}; got {list(probabilities)}")
    per_source = {source: probabilities[source] / counts[source] for source in counts}
    return torch.tensor([per_source[source] for source in sources], dtype=torch.float64)


class SourceWeightedSampler(Sampler[int]):
    """Draw example indices so that each source appears with a target probability.

    Draws ``num_samples`` indices per epoch *with replacement* (``torch.multinomial`` over the
    per-example weights ``p_s / n_s``) from a generator seeded with ``seed + epoch``: the same
    seed and epoch give the same order, :meth:`set_epoch` gives a new one.

    Distributed training: every rank computes the same draw and keeps every ``world_size``-th
    index starting at ``rank``, like ``DistributedSampler``. The draw is first padded by
    repeating its beginning so that its length is a multiple of ``world_size``; each rank then
    yields ``ceil(num_samples / world_size)`` indices (:meth:`__len__`) and the shards are
    disjoint positions of one draw.

    Args:
        sources: one source name per example (e.g. ``dataset.sources``); names are compared
            as strings, so integer names work when ``weights`` uses the same integers.
        weights: explicit weight per source, ``{source: number}`` (normalised; missing sources
            are never drawn). Not one weight per example.
        alpha: temperature exponent, ``p_s`` proportional to ``n_s ** alpha``.
        num_samples: indices per epoch over all ranks; defaults to ``len(sources)``.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        rank: this process's rank.
        world_size: number of processes.

    Raises:
        ValueError: see :func:`source_probabilities`; also ``sources`` given as a string or a
            mapping instead of one name per example, empty ``sources``, ``num_samples`` < 1,
            ``world_size`` < 1 or ``rank`` outside ``[0, world_size)``.
    """

    def __init__(
        self,
        sources: Sequence[str],
        weights: Mapping[str, float] | None = None,
        alpha: float | None = None,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.sources = [str(source) for source in _check_sources(sources)]
        if not self.sources:
            raise ValueError("sources is empty: the sampler needs one source name per example")
        if weights is not None:  # names are compared as strings, as the sources are
            named = _check_weights(weights)
            weights = {str(source): w for source, w in named.items()}
            if len(weights) < len(named):
                raise ValueError(
                    f"weights name one source twice (as a number and as a string): {named}"
                )
        if num_samples is None:
            num_samples = len(self.sources)
        if int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples={num_samples} must be a positive integer")
        if int(world_size) != world_size or world_size < 1:
            raise ValueError(f"world_size={world_size} must be a positive integer")
        if int(rank) != rank or not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be an integer in [0, world_size={world_size})")
        self.counts = source_counts(self.sources)
        self.probabilities = source_probabilities(self.counts, weights=weights, alpha=alpha)
        self.weights = example_weights(self.sources, self.probabilities)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.shard_size = math.ceil(self.num_samples / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Use the draw of ``epoch`` (call it at the start of every epoch, on every rank)."""
        self.epoch = int(epoch)

    def target_probabilities(self) -> dict[str, float]:
        """``{source: p_s}``, the probability that a draw comes from each source."""
        return dict(self.probabilities)

    def draw(self) -> torch.Tensor:
        """The full draw of the current epoch over all ranks, ``(num_samples,)`` int64."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.multinomial(
            self.weights, self.num_samples, replacement=True, generator=generator
        )

    def __iter__(self) -> Iterator[int]:
        indices = self.draw()
        total = self.shard_size * self.world_size
        if total > len(indices):  # pad cyclically, as DistributedSampler does
            indices = indices.repeat(math.ceil(total / len(indices)))[:total]
        return iter(indices[self.rank : total : self.world_size].tolist())

    def __len__(self) -> int:
        return self.shard_size

    def describe(self) -> pd.DataFrame:
        """Per source: examples, target probability, expected draws and passes per epoch.

        ``epochs_equivalent`` is how many times, on average, one example of the source is seen
        per epoch of this sampler: above 1 the source is up-sampled (repeated), below 1 some of
        its examples are not seen in an epoch.
        """
        rows = []
        for source, n in self.counts.items():
            p = self.probabilities[source]
            expected = p * self.num_samples
            rows.append(
                {
                    "source": source,
                    "examples": n,
                    "share_of_data": n / len(self.sources),
                    "target_p": p,
                    "expected_draws": expected,
                    "epochs_equivalent": expected / n,
                }
            )
        return pd.DataFrame(rows).set_index("source")

    def __repr__(self) -> str:
        probabilities = ", ".join(f"{s}: {p:.3f}" for s, p in self.probabilities.items())
        return (
            f"{type(self).__name__}({len(self.sources)} examples, {{{probabilities}}}, "
            f"num_samples={self.num_samples}, seed={self.seed}, epoch={self.epoch}, "
            f"rank={self.rank}/{self.world_size})"
        )
