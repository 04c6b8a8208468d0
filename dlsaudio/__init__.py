"""dlsaudio: tested helpers for the self-supervised audio (module 3) and Kyrgyz Whisper (module 11) notebooks.

Glossary used across the package: ``wave`` (a waveform, ``(batch, time)``), ``mel`` (a log-mel
spectrogram, ``(batch, n_mels, frames)``), ``z`` (a projection, ``(batch, dim)``), ``p`` (a
prediction), ``x1``/``x2`` (two views), ``tau`` (a temperature), ``source`` (where an example
comes from), ``accum_steps`` (micro-batches per optimizer step).
"""

from dlsaudio.smoke import is_smoke, on_colab, pick, run_folder

__version__ = "0.1.0"

__all__ = ["__version__", "is_smoke", "on_colab", "pick", "run_folder"]
