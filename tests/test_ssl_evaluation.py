import numpy as np
import pytest
import torch

from dlsaudio.ssl.encoders import MelEncoder
from dlsaudio.ssl.evaluation import (
    Embeddings,
    extract_embeddings,
    knn_accuracy,
    label_efficiency,
    linear_probe,
    sample_per_class,
    speaker_shift,
)
from dlsaudio.ssl.methods import SimCLR

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n_per_class=12, classes=4, dim=8, spread=0.3, seed=0):
    centres = np.random.default_rng(100).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return Embeddings(x.astype(np.float32), labels, [f"s{i % 3}" for i in range(len(labels))])


def test_probe_separates_separable_classes_and_not_random_labels():
    train, test = blobs(seed=0), blobs(seed=1)
    assert linear_probe(train, test) == 1.0
    shuffled = Embeddings(
        train.x, np.random.default_rng(0).permutation(train.labels), train.speakers
    )
    noise = Embeddings(
        np.random.default_rng(2).normal(size=test.x.shape), test.labels, test.speakers
    )
    assert linear_probe(shuffled, noise) < 0.6


def test_sample_per_class_draws_k_of_each_class_reproducibly():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 7)
    idx = sample_per_class(labels, 3, seed=4)
    assert np.bincount(labels[idx]).tolist() == [3, 2, 3]  # class 1 has only two
    assert np.array_equal(idx, sample_per_class(labels, 3, seed=4))
    assert len(set(map(tuple, (sample_per_class(labels, 3, seed=s) for s in range(6))))) > 1


def test_label_efficiency_reports_every_k():
    train, test = blobs(seed=0), blobs(seed=1)
    curve = label_efficiency(train, test, ks=(1, 2, None), draws=3)
    assert list(curve) == ["1", "2", "all"]
    assert [curve[k]["labels"] for k in curve] == [4, 8, 48]
    assert curve["all"]["mean"] == 1.0 and curve["all"]["std"] == 0.0
    assert all(0.0 <= curve[k]["mean"] <= 1.0 for k in curve)


def test_knn_accuracy_uses_cosine_similarity():
    # Directions, not lengths, carry the class: cosine kNN gets them all.
    train = Embeddings(
        np.array([[1, 0], [10, 0.5], [0, 1], [0.4, 9]], np.float32),
        np.array([0, 0, 1, 1]),
        ["a"] * 4,
    )
    test = Embeddings(
        np.array([[100, 1], [0.1, 0.01], [1, 50]], np.float32), np.array([0, 0, 1]), ["b"] * 3
    )
    assert knn_accuracy(train, test, k=1) == 1.0


def test_extract_embeddings_uses_encoder_features_in_eval_mode():
    torch.manual_seed(0)
    method = SimCLR(MelEncoder(channels=(4, 8), blocks=(1, 1)), dim=5, hidden_dim=8).train()
    items = [{"wave": torch.randn(1000), "label": i % 2, "speaker": "x"} for i in range(5)]
    emb = extract_embeddings(method, items, batch_size=2, clip_samples=1200)
    assert emb.x.shape == (5, 8) and emb.labels.tolist() == [0, 1, 0, 1, 0]
    assert method.training  # the mode is restored
    method.eval()
    waves = torch.stack(
        [torch.nn.functional.pad(it["wave"], (100, 100)) for it in items]
    )  # centred
    np.testing.assert_allclose(emb.x, method.encoder(waves).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: linear_probe(blobs(dim=8), blobs(dim=4)), "same dim"),
        (lambda: linear_probe(blobs().subset([0, 1]), blobs()), "single class"),
        (lambda: sample_per_class(np.zeros(3), 0), "k must be an int >= 1"),
        (lambda: label_efficiency(blobs(), blobs(), draws=0), "draws must be an int >= 1"),
        (lambda: knn_accuracy(blobs(), blobs(), k=0), "k must be an int in"),
        (lambda: linear_probe(blobs().subset([]), blobs()), "empty embeddings"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_extract_embeddings_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        extract_embeddings(MelEncoder(channels=(4,), blocks=(1,)), [], batch_size=0)


def test_label_efficiency_benchmark_reports_every_model_on_held_out_takes(
    capsys, tmp_path, monkeypatch
):
    import json

    import dlsaudio.ssl.train as train_module
    from dlsaudio.bench import ssl as bench

    torch.set_num_threads(1)
    batchings = []
    real_fit = train_module.fit

    def recording_fit(model, on, config, **kw):
        batchings.append((type(model).__name__, config.batching))
        return real_fit(model, on, config, **kw)

    monkeypatch.setattr(train_module, "fit", recording_fit)
    code = bench.main(
        [
            "--skip-losses",
            "--skip-training",
            "--data",
            "sample",
            "--minutes",
            "0.005",
            "--draws",
            "1",
            "--plot",
            str(tmp_path / "curve.png"),
        ]
    )
    assert code == 0
    assert (tmp_path / "curve.png").stat().st_size > 0
    out = json.loads(capsys.readouterr().out)["label_efficiency"]
    assert out["split"].startswith("test takes 0: 140 clips, the same 14 speakers")
    assert out["batching"] == "speaker" and batchings[0] == ("SimCLR", "speaker")  # the default
    for name in ("random_init", "infonce"):
        assert list(out[name]["probe"]) == ["1", "2", "5", "10", "all"], name
        assert list(out[name]["probe_std"]) == ["1", "2", "5", "10", "all"], name
        assert 0.0 <= out[name]["knn"] <= 1.0
    assert out["infonce"]["train_clips"] == 280 and out["infonce"]["steps"] >= 1
    assert out["infonce"]["clips_per_second"] > 0
    supervised = out["supervised_per_k"]
    assert list(supervised) == ["1", "2", "5", "10", "all"]
    for row in supervised.values():
        assert 0.0 <= row["mean"] <= 1.0 and row["std"] >= 0.0 and row["draws"] == 1


def test_supervised_per_k_trains_on_exactly_the_probes_draws(monkeypatch):
    import dlsaudio.ssl.train as train_module
    from dlsaudio.bench import label_efficiency as bench
    from dlsaudio.data import WaveCache, load_digits, take_split
    from dlsaudio.ssl.evaluation import sample_per_class

    torch.set_num_threads(1)
    train_set, test_set = take_split(load_digits("sample"), None)
    train, test = WaveCache(train_set, 4000), WaveCache(test_set, 4000)
    seen = []
    real_fit = train_module.fit

    def recording_fit(model, on, config, **kw):
        seen.append((on.waves.clone(), config.seed, config.max_minutes, config.batch_size))
        return real_fit(model, on, config.__class__(epochs=1, batch_size=config.batch_size), **kw)

    monkeypatch.setattr(train_module, "fit", recording_fit)
    out = bench.supervised_per_k(train, test, minutes=0.5, draws=2, seed=7)
    assert [row["draws"] for row in out.values()] == [2, 2, 2, 2, 1]
    expected = []
    for k in (1, 2, 5, 10):
        for d in range(2):
            idx = sample_per_class(train.labels.numpy(), k, seed=7 + d)
            expected.append(train.waves[torch.as_tensor(idx)])
    expected.append(train.waves)
    assert len(seen) == len(expected)
    for (waves, *_), want in zip(seen, expected, strict=True):
        assert torch.equal(waves, want)
    assert all(minutes == 0.5 for _, _, minutes, _ in seen)  # the same budget for every model
    assert [seed for _, seed, _, _ in seen] == [7, 8] * 4 + [7]
    assert seen[0][3] == 10  # one clip per digit: a batch of all ten


def test_supervised_per_k_takes_the_ks_the_model_and_the_settings_it_is_given(monkeypatch):
    import dlsaudio.ssl.train as train_module
    from dlsaudio.bench import label_efficiency as bench
    from dlsaudio.data import WaveCache, load_digits, take_split
    from dlsaudio.ssl.encoders import make_encoder
    from dlsaudio.ssl.methods import Supervised

    train_set, test_set = take_split(load_digits("sample"), None)
    train, test = WaveCache(train_set, 4000), WaveCache(test_set, 4000)
    seen = []

    def recording_fit(model, on, config, **kw):
        seen.append((model, len(on), config))

    monkeypatch.setattr(train_module, "fit", recording_fit)
    built = []

    def small():
        built.append(Supervised(make_encoder("mel", "small", channels=(4, 8), blocks=(1, 1))))
        return built[-1]

    out = bench.supervised_per_k(
        train, test, minutes=None, draws=1, ks=(2, "all"), model=small, epochs=3, batch_size=8
    )
    assert list(out) == ["2", "all"]
    assert [model for model, _, _ in seen] == built  # each fit trains a fresh model of ``model``
    assert [n for _, n, _ in seen] == [20, len(train)]
    assert all(c.epochs == 3 and c.max_minutes is None for _, _, c in seen)
    assert [c.batch_size for _, _, c in seen] == [8, 8]
    with pytest.raises(ValueError, match="ks must hold positive ints"):
        bench.supervised_per_k(train, test, minutes=1, draws=1, ks=(0,))
    with pytest.raises(ValueError, match="unknown settings"):
        bench.supervised_per_k(train, test, minutes=1, draws=1, epoch=3)


def test_classifier_accuracy_counts_the_argmax_of_the_models_own_classifier():
    from dlsaudio.bench.label_efficiency import classifier_accuracy

    class Cache:
        waves = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
        labels = torch.tensor([1, 0, 1, 1])

        def __len__(self):
            return 4

    model = torch.nn.Linear(2, 2, bias=False)
    model.weight.data = torch.eye(2)  # predicts the larger coordinate
    assert classifier_accuracy(model, Cache(), batch_size=3) == 0.75


def test_label_efficiency_benchmark_rejects_unknown_methods():
    from dlsaudio.bench import ssl as bench

    with pytest.raises(ValueError, match=r"unknown methods \['moco'\]"):
        bench.bench_label_efficiency("sample", methods=("moco",))


def test_speaker_shift_fits_on_some_voices_and_scores_on_others():
    # Each speaker shifts every feature by its own offset; the digit is the sign of x[0].
    rng = np.random.default_rng(0)

    def clips(n_per, offset_scale):
        xs, ys, ss = [], [], []
        for speaker, offset in zip("abcd", (0, 1, 2, 3), strict=True):
            for i in range(n_per):
                y = i % 2
                xs.append([(1 if y else -1) + rng.normal(0, 0.1), offset * offset_scale])
                ys.append(y)
                ss.append(speaker)
        return Embeddings(np.array(xs, np.float32), np.array(ys), ss)

    out = speaker_shift(clips(10, 1.0), clips(4, 1.0), n_held_out=1, ks=(2, None), draws=2)
    assert len(out["held_out"]) == 1 and out["held_out"][0] in "abcd"
    assert list(out["same voices"]) == ["2", "all"] and list(out["new voices"]) == ["2", "all"]
    assert out["same voices"]["all"]["mean"] == 1.0 and out["new voices"]["all"]["mean"] == 1.0
    with pytest.raises(ValueError, match="n_held_out must be an int between"):
        speaker_shift(clips(4, 1.0), clips(4, 1.0), n_held_out=4)
    few = clips(4, 1.0)
    only_a = few.subset([i for i, s in enumerate(few.speakers) if s == "a"])
    with pytest.raises(ValueError, match="must include the held-out speakers"):
        speaker_shift(clips(4, 1.0), only_a, n_held_out=3, seed=1)
