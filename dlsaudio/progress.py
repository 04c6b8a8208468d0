"""A training progress bar that counts what ends the run: seconds or steps.

A run bounded by steps shows ``steps/max_steps``. A run bounded by a time budget shows its
elapsed time against the budget, with the steps as a count and a rate::

    SimCLR:  40%|████      | 02:00 of 05:00, 364 steps, 3.03 steps/s, loss=1.234

and, when it stops at the budget, says so in one line (``stopped at the 5-minute limit after
911 steps``), instead of counting towards a number of steps it was never going to reach. Both
training loops (:func:`dlsaudio.ssl.fit` and :func:`dlsaudio.asr.train.train`) use
:class:`TrainingProgress`; ``tqdm.auto`` draws it as a widget in a notebook and as text on the
command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from tqdm.auto import tqdm

__all__ = ["TrainingProgress"]


class TrainingProgress:
    """The step count, the elapsed time and the bar of one training run.

    With ``budget_seconds`` the bar's total is the budget and its position the elapsed time;
    otherwise its total is ``max_steps`` and its position the step. The elapsed time is the
    loop's clock as well: :attr:`seconds` and :attr:`out_of_time` are what a loop reads to
    follow and enforce its budget, so the bar and the decision to stop cannot disagree.

    Args:
        max_steps: the steps the run will do at most (``None``: no step bound).
        budget_seconds: the training time the run may take (``None``: no time bound).
        steps: steps already done (restored from a checkpoint).
        seconds: training seconds already spent (restored from a checkpoint).
        desc: the bar's label.
        show: draw the bar and print the closing line; ``False`` keeps only the counting.
        clock: a function returning seconds (``time.perf_counter``); a test passes its own.
        file: where the bar is drawn (tqdm's default, stderr, when ``None``); the closing line
            goes to stdout.

    Raises:
        ValueError: neither bound given, a bound that is not positive, or negative
            ``steps``/``seconds``.
    """

    def __init__(
        self,
        *,
        max_steps: int | None = None,
        budget_seconds: float | None = None,
        steps: int = 0,
        seconds: float = 0.0,
        desc: str = "train",
        show: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        file: IO[str] | None = None,
    ) -> None:
        if max_steps is None and budget_seconds is None:
            raise ValueError(
                "TrainingProgress needs max_steps or budget_seconds (or both), got neither"
            )
        if max_steps is not None and not max_steps >= 1:
            raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
        if budget_seconds is not None and not budget_seconds > 0:
            raise ValueError(f"budget_seconds must be positive or None, got {budget_seconds!r}")
        if not (steps >= 0 and seconds >= 0):
            raise ValueError(
                f"steps and seconds already done must be >= 0, got steps={steps!r}, "
                f"seconds={seconds!r}"
            )
        self.max_steps, self.budget = max_steps, budget_seconds
        self.steps, self._steps0, self._seconds0 = steps, steps, seconds
        self.show, self._clock, self._started = show, clock, clock()
        self._closed = False
        self._postfix: dict[str, str] = {}
        if self.budget is None:
            self.bar = tqdm(
                total=max_steps, initial=steps, desc=desc, unit="step", disable=not show, file=file
            )
        else:
            self.bar = tqdm(
                total=self.budget,
                initial=min(seconds, self.budget),
                desc=desc,
                bar_format=self._time_format(seconds),
                disable=not show,
                file=file,
            )
            self.bar.set_postfix_str(self._time_postfix(), refresh=False)

    @property
    def seconds(self) -> float:
        """Training seconds so far, those restored from a checkpoint included."""
        return self._seconds0 + self._clock() - self._started

    @property
    def out_of_time(self) -> bool:
        """The time budget is spent (always ``False`` without one)."""
        return self.budget is not None and self.seconds >= self.budget

    def step(self, **postfix: str) -> None:
        """Count one step and show ``postfix`` (``loss="1.234"``) beside the bar."""
        self.steps += 1
        self._postfix = {k: str(v) for k, v in postfix.items()}
        if self.budget is None:
            self.bar.set_postfix(self._postfix, refresh=False)
            self.bar.update(1)
        else:
            self._show_time(min(self.seconds, self.budget))

    def done(self) -> None:
        """Close the bar at the end of a run; a time-bounded run says in one line how it ended.

        At the budget: ``stopped at the 5-minute limit after 911 steps``. When all
        ``max_steps`` are done (or the run ends before the budget for another reason):
        ``finished 420 steps in 01:12 of the 5-minute limit``. Only the first call prints.
        """
        if self._closed:
            return
        if self.budget is None:
            self.close()
            return
        seconds = min(self.seconds, self.budget)
        finished = self.max_steps is not None and self.steps >= self.max_steps
        if finished or seconds < self.budget:
            if seconds > 0:
                self.bar.total = seconds  # the run is complete: a full bar, not a failed one
            self._show_time(seconds, early=True)
            line = (
                f"finished {_steps(self.steps)} in {tqdm.format_interval(seconds)} of the "
                f"{self.budget / 60:g}-minute limit"
            )
        else:
            self._show_time(self.budget)
            line = f"stopped at the {self.budget / 60:g}-minute limit after {_steps(self.steps)}"
        self.close()
        if self.show:
            tqdm.write(line)

    def close(self) -> None:
        """Close the bar without a closing line (a run that failed)."""
        if not self._closed:
            self._closed = True
            self.bar.close()

    def rate(self) -> float:
        """Steps per second since this object was made (0 before a step or a tick)."""
        seconds = self.seconds - self._seconds0
        return (self.steps - self._steps0) / seconds if seconds > 0 else 0.0

    def _show_time(self, position: float, early: bool = False) -> None:
        self.bar.bar_format = self._time_format(position, early)
        self.bar.set_postfix_str(self._time_postfix(), refresh=False)
        self.bar.update(position - self.bar.n)

    def _time_format(self, position: float, early: bool = False) -> str:
        elapsed, limit = tqdm.format_interval(position), tqdm.format_interval(self.budget)
        clock = f"{elapsed} (limit {limit})" if early else f"{elapsed} of {limit}"
        return "{desc}: {percentage:3.0f}%|{bar}| " + clock + "{postfix}"

    def _time_postfix(self) -> str:
        parts = [_steps(self.steps), f"{self.rate():.2f} steps/s"]
        return ", ".join(parts + [f"{k}={v}" for k, v in self._postfix.items()])


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"
