"""The Whisper fine-tuning command line, on the bundled sample with the offline tiny model."""

import json

import pytest

pytest.importorskip("whisper.tokenizer")

from dlsaudio.asr.__main__ import main, parse_args, parse_weights  # noqa: E402


def test_cli_fine_tunes_and_writes_results_model_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    results = main(
        ["--model", "tiny-local", "--data", "sample", "--out", str(out)]
        + ["--steps", "2", "--warmup", "0", "--eval-every", "2", "--micro-batch", "4"]
        + ["--accum-steps", "2", "--max-train", "12", "--max-test", "4"]
        + ["--max-new-tokens", "8", "--num-workers", "0", "--weights", "ky_tts=1,ky_tts_noisy=1"]
        + ["--no-progress"]
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["effective_batch"] == 8 and saved["world_size"] == 1 and saved["steps"] == 2
    for when in ("before", "after"):
        assert {"wer", "cer", "wer_raw", "cer_raw"} <= set(saved[when])
        assert len(saved[when]["per_source"]) >= 2  # a random draw keeps several sources
    assert saved["after"] == results["after"]
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history["train"]] == [1, 2]
    assert all(row["tokens"] > 0 for row in history["train"])
    assert (out / "model" / "config.json").is_file() and (out / "last.pt").is_file()
    assert (out / "history.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "effective batch = 4 (micro-batch) x 2 (accum_steps) x 1 (processes) = 8" in printed
    assert "zero-shot: WER" in printed


def test_weights_are_parsed_and_bad_ones_named():
    assert parse_weights("ky_tts=2, kk_tts=0.5") == {"ky_tts": 2.0, "kk_tts": 0.5}
    assert parse_weights(None) is None
    with pytest.raises(ValueError, match="--weights entry 'ky_tts' is not source=number"):
        parse_weights("ky_tts")
    with pytest.raises(ValueError, match="'ky_tts=two' is not source=number"):
        parse_weights("ky_tts=two")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--weights", "a=1", "--alpha", "0.5"], "give --weights or --alpha, not both"),
        (["--steps", "10", "--warmup", "10"], r"--warmup must be in \[0, --steps\)"),
        (["--micro-batch", "0"], "--micro-batch must be >= 1, got 0"),
        (["--weights", "x"], "--weights entry 'x' is not source=number"),
    ],
)
def test_bad_options_are_refused_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args([*argv, "--out", "x"])
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(message)


def test_language_none_means_no_language_token():
    assert parse_args(["--language", "none", "--out", "x"]).language is None
    assert parse_args(["--out", "x"]).language == "kk"


@pytest.mark.slow  # two processes load torch and transformers (about 25 s)
def test_cli_runs_unchanged_under_torchrun(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "dlsaudio.asr", "--model", "tiny-local"]
    command += ["--out", str(out), "--steps", "2", "--warmup", "0", "--eval-every", "2"]
    command += ["--micro-batch", "4", "--accum-steps", "1", "--max-train", "16"]
    command += ["--max-test", "2", "--max-new-tokens", "4", "--num-workers", "0", "--no-progress"]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert saved["world_size"] == 2 and saved["effective_batch"] == 8 and saved["steps"] == 2
    assert "x 2 (processes) = 8 examples per optimizer step" in result.stdout


@pytest.mark.parametrize("data", ["sample", "manifest"])
def test_the_test_split_shares_no_utterance_with_training(data, tmp_path, capsys):
    from dlsaudio.asr.__main__ import load_splits
    from dlsaudio.data import SAMPLE_DIR

    if data == "manifest":  # the sample's table as a manifest of one's own
        manifest = tmp_path / "m.csv"
        manifest.write_text((SAMPLE_DIR / "asr" / "manifest.csv").read_text(encoding="utf-8"))
        for folder in ("ky_tts", "ky_tts_noisy", "kk_tts"):
            (tmp_path / folder).symlink_to(SAMPLE_DIR / "asr" / folder)
        data = f"manifest:{manifest}"
    train, test = load_splits(parse_args(["--data", data, "--out", "x", "--max-test", "1000"]))
    assert len(test) > 0 and not set(train.paths) & set(test.paths)
    assert not set(train.speakers) & set(test.speakers)
    assert "has no test split; held out by speaker" in capsys.readouterr().out
