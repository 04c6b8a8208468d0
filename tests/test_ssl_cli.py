import json

import pytest

from dlsaudio.ssl.__main__ import main, parse_args

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cli_trains_on_the_sample_and_writes_results_and_plots(tmp_path):
    out = tmp_path / "run"
    results = main(
        [
            "--method",
            "simclr",
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
    assert saved["probe"]["all"]["mean"] > 0.3  # ten digits: chance is 0.1
    assert saved["knn"] > 0.2
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
    results = main(
        ["--method", "simclr", "--epochs", "1", "--draws", "1", "--projection", "none"]
        + ["--out", str(tmp_path), "--no-progress"]
    )
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
