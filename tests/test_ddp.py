"""Two CPU processes under torchrun (gloo) reach the same parameters as one process."""

import os
import subprocess
import sys
from pathlib import Path

import ddp_worker
import torch

HERE = Path(__file__).parent


def test_two_processes_match_one_process_with_the_global_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "ddp_worker.py"),
        str(out),
        str(tmp_path / "ckpt"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        result.stdout.count(
            "effective batch = 2 (micro-batch) x 2 (accum_steps) x 2 (processes) = 8"
        )
        == 1
    )
    two = torch.load(out)
    saved = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert saved["step"] == ddp_worker.STEPS and len(saved["rng"]) == 2  # each rank's RNG
    one = ddp_worker.run()
    torch.manual_seed(0)
    start = ddp_worker.ToySeq2Seq()  # the initial parameters of both runs
    moved = max(float((one[k] - start.state_dict()[k]).abs().max()) for k in one)
    assert moved > 1e-2  # training changed the parameters...
    for name, value in one.items():  # ...and both runs changed them identically
        torch.testing.assert_close(two[name], value, rtol=1e-6, atol=1e-6, msg=name)
