"""Interactive explorers for the seminar (ipywidgets): :class:`AugmentationExplorer` shows
and plays a clip's waveform and log-mel spectrogram before and after an augmentation;
:class:`EmbeddingExplorer` plays a clip and its nearest neighbours in embedding space (cosine
similarity), with their digits and speakers.

Each explorer exposes ``.widget`` (display it) and ``.update()`` (the callback the controls
call), which stores what it drew in attributes, so it can be tested without a browser.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Audio, display

from dlsaudio.audio import log_mel
from dlsaudio.ssl.evaluation import Embeddings


def _check_waves(waves: torch.Tensor) -> None:
    if waves.ndim != 2 or waves.shape[0] == 0:
        raise ValueError(f"waves must be (clips, time) with clips >= 1, got {tuple(waves.shape)}")


class AugmentationExplorer:
    """Pick a clip of ``waves`` ``(clips, time)``, an augmentation (``{name: factory(strength)}``,
    :data:`~dlsaudio.ssl.augment.AUGMENTATIONS` by default) and a strength; see and hear the
    result. ``seed`` seeds the random draw; the "resample" button changes it.

    Raises:
        ValueError: ``waves`` is not ``(clips, time)`` or ``augmentations`` is empty.
    """

    def __init__(
        self, waves: torch.Tensor, sample_rate=16000, augmentations: dict | None = None, seed=0
    ) -> None:
        from dlsaudio.ssl.augment import AUGMENTATIONS

        _check_waves(waves)
        self.augmentations = dict(AUGMENTATIONS if augmentations is None else augmentations)
        if not self.augmentations:
            raise ValueError("augmentations is empty; pass {name: factory(strength)}")
        self.waves, self.sample_rate, self.seed = waves, sample_rate, seed
        self.clip = widgets.IntSlider(0, min=0, max=waves.shape[0] - 1, description="clip")
        self.name = widgets.Dropdown(options=list(self.augmentations), description="augment")
        self.strength = widgets.FloatSlider(1.0, max=1.0, step=0.05, description="strength")
        self.resample = widgets.Button(description="new random draw")
        self.output = widgets.Output()
        for control in (self.clip, self.name, self.strength):
            control.observe(lambda _: self.update(), names="value")
        self.resample.on_click(self._next_seed)
        rows = [widgets.HBox([self.clip, self.name]), widgets.HBox([self.strength, self.resample])]
        self.widget = widgets.VBox([*rows, self.output])
        self.augmented: torch.Tensor | None = None
        self.update()

    def _next_seed(self, _=None) -> None:
        self.seed += 1
        self.update()

    def update(self) -> None:
        """Apply the chosen augmentation and redraw; the result is kept in ``.augmented``."""
        wave = self.waves[self.clip.value][None]  # (1, time)
        aug = self.augmentations[self.name.value](self.strength.value)
        g = torch.Generator().manual_seed(self.seed)
        mel = log_mel(wave, self.sample_rate)  # (1, n_mels, frames)
        on_mel = getattr(aug, "domain", "wave") == "mel" or self.name.value.startswith("mel_")
        out_wave = wave if on_mel else aug(wave, generator=g)
        out_mel = aug(mel, generator=g) if on_mel else log_mel(out_wave, self.sample_rate)
        self.augmented = out_mel[0] if on_mel else out_wave[0]
        fig, axes = plt.subplots(2, 2, figsize=(11, 4.5), sharex=True)
        seconds = wave.shape[1] / self.sample_rate
        t = np.arange(wave.shape[1]) / self.sample_rate
        views = ((wave, mel, "original"), (out_wave, out_mel, self.name.value))
        for (top, bottom), (w, m, title) in zip(axes.T, views, strict=True):  # one column each
            top.plot(t, w[0].numpy(), lw=0.5)
            top.set_title(title)
            # the spectrogram on the same time axis as the wave above it (seconds, not frames)
            extent = (0.0, seconds, 0, m.shape[1])
            bottom.imshow(m[0].numpy(), origin="lower", aspect="auto", cmap="magma", extent=extent)
            bottom.set_xlabel("seconds")
        axes[0, 0].set_xlim(0.0, seconds)
        axes[1, 0].set_ylabel("mel bin")
        self.figure = fig  # the last figure drawn
        fig.tight_layout()
        self.output.clear_output(wait=True)
        with self.output:
            display(fig)
            if on_mel:
                print("This augmentation acts on the log-mel spectrogram; the audio is unchanged.")
            display(playable(out_wave[0], self.sample_rate))
        plt.close(fig)


def playable(wave: torch.Tensor, sample_rate: int) -> Audio:
    """An audio player for a ``(time,)`` wave at its own loudness: not normalised, so a gain
    change is heard, and clipped to [-1, 1] as a sound card would."""
    return Audio(wave.clamp(-1.0, 1.0).numpy(), rate=sample_rate, normalize=False)


class EmbeddingExplorer:
    """Pick a clip and hear its ``k`` nearest neighbours in embedding space (``waves``
    ``(clips, time)`` in the order of ``emb``).

    Raises:
        ValueError: ``waves`` and ``emb`` disagree in length, or ``k`` is not in
            ``[1, clips - 1]``.
    """

    def __init__(self, emb: Embeddings, waves: torch.Tensor, sample_rate=16000, k=3) -> None:
        _check_waves(waves)
        if len(emb) != waves.shape[0]:
            raise ValueError(
                f"emb has {len(emb)} clips but waves has {waves.shape[0]}; pass the same set"
            )
        if not isinstance(k, int) or not 1 <= k < len(emb):
            raise ValueError(f"k must be an int in [1, {len(emb) - 1}], got {k!r}")
        self.emb, self.waves, self.sample_rate, self.k = emb, waves, sample_rate, k
        x = emb.x / (np.linalg.norm(emb.x, axis=1, keepdims=True) + 1e-12)
        self.similarity = x @ x.T  # (clips, clips) cosine similarity
        self.clip = widgets.IntSlider(0, min=0, max=len(emb) - 1, description="clip")
        self.output = widgets.Output()
        self.clip.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([self.clip, self.output])
        self.shown: list[int] = []
        self.update()

    def neighbours(self, i: int) -> list[int]:
        """Indices of the ``k`` clips most similar to clip ``i`` (itself excluded), best first."""
        order = np.argsort(-self.similarity[i], kind="stable")
        return [int(j) for j in order if j != i][: self.k]

    def _describe(self, i: int) -> str:
        return f"clip {i}: digit {self.emb.labels[i]}, speaker {self.emb.speakers[i]}"

    def update(self) -> None:
        """Show the chosen clip and its neighbours; their indices are kept in ``.shown``."""
        i = self.clip.value
        self.shown = self.neighbours(i)
        self.output.clear_output(wait=True)
        with self.output:
            print("query   ", self._describe(i))
            display(Audio(self.waves[i].numpy(), rate=self.sample_rate))
            for j in self.shown:
                print(f"cos {self.similarity[i, j]:+.2f}", self._describe(j))
                display(Audio(self.waves[j].numpy(), rate=self.sample_rate))
