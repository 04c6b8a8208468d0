import warnings

import pytest
import torch

from dlsaudio.checkpoint import CheckpointError
from dlsaudio.history import History, TrainingDiverged
from dlsaudio.ssl.augment import AddNoise, Identity
from dlsaudio.ssl.encoders import MelEncoder
from dlsaudio.ssl.methods import SimCLR, SSLMethod, StepOutput, Supervised
from dlsaudio.ssl.non_contrastive import BYOL
from dlsaudio.ssl.train import batch_plan, fit, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"channels": (4, 8), "blocks": (1, 1)}
CLIP = 1600


def dataset(n=24, labels=True):
    g = torch.Generator().manual_seed(0)
    return [
        {
            "wave": torch.randn(1200 + 100 * (i % 5), generator=g),
            "label": i % 3 if labels else None,
            "speaker": f"s{i % 4}",
        }
        for i in range(n)
    ]


def simclr(seed=0):
    torch.manual_seed(seed)
    return SimCLR(MelEncoder(**TINY), dim=8, hidden_dim=16)


def byol(seed=0):
    """tau_base far from 1, so a momentum lost on resume would change the trajectory."""
    torch.manual_seed(seed)
    return BYOL(MelEncoder(**TINY), dim=8, hidden_dim=16, tau_base=0.5)


def run(method, **kw):
    kw = {"epochs": 2, "batch_size": 8, "clip_samples": CLIP, "progress": False, **kw}
    kw.setdefault("augment", AddNoise(min_snr_db=10, max_snr_db=20))
    return fit(method, dataset(), **kw)


def test_fit_records_loss_lr_and_health_per_step():
    history = run(simclr())
    assert len(history.steps) == 2 * 3 and len(history.epochs) == 2
    row = history.steps[0]
    assert {"loss", "lr", "std", "effective_rank", "alignment", "uniformity"} <= set(row)
    lrs = history.column("lr")
    assert lrs[0] == pytest.approx(1e-3) and lrs == sorted(lrs, reverse=True)
    assert history.clips_per_second() > 0
    assert history.column("loss", per="epoch") == pytest.approx(
        [sum(history.column("loss")[i : i + 3]) / 3 for i in (0, 3)]
    )


def test_training_lowers_the_loss():
    history = run(simclr(), epochs=6, lr=3e-3, augment=Identity())
    losses = history.column("loss", per="epoch")
    assert losses[-1] < losses[0]


def test_supervised_training_uses_the_labels():
    torch.manual_seed(0)
    method = Supervised(MelEncoder(**TINY), num_classes=3)
    history = run(method, epochs=4, lr=3e-3, augment=Identity())
    assert history.column("loss")[-1] < history.column("loss")[0]


@pytest.mark.parametrize("make", [simclr, byol], ids=["simclr", "byol"])
def test_resume_reproduces_the_loss_trajectory(tmp_path, make):
    reference = run(make(), epochs=3)

    class Crash(Exception):
        pass

    calls = {"n": 0}
    noise = AddNoise(min_snr_db=10, max_snr_db=20)

    def crashing(x, generator=None):  # dies in the middle of the second epoch
        calls["n"] += 1
        if calls["n"] > 2 * 3 + 2:
            raise Crash
        return noise(x, generator=generator)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Crash):
        run(make(), epochs=3, augment=crashing, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed = run(make(seed=123), epochs=3, augment=noise, checkpoint=ckpt)
    assert resumed.column("loss") == pytest.approx(reference.column("loss"), rel=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


def test_save_checkpoint_is_atomic(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"a": 1})
    with pytest.raises(Exception):  # noqa: B017 - a lambda cannot be pickled
        save_checkpoint(path, {"a": lambda: 2})
    assert torch.load(path)["a"] == 1  # the old checkpoint survives a failed write


def test_time_budget_stops_training():
    history = run(simclr(), epochs=50, max_minutes=1e-6)
    assert len(history.steps) == 1 and len(history.epochs) == 1


class Collapsed(SSLMethod):
    """Maps every clip to the same projection."""

    def training_step(self, x1, x2, label=None):
        h = self.encoder(x1)
        z = torch.ones_like(h) + 0 * h
        return StepOutput(h.pow(2).mean(), z, z)


def test_collapse_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = run(Collapsed(MelEncoder(**TINY)))
    collapse = [w for w in caught if "collaps" in str(w.message)]
    assert len(collapse) == 1 and history.collapsed


def test_history_round_trips_through_a_dict():
    history = History([{"step": 1, "loss": 2.0}], [{"epoch": 0, "clips": 8, "seconds": 2.0}])
    again = History.from_dict(history.to_dict())
    assert again == history and again.clips_per_second() == 4.0


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"batch_size": 1}, r"batch_size .*must be an int >= 2"),
        ({"lr": 0.0}, "lr must be a positive"),
        ({"max_minutes": 0}, "max_minutes must be a positive"),
        ({"batch_size": 64}, "fewer than batch_size=64"),
        ({"weight_decay": -0.1}, "weight_decay must be a non-negative"),
        ({"clip_samples": 0}, r"clip_samples .*must be an int >= 1"),
        ({"seed": -1}, "seed must be an int >= 0"),
    ],
)
def test_invalid_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        run(simclr(), **kw)


def test_invalid_data_raise():
    with pytest.raises(ValueError, match="needs an integer 'label'"):
        fit(Supervised(MelEncoder(**TINY), 3), dataset(labels=False), batch_size=8, progress=False)


def test_speaker_batches_hold_as_few_speakers_as_the_data_allow():
    speakers = [s for s in "abc" for _ in range(8)] + ["d"] * 5  # 29 clips
    g = torch.Generator().manual_seed(0)
    plan = batch_plan(speakers, 8, "speaker", g)
    assert len(plan) == 29 // 8 and all(len(b) == 8 for b in plan)
    used = torch.cat(plan).tolist()
    assert len(set(used)) == len(used)  # no clip twice
    # one speaker's 8 clips fill a batch unless the cut falls inside a speaker: at most two
    assert all(len({speakers[i] for i in b.tolist()}) <= 2 for b in plan)
    assert sum(len({speakers[i] for i in b.tolist()}) == 1 for b in plan) >= 1
    shuffled = batch_plan(speakers, 8, "shuffle", torch.Generator().manual_seed(0))
    assert len(shuffled) == 3 and len(set(torch.cat(shuffled).tolist())) == 24
    with pytest.raises(ValueError, match="batching='voices' is unknown"):
        batch_plan(speakers, 8, "voices", g)


def test_fit_trains_with_speaker_batches():
    history = run(simclr(), batching="speaker")
    assert len(history.steps) == 2 * 3


def test_fit_names_unknown_settings():
    with pytest.raises(ValueError, match=r"unknown settings \['learning_rate'\]"):
        run(simclr(), learning_rate=0.1)
    with pytest.raises(ValueError, match="batching='speakers' is unknown"):
        run(simclr(), batching="speakers")


def test_a_diverging_run_stops_at_the_first_non_finite_loss():
    class Diverging(SimCLR):
        def training_step(self, x1, x2, label=None):
            out = super().training_step(x1, x2, label)
            return StepOutput(out.loss * float("inf"), out.z1, out.z2)

    torch.manual_seed(0)
    method = Diverging(MelEncoder(**TINY), dim=8, hidden_dim=16)
    with pytest.raises(
        TrainingDiverged,
        match="at step 1: the loss is (nan|inf).*lower the learning rate",
    ):
        run(method)


def test_resume_refuses_a_truncated_or_foreign_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    run(simclr(), checkpoint=path, epochs=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CheckpointError,
        match=r"cannot read the checkpoint .*run.pt",
    ):
        run(simclr(), checkpoint=path)
    torch.save({"weights": 1}, path)
    with pytest.raises(
        CheckpointError,
        match=r"lacks \['model', 'optimizer', 'scaler', 'history', 'epoch'\]",
    ):
        run(simclr(), checkpoint=path)
    run(byol(), checkpoint=path, resume=False, epochs=1)
    with pytest.raises(CheckpointError, match="it holds a BYOL run and this is a SimCLR"):
        run(simclr(), checkpoint=path)
    run(simclr(), checkpoint=path, resume=False, epochs=1)
    wider = SimCLR(MelEncoder(channels=(4, 16), blocks=(1, 1)), dim=8, hidden_dim=16)
    with pytest.raises(CheckpointError, match="holds another model than this SimCLR"):
        run(wider, checkpoint=path)
