"""A pretrained speech SSL model read layer by layer: HuBERT or wav2vec 2.0 through transformers.

HuBERT (https://arxiv.org/abs/2106.07447) and wav2vec 2.0 (https://arxiv.org/abs/2006.11477) turn
a 16 kHz wave into frames (a convolutional front end, one frame per 20 ms) and pass them through a
stack of Transformer layers. Every layer's output is a representation of its own; the SUPERB
benchmark (https://arxiv.org/abs/2105.01051) probes them all. :func:`layer_embeddings` gives one
vector per clip and layer: each layer's frames averaged over the clip's real frames.

Two ways in share everything after the choice of model (as :mod:`dlsaudio.asr.whisper` does):

* :func:`load_pretrained` reads a Hugging Face Hub id (``facebook/hubert-base-ls960``, on Colab)
  or a folder written by ``save_pretrained``;
* ``load_pretrained("tiny-local")`` builds a tiny randomly initialised HuBERT with
  :func:`build_tiny_hubert`, saves it to a temporary folder and reads it back through the same
  ``from_pretrained`` (tests and smoke mode; no network). Its features mean nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchaudio
from tqdm.auto import tqdm
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    HubertConfig,
    HubertModel,
    Wav2Vec2FeatureExtractor,
)

from dlsaudio.data.waves import WaveCache
from dlsaudio.ssl.evaluation import Embeddings
from dlsaudio.validation import check_int

DEFAULT_MODEL = "facebook/hubert-base-ls960"
"""HuBERT base: 12 Transformer layers of width 768, pre-trained on LibriSpeech's 960 hours."""

TINY_LOCAL = "tiny-local"
"""The name that makes :func:`load_pretrained` build the offline tiny HuBERT."""

TINY_HUBERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (32, 32, 32),
    "conv_stride": (5, 8, 8),  # one frame every 320 samples (20 ms), as HuBERT's seven layers
    "conv_kernel": (10, 8, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
"""Sizes of the tiny HuBERT (HuBERT base: width 768, 12 layers, 7 convolutions of 512 channels)."""


_OFFLINE = (
    "offline, pass a folder written by save_pretrained, or 'tiny-local' for a tiny random model "
    "(dlsaudio.ssl.pretrained.build_tiny_hubert)"
)


def build_tiny_hubert(folder: str | Path, *, seed: int = 0, **sizes) -> Path:
    """Write a tiny randomly initialised ``HubertModel`` and its feature extractor to ``folder``.

    The class and layout of ``facebook/hubert-base-ls960`` (a group-normalised convolutional front
    end, a Wav2Vec2 feature extractor at 16 kHz) at the widths of :data:`TINY_HUBERT`; ``sizes``
    overrides them (any ``HubertConfig`` field, e.g. ``feat_extract_norm="layer"``). It knows
    nothing: its features serve to test the code, not to read numbers from.

    Returns:
        ``folder``, for :func:`load_pretrained`.

    Raises:
        ValueError: sizes that ``HubertConfig`` rejects (width not divisible by the heads).
    """
    config = HubertConfig(**{**TINY_HUBERT, **sizes})
    with torch.random.fork_rng(devices=[]):  # seed the weights, leave the caller's RNG alone
        torch.manual_seed(seed)
        model = HubertModel(config)
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    folder = Path(folder)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def load_pretrained(name: str | Path = DEFAULT_MODEL, *, device=None):
    """A speech SSL model (``AutoModel``) and its feature extractor, the model in eval mode.

    Args:
        name: a Hub id (``facebook/hubert-base-ls960``, ``facebook/wav2vec2-base``, ...), a
            folder written by ``save_pretrained``, or ``"tiny-local"`` (:func:`build_tiny_hubert`).
        device: where to put the model (the CPU by default).

    Returns:
        ``(model, feature_extractor)``.

    Raises:
        OSError: the model cannot be loaded; the message says whether the folder is missing
            or the Hub unreachable, and what to do.
        ValueError: the model does not read raw waves (it has no convolutional front end).
    """
    if str(name) == TINY_LOCAL:
        with tempfile.TemporaryDirectory(prefix="tiny-hubert-") as folder:
            return load_pretrained(build_tiny_hubert(folder), device=device)
    path = Path(name).expanduser()
    is_folder = path.is_dir() or str(name).startswith(("/", ".", "~"))
    if is_folder and not path.is_dir():
        raise OSError(f"could not load {str(name)!r}: no such folder; {_OFFLINE}")
    try:
        extractor = AutoFeatureExtractor.from_pretrained(name)
        model = AutoModel.from_pretrained(name)
    except OSError as err:
        if is_folder:
            where, advice = "this folder", "It needs the files that save_pretrained writes"
        else:
            where = "the Hugging Face Hub (no network? a wrong name?)"
            advice = f"On Colab check that the runtime is connected; {_OFFLINE}"
        raise OSError(f"could not load {str(name)!r} from {where}. {advice}. ({err})") from err
    if not hasattr(model, "_get_feat_extract_output_lengths"):
        raise ValueError(
            f"{name!r} is a {type(model).__name__}; expected a speech SSL encoder that reads raw "
            "waves (HuBERT, wav2vec 2.0, WavLM, data2vec-audio)"
        )
    return model.to(device or "cpu").eval(), extractor


@torch.no_grad()
def pooled_hidden_states(
    model,
    extractor,
    waves: Sequence[torch.Tensor],
    sample_rate: int,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> torch.Tensor:
    """Every layer's hidden states of each clip, averaged over the clip's own frames.

    The clips (``(time,)`` waves at ``sample_rate``, any lengths) are resampled to the model's
    rate, normalised by its feature extractor and run in batches of clips of similar length,
    with ``output_hidden_states=True``. Each layer's frames are averaged over the frames of the
    real audio only, so no padding reaches a clip's vector. A model whose front end normalises
    each channel over time (``feat_extract_norm="group"``: HuBERT base, wav2vec 2.0 base) would
    see the padding there, attention mask or not, so it gets batches of equal-length clips only.

    Returns:
        ``(layers + 1, clips, dim)`` float32 on the CPU: row 0 is the input of the first
        Transformer layer (the front end's frames with positions), row ``l`` layer ``l``'s output.

    Raises:
        ValueError: no clips, ``batch_size`` < 1, or a clip shorter than one frame.
    """
    check_int("batch_size", batch_size, minimum=1)
    if len(waves) == 0:
        raise ValueError("waves is empty; pass at least one (time,) clip")
    rate = extractor.sampling_rate
    if sample_rate != rate:
        waves = [torchaudio.functional.resample(w, sample_rate, rate) for w in waves]
    lengths = torch.tensor([len(w) for w in waves])
    frames = model._get_feat_extract_output_lengths(lengths)  # (clips,) frames of real audio
    if int(frames.min()) < 1:
        short = int(frames.argmin())
        raise ValueError(
            f"clip {short} has {int(lengths[short])} samples at {rate} Hz, shorter than one "
            f"frame of {type(model).__name__}; drop or pad it"
        )
    same_length = getattr(model.config, "feat_extract_norm", "layer") == "group"
    device = next(model.parameters()).device
    pooled = torch.empty(model.config.num_hidden_layers + 1, len(waves), model.config.hidden_size)
    batches = _batches(lengths, batch_size, same_length)
    for index in tqdm(batches, desc=f"{model.config.model_type} layers", disable=not progress):
        inputs = extractor(
            [waves[i].numpy() for i in index],
            sampling_rate=rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        out = model(
            inputs["input_values"].to(device),
            attention_mask=inputs["attention_mask"].to(device),
            output_hidden_states=True,
        )
        hidden = torch.stack(out.hidden_states).float().cpu()  # (layers + 1, batch, frames, dim)
        n = frames[index]  # (batch,)
        valid = torch.arange(hidden.shape[2]) < n[:, None]  # (batch, frames)
        summed = (hidden * valid[None, :, :, None]).sum(2)  # (layers + 1, batch, dim)
        pooled[:, index] = summed / n[None, :, None]
    return pooled


def _batches(lengths: torch.Tensor, batch_size: int, same_length: bool) -> list[list[int]]:
    """Clip indices in batches of at most ``batch_size``, longest clips first (little padding);
    with ``same_length`` a batch holds clips of one length only."""
    batches: list[list[int]] = []
    for i in torch.argsort(lengths, descending=True, stable=True).tolist():
        last = batches[-1] if batches else None
        if (
            last is None
            or len(last) == batch_size
            or (same_length and lengths[last[0]] != lengths[i])
        ):
            batches.append([i])
        else:
            last.append(i)
    return batches


def layer_embeddings(
    model, extractor, cache: WaveCache, sample_rate: int, **options
) -> list[Embeddings]:
    """One :class:`~dlsaudio.ssl.evaluation.Embeddings` per layer (``layers + 1`` of them) for the
    clips of ``cache`` without their padding, in the cache's order, with its labels and speakers,
    so the probes of :mod:`dlsaudio.ssl.evaluation` draw the same labelled clips as for any other
    encoder. ``options`` go to :func:`pooled_hidden_states`.

    Raises:
        ValueError: as :func:`pooled_hidden_states`.
    """
    waves = [cache.unpadded(i) for i in range(len(cache))]
    pooled = pooled_hidden_states(model, extractor, waves, sample_rate, **options).numpy()
    labels = cache.labels.numpy() if cache.labels is not None else np.full(len(cache), -1)
    return [Embeddings(x, labels, list(cache.speakers)) for x in pooled]
