"""The Whisper fine-tuning command line, on the bundled sample with the offline tiny model."""

import json
from pathlib import Path

import pytest

pytest.importorskip("whisper.tokenizer")

from dlsaudio.asr.__main__ import main, parse_args  # noqa: E402
from dlsaudio.asr.options import parse_weights  # noqa: E402


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
    assert [row["step"] for row in history["steps"]] == [1, 2]
    assert all(row["tokens"] > 0 for row in history["steps"])
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
        (["--weights", "ky_tts=-1"], "--weights must be finite and >= 0"),
        (["--max-test", "0"], "--max-test must be >= 1"),
        (["--max-train", "0"], "--max-train must be >= 1"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--lr", "nan"], "--lr must be a positive number"),
        (["--num-workers", "-1"], "--num-workers must be >= 0"),
        (["--language", "ky"], "--language: language='ky' is not in Whisper"),
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


def tiny_run(out, *extra):
    """A command line for the offline tiny model on the bundled sample, small enough for tests."""
    return ["--model", "tiny-local", "--data", "sample", "--out", str(out), "--steps", "1"] + [
        "--warmup", "0", "--eval-every", "1", "--micro-batch", "2", "--accum-steps", "1",
        "--max-train", "8", "--max-test", "2", "--max-new-tokens", "4", "--num-workers", "0",
        "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the command line gets as far as loading data."""
    import dlsaudio.asr.__main__ as cli

    def refuse(*args, **kwargs):
        raise AssertionError("the data were loaded before the error")

    monkeypatch.setattr(cli, "load_splits", refuse)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the command line gets as far as preparing features or training."""
    import dlsaudio.asr
    import dlsaudio.asr.__main__ as cli

    def refuse(*args, **kwargs):
        raise AssertionError("features were prepared or training started before the error")

    monkeypatch.setattr(dlsaudio.asr, "prepare_dataset", refuse)
    monkeypatch.setattr(cli, "train", refuse)


def test_an_output_path_that_is_a_file_is_refused_first(tmp_path, no_data):
    out = tmp_path / "results.txt"
    out.write_text("an earlier result")
    with pytest.raises(SystemExit, match=r"--out .*results\.txt is a file"):
        main(tiny_run(out))
    assert out.read_text() == "an earlier result"


def read_only_folder(tmp_path):
    """A folder this process cannot write into, or None where permissions do not bind (root)."""
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder / "run"
    sys_folder = Path("/sys/dlsaudio-test")  # read-only even for root where sysfs is mounted
    try:
        sys_folder.mkdir()
    except OSError:
        return sys_folder / "run"
    sys_folder.rmdir()
    return None


def test_a_read_only_output_folder_is_refused_first(tmp_path, no_data):
    out = read_only_folder(tmp_path)
    if out is None:
        pytest.skip("no folder here is read-only for this process")
    with pytest.raises(SystemExit, match=r"--out .*run cannot be written"):
        main(tiny_run(out))


def test_a_full_disk_is_refused_before_the_data_are_loaded(tmp_path, monkeypatch, no_data):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=5 * 2**20))
    with pytest.raises(SystemExit, match=r"--out .* MB free, but this run writes about"):
        main(tiny_run(tmp_path / "run"))


def test_more_new_tokens_than_the_decoder_holds_are_refused(tmp_path, no_data):
    with pytest.raises(SystemExit, match=r"--max-new-tokens must be in \[1, 444\]"):
        main(tiny_run(tmp_path / "run", "--max-new-tokens", "1000"))


def test_fewer_training_utterances_than_a_micro_batch_are_refused(tmp_path, no_training):
    with pytest.raises(
        SystemExit,
        match=r"fewer than one micro-batch per process.*--max-train",
    ):
        main(tiny_run(tmp_path / "run", "--max-train", "1"))


def test_weights_for_a_source_the_data_lack_are_refused(tmp_path, no_training):
    with pytest.raises(SystemExit, match=r"--weights: weights name sources with no examples"):
        main(tiny_run(tmp_path / "run", "--weights", "ky=1"))


def test_weights_for_a_source_the_max_train_cut_dropped_say_so(tmp_path, no_training):
    # the seeded draw of 8 of the sample's 82 training rows keeps no kk_tts row
    with pytest.raises(
        SystemExit,
        match=r"--weights names \['kk_tts'\], but --max-train 8 kept none of their rows",
    ):
        main(tiny_run(tmp_path / "run", "--weights", "ky_tts=1,kk_tts=1"))


def _manifest_with_a_missing_test_clip(tmp_path):
    """The sample's first 8 rows for training and 4 for the test, one of them missing."""
    import csv

    from dlsaudio.data.paths import SAMPLE_DIR

    with open(SAMPLE_DIR / "asr" / "manifest.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:12]
    for i, row in enumerate(rows):
        row["path"] = str(SAMPLE_DIR / "asr" / row["path"])
        row["split"] = "train" if i < 8 else "test"
    rows[-1]["path"] = str(tmp_path / "missing.flac")
    path = tmp_path / "m.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_too_much_bad_audio_names_the_option_that_allows_more(tmp_path, monkeypatch):
    import dlsaudio.asr.__main__ as cli

    manifest = _manifest_with_a_missing_test_clip(tmp_path)
    argv = tiny_run(tmp_path / "run", "--data", f"manifest:{manifest}", "--max-test", "4")
    with pytest.raises(
        SystemExit,
        match=r"clips have bad audio.*more than --max-bad-audio",
    ):
        main(argv)

    class Trained(Exception):
        pass

    def train(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(cli, "train", train)
    with pytest.raises(Trained):  # the features were prepared without the missing clip
        main([*argv, "--max-bad-audio", "0.5"])


def test_max_bad_audio_must_be_a_share(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--max-bad-audio", "2"])
    assert "--max-bad-audio must be a share between 0 and 1" in capsys.readouterr().err


def checkpoint_in(out, **state):
    import torch

    out.mkdir(parents=True)
    keys = ("model", "optimizer", "scheduler", "scaler", "step", "epoch", "consumed")
    torch.save({**dict.fromkeys(keys), **state}, out / "last.pt")
    return out / "last.pt"


def test_an_earlier_run_is_not_overwritten_without_resume(tmp_path, no_data):
    path = checkpoint_in(tmp_path / "run", step=1, batch_size=2)
    before = path.read_bytes()
    with pytest.raises(SystemExit, match=r"holds the checkpoint of an earlier run .*pass --resume"):
        main(tiny_run(tmp_path / "run"))
    assert path.read_bytes() == before


def test_resuming_with_another_micro_batch_is_refused_before_the_data_are_loaded(tmp_path, no_data):
    checkpoint_in(tmp_path / "run", step=1, epoch=0, consumed=2, batch_size=4)
    with pytest.raises(
        SystemExit,
        match=r"last\.pt was written with micro-batches of 4 examples.*--micro-batch",
    ):
        main(tiny_run(tmp_path / "run", "--resume"))


def test_resuming_from_a_truncated_or_foreign_checkpoint_is_refused(tmp_path, no_data):
    import torch

    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "last.pt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(SystemExit, match=r"cannot read the checkpoint .*cut/last\.pt .*truncated"):
        main(tiny_run(tmp_path / "cut", "--resume"))
    checkpoint_in(tmp_path / "other", model={"encoder.weight": torch.zeros(2)}, batch_size=2)
    with pytest.raises(SystemExit, match=r"other/last\.pt holds another model .* missing"):
        main(tiny_run(tmp_path / "other", "--resume"))
