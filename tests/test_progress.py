"""The training progress bar counts what ends the run: seconds against a budget, or steps."""

import io

import pytest
import torch
from torch.utils.data import DataLoader

import dlsaudio.progress
from dlsaudio.asr.checks import ToySeq2Seq, toy_collate, toy_items
from dlsaudio.asr.train import train
from dlsaudio.progress import TrainingProgress
from dlsaudio.ssl.augment import Identity
from dlsaudio.ssl.encoders import MelEncoder
from dlsaudio.ssl.methods import SimCLR
from dlsaudio.ssl.train import fit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def run_until_stopped(tracker, clock, seconds_per_step, max_steps):
    """Step like a training loop: tick, count, stop when the budget is spent."""
    for _ in range(max_steps):
        clock.now += seconds_per_step
        tracker.step(loss="1.000")
        if tracker.out_of_time:
            break
    tracker.done()


def test_a_time_bounded_bar_counts_seconds_against_the_budget(capsys):
    clock, drawn = Clock(), io.StringIO()
    tracker = TrainingProgress(
        max_steps=42000, budget_seconds=60.0, desc="SimCLR", clock=clock, file=drawn
    )
    assert tracker.bar.total == 60.0
    for _ in range(10):
        clock.now += 0.5
        tracker.step(loss="2.000")
    assert tracker.bar.n == pytest.approx(5.0) and tracker.steps == 10
    assert tracker.bar.postfix == "10 steps, 2.00 steps/s, loss=2.000"

    run_until_stopped(tracker, clock, 0.5, 42000)
    tracker.done()  # a second call closes nothing and prints nothing
    assert tracker.steps == 120
    assert tracker.bar.total == 60.0 and tracker.bar.n == pytest.approx(60.0)
    assert "120 steps, 2.00 steps/s" in tracker.bar.postfix
    out = capsys.readouterr().out
    assert out.count("stopped at the 1-minute limit after 120 steps") == 1
    text = drawn.getvalue()
    assert "01:00 of 01:00, 120 steps, 2.00 steps/s" in text
    assert "42000" not in text  # the step bound is never shown as the bar's total


def test_the_bar_never_goes_past_the_budget():
    clock = Clock()
    tracker = TrainingProgress(budget_seconds=10.0, clock=clock, file=io.StringIO())
    clock.now = 25.0  # one slow step overshoots the budget
    tracker.step()
    assert tracker.out_of_time and tracker.bar.n == pytest.approx(10.0)


def test_a_run_whose_steps_end_before_the_budget_says_it_finished(capsys):
    clock, drawn = Clock(), io.StringIO()
    tracker = TrainingProgress(max_steps=6, budget_seconds=300.0, clock=clock, file=drawn)
    run_until_stopped(tracker, clock, 12.0, 6)
    out = capsys.readouterr().out
    assert "finished 6 steps in 01:12 of the 5-minute limit" in out and "stopped" not in out
    assert tracker.bar.n == tracker.bar.total == pytest.approx(72.0)  # complete, not failed
    assert "01:12 (limit 05:00)" in drawn.getvalue()


def test_a_resumed_time_bounded_run_starts_at_its_restored_time_and_rates_new_steps():
    clock = Clock(100.0)
    tracker = TrainingProgress(
        budget_seconds=120.0, steps=50, seconds=30.0, clock=clock, file=io.StringIO()
    )
    assert tracker.bar.n == pytest.approx(30.0) and tracker.seconds == pytest.approx(30.0)
    for _ in range(4):
        clock.now += 2.5
        tracker.step()
    assert tracker.seconds == pytest.approx(40.0)
    assert tracker.bar.postfix.startswith("54 steps, 0.40 steps/s")


def test_a_step_bounded_bar_counts_steps_and_prints_no_closing_line(capsys):
    drawn = io.StringIO()
    tracker = TrainingProgress(max_steps=5, clock=Clock(), file=drawn, desc="train")
    for _ in range(5):
        tracker.step(loss="0.500")
    tracker.done()
    assert tracker.bar.total == 5 and tracker.bar.n == 5 and not tracker.out_of_time
    assert "5/5" in drawn.getvalue() and "loss=0.500" in drawn.getvalue()
    assert capsys.readouterr().out == ""


def test_a_hidden_bar_still_keeps_time_but_prints_nothing(capsys):
    clock = Clock()
    tracker = TrainingProgress(budget_seconds=1.0, show=False, clock=clock)
    clock.now = 2.0
    tracker.step()
    tracker.done()
    assert tracker.out_of_time
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("steps_per_run", [1000, 3], ids=["limit", "finished"])
def test_the_notebook_bar_is_the_budget_and_ends_green(monkeypatch, steps_per_run):
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_tqdm

    monkeypatch.setattr(dlsaudio.progress, "tqdm", notebook_tqdm)  # what tqdm.auto picks in Jupyter
    clock = Clock()
    tracker = TrainingProgress(max_steps=steps_per_run, budget_seconds=30.0, clock=clock)
    _, widget, _ = tracker.bar.container.children
    assert widget.max == 30.0
    run_until_stopped(tracker, clock, 1.0, steps_per_run)
    assert widget.value == pytest.approx(min(steps_per_run, 30.0))
    assert widget.bar_style == "success"  # a bar that ends short of its total turns red ("danger")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({}, "needs max_steps or budget_seconds"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"budget_seconds": 0.0}, "budget_seconds must be positive"),
        ({"budget_seconds": float("nan")}, "budget_seconds must be positive"),
        ({"max_steps": 3, "seconds": -1.0}, "must be >= 0"),
    ],
)
def test_invalid_bounds_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainingProgress(show=False, **kw)


@pytest.mark.usefixtures("one_thread")
def test_a_time_bounded_fit_shows_time_and_says_it_stopped_at_the_limit(capsys):
    torch.manual_seed(0)
    method = SimCLR(MelEncoder(channels=(4, 8), blocks=(1, 1)), dim=8, hidden_dim=16)
    g = torch.Generator().manual_seed(0)
    data = [{"wave": torch.randn(1600, generator=g), "speaker": f"s{i % 4}"} for i in range(24)]
    history = fit(
        method, data, epochs=50, batch_size=8, clip_samples=1600, max_minutes=1e-6,
        augment=Identity(), progress=True,
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert len(history.steps) == 1
    assert out.count("stopped at the 1e-06-minute limit after 1 step") == 1
    assert "00:00 of 00:00, 1 step, " in err
    assert "/150" not in err  # 50 epochs of 3 steps: the bound the old bar counted towards

    fit(method, data, epochs=2, batch_size=8, clip_samples=1600, augment=Identity())
    out, err = capsys.readouterr()
    assert "6/6" in err and out == ""  # a step-bounded run counts steps


@pytest.mark.usefixtures("one_thread")
def test_the_asr_loop_counts_steps(capsys):
    torch.manual_seed(0)
    model = ToySeq2Seq()
    loader = DataLoader(toy_items(8, seed=0), batch_size=2, collate_fn=toy_collate)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, loader, optimizer=optimizer, max_steps=3, log_every=0)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err
