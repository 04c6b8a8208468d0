import warnings

import pytest
import torch

from dlsaudio.augment import AddNoise, Identity
from dlsaudio.encoders import MelEncoder
from dlsaudio.ssl.methods import BYOL, SimCLR, SSLMethod, StepOutput, Supervised
from dlsaudio.ssl.train import History, WaveCache, fit, save_checkpoint

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


def test_wave_cache_pads_and_crops_to_a_fixed_length():
    cache = WaveCache(dataset(6), length=1300)
    assert cache.waves.shape == (6, 1300)
    assert cache.lengths.tolist() == [1200, 1300, 1300, 1300, 1300, 1200]
    assert torch.equal(cache.waves[0, 1200:], torch.zeros(100))  # zero padding at the end
    assert cache.labels.tolist() == [0, 1, 2, 0, 1, 2] and cache[1]["label"] == 1
    assert WaveCache(dataset(3, labels=False)).labels is None


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
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"batch_size": 1}, "batch_size must be an int >= 2"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"max_minutes": 0}, "max_minutes must be positive"),
        ({"batch_size": 64}, "fewer than batch_size=64"),
        ({"weight_decay": -0.1}, "weight_decay must be non-negative"),
        ({"clip_samples": 0}, "clip_samples must be a positive number of samples"),
    ],
)
def test_invalid_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        run(simclr(), **kw)


def test_invalid_data_raise():
    with pytest.raises(ValueError, match="needs an integer 'label'"):
        fit(Supervised(MelEncoder(**TINY), 3), dataset(labels=False), batch_size=8, progress=False)
    with pytest.raises(ValueError, match="length must be a positive"):
        WaveCache(dataset(), length=0)
    with pytest.raises(ValueError, match="dataset is empty"):
        WaveCache([])
