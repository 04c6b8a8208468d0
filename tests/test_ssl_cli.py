import json

import pytest
import torch
from threadpoolctl import threadpool_limits

from dlsaudio.ssl.__main__ import main, parse_args


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread per library avoids contention with other processes."""
    with threadpool_limits(limits=1):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


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
