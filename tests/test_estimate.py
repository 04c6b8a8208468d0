"""Time estimates for the module-11 notebooks: arithmetic from the stated throughputs, and a
line that always says it is an estimate."""

import pytest

from dlsaudio.timing import (
    PREPARE_PER_SECOND,
    T4_THROUGHPUT,
    checkpoint_gigabytes,
    estimate_seconds,
    time_estimate,
)


def test_seconds_follow_the_stated_throughputs():
    small = T4_THROUGHPUT["openai/whisper-small"]
    assert small.train == 3.0  # 500 steps of 16 examples in about 45 minutes on a free T4
    assert estimate_seconds("openai/whisper-small", train=8000) == pytest.approx(8000 / 3)
    seconds = estimate_seconds("openai/whisper-base", train=1600, transcribe=100, prepare=500)
    base = T4_THROUGHPUT["openai/whisper-base"]
    assert seconds == pytest.approx(
        1600 / base.train + 100 / base.transcribe + 500 / PREPARE_PER_SECOND
    )
    assert estimate_seconds("tiny-local", prepare=100) == pytest.approx(100 / PREPARE_PER_SECOND)
    assert estimate_seconds("tiny-local", train=10) is None


def test_smaller_models_are_faster():
    names = [
        "openai/whisper-medium",
        "openai/whisper-small",
        "openai/whisper-base",
        "openai/whisper-tiny",
    ]
    for slower, faster in zip(names, names[1:], strict=False):
        assert T4_THROUGHPUT[slower].train < T4_THROUGHPUT[faster].train
        assert T4_THROUGHPUT[slower].transcribe < T4_THROUGHPUT[faster].transcribe


def test_the_line_says_what_it_assumes():
    line = time_estimate("openai/whisper-small", train=8000, transcribe=300)
    assert line.startswith("time estimate for a free Colab T4: about 46 min (")
    assert "training 8,000 examples at ~3/s; transcribing 300 utterances at ~4/s" in line
    assert line.endswith(
        "the stated rates of openai/whisper-small) -- an estimate, not a measurement"
    )
    assert "about 75 s" in time_estimate("openai/whisper-small", transcribe=300)
    assert "about 89 min" in time_estimate("openai/whisper-small", train=16000)
    assert "about 1 h 40 min" in time_estimate("openai/whisper-small", train=18000)
    assert "preparing 4,000 clips at ~50/s on 2 CPUs" in time_estimate("tiny-local", prepare=4000)


def test_unknown_model_and_cpu_runtime_are_said_plainly():
    line = time_estimate("tiny-local", train=420)
    assert line.startswith("no time estimate: 'tiny-local' has no stated throughput")
    assert "openai/whisper-small" in line and "progress bar" in line
    cpu = time_estimate("openai/whisper-base", train=100, device="cpu")
    assert cpu.endswith(
        "this runtime has no GPU, so expect it to take many times longer (Colab: Runtime > Change runtime type > T4 GPU)"
    )
    assert "no GPU" not in time_estimate("openai/whisper-base", train=100, device="cuda")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": -1}, "train=-1; expected a number of examples"),
        ({"transcribe": 2.5}, "transcribe=2.5; expected a number of examples"),
        ({"prepare": True}, "prepare=True; expected a number of examples"),
    ],
)
def test_bad_counts_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_estimate("openai/whisper-small", **kwargs)


def test_checkpoint_size():
    # whisper-small: 242M weights in float32 and AdamW's two moments of each of them
    assert checkpoint_gigabytes(241_734_912, 241_734_912) == pytest.approx(2.90, abs=0.01)
    # LoRA rank 32: the frozen weights are saved, the moments only of the adapters
    assert checkpoint_gigabytes(3_538_944, 245_273_856) == pytest.approx(1.01, abs=0.01)
    with pytest.raises(ValueError, match="trainable=5, total=4"):
        checkpoint_gigabytes(5, 4)


def test_old_import_paths_still_serve_student_copies_handed_out():
    """Published homework copies import from dlsaudio.asr.estimate and dlsaudio.asr.cost."""
    from dlsaudio import timing
    from dlsaudio.asr.cost import step_cost
    from dlsaudio.asr.estimate import time_estimate as old_time_estimate

    assert old_time_estimate is time_estimate is timing.time_estimate
    assert step_cost is timing.step_cost
