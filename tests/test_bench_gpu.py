"""``python -m dlsaudio.bench gpu``: its JSON at tiny sizes on the CPU, the micro-batch search, the
sizes and seminar settings it claims, and its errors."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch

from dlsaudio.asr.collator import IGNORE_INDEX
from dlsaudio.bench import gpu
from dlsaudio.bench.__main__ import main as bench_main
from dlsaudio.bench.gpu_ssl import SSL_SEMINAR
from dlsaudio.bench.gpu_whisper import (
    ASR_SEMINAR,
    WHISPER_SIZES,
    Trainer,
    build_whisper,
    kyrgyz_label_ids,
    make_batches,
    seminar_estimate,
)

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = [
    "--tiny", "--device", "cpu", "--micro-batch", "2", "--accum-steps", "3", "--steps", "2",
    "--warmup", "1", "--decode-clips", "2", "--new-tokens", "3", "--ssl-steps", "2",
]  # fmt: skip


def _run(argv: list[str]) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = gpu.main(argv)
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def report() -> dict:
    code, result = _run(TINY_ARGS)
    assert code == 0
    return result


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=2e-3)  # the JSON keeps 4 significant digits


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_environment_names_the_device_and_versions(report):
    env = report["environment"]
    assert env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env["device_name"]
    assert env["cuda_capability"] is None and env["total_memory_mib"] is None
    assert report["settings"]["sizes"] == ["tiny"] and report["settings"]["device"] == "cpu"
    assert "max_memory_allocated" in report["memory_method"] and "MiB" in report["memory_method"]


def test_every_precision_is_measured_or_unsupported_with_a_reason(report):
    precisions = report["whisper"]["tiny"]["precisions"]
    assert list(precisions) == ["fp32", "fp16", "bf16"]
    assert precisions["fp32"]["status"] == "measured"
    assert precisions["fp16"]["status"] == "unsupported"
    assert "needs a CUDA device" in precisions["fp16"]["reason"]
    bf16 = precisions["bf16"]
    assert bf16["status"] in ("measured", "unsupported")
    if bf16["status"] == "unsupported":
        assert bf16["reason"]


def test_training_numbers_are_consistent(report):
    measured = [
        r for r in report["whisper"]["tiny"]["precisions"].values() if r["status"] == "measured"
    ]
    assert measured
    for r in measured:
        train = r["train"]
        assert train["timed_steps"] == 2 and train["timed_samples"] == 2 * 2 * 3
        for key in ("samples_per_second", "tokens_per_second", "seconds"):
            assert _positive(train[key]), key
        assert _close(train["samples_per_second"], train["timed_samples"] / train["seconds"])
        assert _close(train["tokens_per_second"], train["timed_tokens"] / train["seconds"])
        mean_tokens = train["mean_label_tokens_per_sample"]
        assert _close(mean_tokens, train["timed_tokens"] / train["timed_samples"])
        assert _close(train["tokens_per_second"], train["samples_per_second"] * mean_tokens)
        # <|kk|> <|transcribe|> <|notimestamps|>, some text, <|endoftext|>
        assert 5 <= mean_tokens < 100
        assert r["peak_memory_mib"] is None
        assert r["largest_micro_batch"]["value"] is None and r["largest_micro_batch"]["reason"]


def test_the_seminar_estimate_is_its_formula_at_the_measured_rates(report):
    for r in report["whisper"]["tiny"]["precisions"].values():
        if r["status"] != "measured":
            continue
        estimate = r["seminar_estimate"]
        assert estimate["train_examples"] == 500 * 8 * 2
        assert estimate["transcribed_utterances"] == 500 // 250 * 100
        sps, cps = r["train"]["samples_per_second"], r["decode"]["clips_per_second"]
        assert (estimate["samples_per_second"], estimate["clips_per_second"]) == (sps, cps)
        assert _close(estimate["hours"], 8000 / sps / 3600)
        assert _close(estimate["hours_with_monitoring"], (8000 / sps + 200 / cps) / 3600)
        assert estimate["stated_t4"] is None  # the tiny model has no stated T4 rate


def test_the_stated_t4_estimate_is_the_packages():
    estimate = seminar_estimate(4.0, "openai/whisper-small", 5.0)
    assert estimate["hours"] == pytest.approx(8000 / 4.0 / 3600)
    assert estimate["hours_with_monitoring"] == pytest.approx((8000 / 4.0 + 200 / 5.0) / 3600)
    stated = estimate["stated_t4"]
    assert (stated["samples_per_second"], stated["clips_per_second"]) == (3.0, 4.0)
    assert stated["hours"] == pytest.approx(8000 / 3.0 / 3600)
    assert stated["hours_with_monitoring"] == pytest.approx((8000 / 3.0 + 200 / 4.0) / 3600)
    assert seminar_estimate(4.0, "openai/whisper-base")["hours_with_monitoring"] is None


def test_decoding_is_forced_to_the_asked_number_of_tokens(report):
    for r in report["whisper"]["tiny"]["precisions"].values():
        if r["status"] != "measured":
            continue
        decode = r["decode"]
        assert decode["clips"] == 2 and decode["new_tokens_per_clip"] == 3
        assert _close(decode["tokens_per_second"], 2 * 3 / decode["seconds"])
        assert _close(decode["clips_per_second"], 2 / decode["seconds"])


def test_ssl_runs_the_seminars_smoke_configuration(report):
    ssl = report["ssl"]
    assert ssl["status"] == "measured"
    assert ssl["seminar_config"]["mode"] == "smoke" and ssl["seminar_config"]["batch_size"] == 32
    assert ssl["timed_steps"] == 2 and ssl["timed_clips"] == 32 * 2
    assert _positive(ssl["clips_per_second"]) and ssl["peak_memory_mib"] is None
    assert _close(ssl["clips_per_second"], ssl["timed_clips"] / ssl["seconds"])


def test_the_command_line_dispatches_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["gpu", "--help"])
    assert exit_info.value.code == 0 and "--max-micro-batch" in capsys.readouterr().out


# --------------------------------------------------------------- labels, steps and sizes


def test_labels_are_tokenised_kyrgyz_transcripts_collated_as_in_training():
    model, processor = build_whisper("tiny")
    expected = {tuple(ids[1:]) for ids in kyrgyz_label_ids(processor.tokenizer)}  # SOT dropped
    batch = make_batches(processor, model)(5)
    assert batch["input_features"].shape == (5, 80, 600)
    for row in batch["labels"]:
        assert tuple(row[row != IGNORE_INDEX].tolist()) in expected
    kk = processor.tokenizer.convert_tokens_to_ids("<|kk|>")
    assert bool((batch["labels"][:, 0] == kk).all())


def test_the_fp16_step_runs_through_the_grad_scaler():
    model, processor = build_whisper("tiny")
    trainer = Trainer(model, "fp16", torch.device("cpu"))
    assert trainer.scaler.is_enabled()
    window = [make_batches(processor, model)(1) for _ in range(2)]
    before = [p.detach().clone() for p in model.parameters()]
    tokens, stepped = trainer.step(window)
    assert tokens == sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in window)
    changed = any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert changed == stepped  # a skipped (overflowed) step leaves the weights alone
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("size", "d_model", "layers", "heads", "ffn", "parameters"),
    [("small", 768, 12, 12, 3072, 241_734_912), ("base", 512, 6, 8, 2048, 72_593_920)],
)
def test_sizes_are_those_of_the_published_checkpoints(
    size, d_model, layers, heads, ffn, parameters
):
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model, _ = build_whisper(size)
    c = model.config
    assert (c.d_model, c.encoder_layers, c.decoder_layers) == (d_model, layers, layers)
    assert (c.encoder_attention_heads, c.decoder_attention_heads) == (heads, heads)
    assert (c.encoder_ffn_dim, c.decoder_ffn_dim) == (ffn, ffn)
    assert (c.vocab_size, c.num_mel_bins) == (51865, 80)
    assert (c.max_source_positions, c.max_target_positions) == (1500, 448)
    assert sum(p.numel() for p in model.parameters()) == parameters


def _parameters(path: Path) -> dict:
    """The parameter cell's ``NAME = value`` and ``NAME = pick(full=..., smoke=...)`` assignments."""
    import nbformat

    values = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or "pick(full=" not in cell.source:
            continue
        for node in ast.parse(cell.source).body:
            if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
                continue
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "pick":
                kw = {k.arg: k.value for k in value.keywords}
                values[name] = {k: ast.unparse(v) for k, v in kw.items()}
            else:
                values[name] = ast.unparse(value)
        return values
    raise AssertionError(f"{path} has no parameter cell")


def test_asr_settings_are_the_module_11_seminars():
    p = _parameters(ROOT / "week_11_low_resource" / "seminar.ipynb")
    assert p["MODEL"]["full"] == repr(WHISPER_SIZES["small"].seminar_model)
    for name, key in [("BATCH_SIZE", "micro_batch"), ("ACCUM_STEPS", "accum_steps"),
                      ("MAX_STEPS", "max_steps"), ("MAX_NEW_TOKENS", "max_new_tokens"),
                      ("EVAL_EVERY", "eval_every"), ("MONITOR_SIZE", "monitor_size")]:  # fmt: skip
        assert ast.literal_eval(p[name]["full"]) == ASR_SEMINAR[key], name


def test_ssl_settings_are_the_module_3_seminars():
    path = ROOT / "week_03_ssl" / "seminar.ipynb"
    p = _parameters(path)
    assert p["CONFIG"] == "'resnet18' if DEVICE == 'cuda' else 'small'"
    assert p["METHOD"].startswith("'infonce'") and ast.literal_eval(p["TAU"]) == 0.1
    for name, key in [("BATCH_SIZE", "batch_size"), ("CLIP_SAMPLES", "clip_samples"),
                      ("PROJECTION_DIM", "dim"), ("HIDDEN_DIM", "hidden_dim"),
                      ("CHANNELS", "channels"), ("BLOCKS", "blocks")]:  # fmt: skip
        for mode, config in (("full", "gpu"), ("smoke", "smoke")):
            assert ast.literal_eval(p[name][mode]) == SSL_SEMINAR[config][key], (name, mode)
    assert 'batching="speaker"' in path.read_text(encoding="utf-8").replace('\\"', '"')


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "small,huge"], "unknown ['huge']"),
        (["--precisions", "fp8"], "unknown ['fp8']"),
        (["--search-precisions", "fp64"], "unknown ['fp64']"),
        (["--device", "tpu"], "not a device"),
        (["--device", "mps"], "runs on cpu or cuda"),
        (["--steps", "0"], "--steps=0 must be >= 1"),
        (["--new-tokens", "445"], "at most 444"),
    ],
)
def test_bad_options_are_refused_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_message_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["gpu", "--device", "cuda"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "torch sees no CUDA GPU" in err and "Traceback" not in err


def test_bf16_on_a_gpu_without_native_bf16_is_unsupported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    reason = gpu.unsupported_reason("bf16", torch.device("cuda", 0))
    assert "Tesla T4 (compute capability 7.5) has no native bf16" in reason
    assert gpu.unsupported_reason("fp16", torch.device("cuda", 0)) is None
    assert gpu.unsupported_reason("fp32", torch.device("cpu")) is None


def test_a_micro_batch_that_does_not_fit_is_a_result_not_a_failure(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(gpu, "train_throughput", out_of_memory)
    code, result = _run([*TINY_ARGS, "--precisions", "fp32", "--ssl-steps", "0"])
    fp32 = result["whisper"]["tiny"]["precisions"]["fp32"]
    assert code == 0 and fp32["status"] == "out_of_memory"
    assert "OutOfMemoryError: CUDA out of memory" in fp32["error"]
    assert "train" not in fp32 and "decode" not in fp32 and "ssl" not in result


def test_a_device_error_is_reported_and_the_exit_status_says_so(monkeypatch):
    def device_error(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    monkeypatch.setattr(gpu, "decode_speed", device_error)
    monkeypatch.setattr(gpu, "ssl_throughput", device_error)
    code, result = _run([*TINY_ARGS, "--precisions", "fp32,bf16"])
    assert code == 1
    assert result["ssl"]["status"] == "failed" and "illegal memory access" in result["ssl"]["error"]
    for r in result["whisper"]["tiny"]["precisions"].values():
        assert r["status"] == "failed" and r["out_of_memory"] is False
        assert r["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
        assert _positive(r["train"]["samples_per_second"])  # what was measured is kept


def test_without_openai_whisper_the_message_says_what_to_install(monkeypatch, capsys):
    def no_vocabulary(size):
        raise ImportError("the tiny offline Whisper needs the openai-whisper package")

    monkeypatch.setattr(gpu, "build_whisper", no_vocabulary)
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["--tiny", "--device", "cpu"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "needs the openai-whisper package" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_on_cuda_memory_is_read_and_the_search_runs():
    argv = [*TINY_ARGS, "--device", "cuda", "--search-precisions", "all", "--max-micro-batch", "4"]
    code, result = _run(argv)
    assert code == 0
    env = result["environment"]
    assert env["device"].startswith("cuda") and env["cuda_capability"] and env["total_memory_mib"]
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    for precision, r in result["whisper"]["tiny"]["precisions"].items():
        expected = "unsupported" if precision == "bf16" and not native_bf16 else "measured"
        assert r["status"] == expected, precision
        if expected == "measured":
            assert 0 < r["peak_memory_mib"] < env["total_memory_mib"]
            assert r["largest_micro_batch"]["value"] == 4  # a tiny model fits the bound
    assert result["ssl"]["status"] == "measured" and result["ssl"]["peak_memory_mib"] > 0
