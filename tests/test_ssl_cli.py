import json
import os
import re

import pytest

from dlsaudio.ssl.__main__ import main, parse_args

pytestmark = pytest.mark.usefixtures("one_thread")


#: a one-epoch SSL run on quarter-second clips with one probe draw and no maps, the smallest the
#: command line makes
QUICK = [
    "--method",
    "infonce",
    "--epochs",
    "1",
    "--clip-samples",
    "4000",
    "--draws",
    "1",
    "--projection",
    "none",
    "--no-progress",
]


def test_cli_trains_on_the_sample_and_writes_results_and_plots(tmp_path):
    out = tmp_path / "run"
    results = main(
        [
            "--method",
            "infonce",
            "--data",
            "sample",
            "--minutes",
            "0.02",
            "--batch-size",
            "32",
            "--draws",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["probe"] == results["probe"]
    assert list(saved["probe"]) == ["1", "2", "5", "10", "all"]
    # The run is cut by wall-clock time (--minutes), so how far it trains depends on the
    # machine: assert what holds for any run, not an accuracy threshold.
    assert saved["knn"] == results["knn"]
    for k, probe in saved["probe"].items():
        assert 0.0 <= probe["mean"] <= 1.0, (k, probe)
    assert 0.0 <= saved["knn"] <= 1.0
    assert saved["steps"] >= 1 and saved["clips_per_second"] > 0
    assert {"std", "effective_rank", "alignment", "uniformity"} <= set(saved["health"])
    for name in ("history.png", "label_efficiency.png", "embeddings_tsne.png", "checkpoint.pt"):
        assert (out / name).stat().st_size > 0


def test_cli_rejects_unknown_methods(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--method", "moco", "--out", "x"])
    assert "invalid choice: 'moco'" in capsys.readouterr().err


def test_cli_trains_the_few_label_supervised_baseline_on_k_clips_per_digit(tmp_path):
    results = main(
        [
            "--method",
            "supervised",
            "--labels-per-class",
            "2",
            "--data",
            "sample",
            "--epochs",
            "1",
            "--draws",
            "1",
            "--projection",
            "none",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert results["labels_seen_in_training"] == 20  # 2 clips of each of the 10 digits
    assert results["args"]["batch_size"] == "20"  # lowered to fit the 20 clips
    assert results["steps"] == 1 and results["train_clips"] > 20


def test_cli_says_ssl_methods_see_no_labels(tmp_path):
    results = main([*QUICK, "--out", str(tmp_path)])
    assert results["labels_seen_in_training"] == 0
    assert not list(tmp_path.glob("embeddings_*.png"))


def test_cli_rejects_labels_per_class_for_ssl_methods_and_nonsense_values(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--method", "byol", "--labels-per-class", "10", "--out", "x"])
    assert "--labels-per-class applies to --method supervised only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--method", "supervised", "--labels-per-class", "0", "--out", "x"])
    assert "--labels-per-class must be >= 1, got 0" in capsys.readouterr().err


def test_cli_takes_several_maps():
    args = parse_args(["--projection", "tsne", "umap", "--out", "x"])
    assert args.projection == ["tsne", "umap"]


def test_a_second_run_into_the_same_folder_needs_resume_or_overwrite(tmp_path, capsys):
    first = main([*QUICK, "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="holds a previous run .*pass --resume"):
        main([*QUICK, "--out", str(tmp_path), "--batch-size", "16"])
    before = (tmp_path / "results.json").read_text()
    assert json.loads(before)["probe"] == first["probe"]  # untouched
    second = main([*QUICK, "--out", str(tmp_path), "--batch-size", "16", "--overwrite"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["args"]["batch_size"] == "16" and saved["steps"] == second["steps"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["batch_size"] == 16  # the checkpoint and results belong to the same run


def test_resume_continues_the_run_and_refuses_other_settings(tmp_path):
    main([*QUICK, "--out", str(tmp_path)])
    resumed = main([*QUICK[:2], "--epochs", "2", *QUICK[4:], "--out", str(tmp_path), "--resume"])
    assert resumed["epochs"] == 2  # one epoch from the checkpoint, one more
    with pytest.raises(SystemExit, match=r"differs from the one in .*lr: 0.001 then, 0.01 now"):
        main([*QUICK, "--out", str(tmp_path), "--resume", "--lr", "0.01"])
    with pytest.raises(SystemExit, match="holds no checkpoint.pt to continue from"):
        main([*QUICK, "--out", str(tmp_path / "new"), "--resume"])


def test_unusable_output_folders_fail_before_any_data_is_loaded(tmp_path, monkeypatch):
    import tempfile

    import dlsaudio.ssl.__main__ as cli

    monkeypatch.setattr(cli, "load_split", lambda *a: pytest.fail("data loaded"))
    a_file = tmp_path / "results"
    a_file.write_text("x")
    with pytest.raises(SystemExit, match="is a file; give a folder"):
        main([*QUICK, "--out", str(a_file)])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere; simulate a read-only folder
            monkeypatch.setattr(
                tempfile,
                "TemporaryFile",
                lambda **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied")),
            )
        with pytest.raises(SystemExit, match=r"--out .* cannot be written"):
            main([*QUICK, "--out", str(locked)])
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--draws", "0"], "--draws must be >= 1, got 0"),
        (["--minutes", "0"], "--minutes: max_minutes must be a positive"),
        (["--batch-size", "1"], r"--batch-size: batch_size .*must be an int >= 2"),
        (["--lr", "-1"], "--lr: lr must be a positive"),
        (["--epochs", "0"], "--epochs: epochs must be an int >= 1"),
        (["--batching", "voices"], "invalid choice: 'voices'"),
        (["--method", "byol", "--tau", "0.2"], "--tau applies to infonce, multiformat"),
        (["--tau", "0"], "--tau must be positive, got 0.0"),
        (["--test-takes", "five"], "--test-takes: takes 'five'"),
        (["--resume", "--overwrite"], "not allowed with argument"),
        (["--seed", "-1"], "--seed: seed must be an int >= 0"),
        (["--method", "data2vec", "--encoder", "wave"], "data2vec predicts masked log-mel frames"),
    ],
)
def test_argument_values_are_checked_before_training(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args([*argv, "--out", "x"])
    assert re.search(message, capsys.readouterr().err)


def test_tau_reaches_the_method(tmp_path):
    results = main([*QUICK, "--tau", "0.3", "--out", str(tmp_path)])
    assert results["args"]["tau"] == "0.3"


def test_a_folder_without_the_default_test_takes_asks_for_a_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("DLSAUDIO_TEST_TAKES", raising=False)
    with pytest.raises(SystemExit, match="takes 5 leaves no test clips.*test-takes"):
        main([*QUICK, "--test-takes", "5", "--out", str(tmp_path)])
    results = main([*QUICK, "--test-takes", "2", "--out", str(tmp_path), "--overwrite"])
    assert (
        results["split"].startswith("test takes 2: 140 clips of the same 14 speakers")
        and results["test_clips"] == 140
    )


def test_front_end_options_reach_the_encoder(tmp_path, monkeypatch):
    import dlsaudio.ssl.__main__ as cli

    built = {}
    real = cli.make_method

    def spy(*args, **kwargs):
        built["method"] = real(*args, **kwargs)
        return built["method"]

    monkeypatch.setattr(cli, "make_method", spy)
    main([*QUICK, "--n-mels", "32", "--no-mean-norm", "--align", "start", "--out", str(tmp_path)])
    encoder = built["method"].encoder
    assert encoder.norm.num_features == 32 and not encoder.mean_norm
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["n_mels"] == 32 and saved["no_mean_norm"] is True and saved["align"] == "start"


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the command line gets as far as loading data."""
    import dlsaudio.ssl.__main__ as cli

    monkeypatch.setattr(cli, "load_split", lambda *a: pytest.fail("data loaded"))


def test_a_full_disk_is_refused_before_the_data_are_loaded(tmp_path, monkeypatch, no_data):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=2**20))
    with pytest.raises(SystemExit, match=r"--out .*run has 1 MB free"):
        main([*QUICK, "--out", str(tmp_path / "run")])


def test_clips_shorter_than_the_encoder_window_are_refused_before_the_data_are_loaded(
    tmp_path, no_data
):
    with pytest.raises(
        SystemExit,
        match=r"--clip-samples 10: the MelEncoder of infonce needs clips of at least",
    ):
        main([*QUICK, "--clip-samples", "10", "--out", str(tmp_path)])


def test_a_cuda_device_without_a_gpu_is_refused_with_the_fix(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        parse_args(["--device", "cuda", "--out", "x"])
    assert (
        "--device cuda: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
        "use --device cpu" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        parse_args(["--device", "tpu", "--out", "x"])
    assert "--device tpu: not a torch device" in capsys.readouterr().err
    assert parse_args(["--device", "cpu", "--out", "x"]).device == "cpu"


def test_resume_from_a_truncated_checkpoint_says_how_to_start_afresh(tmp_path, monkeypatch):
    main([*QUICK, "--out", str(tmp_path)])
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:5000])
    import dlsaudio.ssl.__main__ as cli

    monkeypatch.setattr(cli, "load_split", lambda *a: pytest.fail("data loaded"))
    with pytest.raises(
        SystemExit,
        match=r"(?s)cannot read the checkpoint .*checkpoint\.pt.*To start afresh.*pass --overwrite",
    ):
        main([*QUICK, "--out", str(tmp_path), "--resume"])
