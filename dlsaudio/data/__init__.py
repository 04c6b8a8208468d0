"""Data sets in one item format.

Every data set here yields dict items::

    {"wave": (time,) float32 tensor, "sample_rate": int, "label": int | None,
     "text": str | None, "speaker": str, "source": str, "path": str}

which :func:`dlsaudio.audio.collate_waves` batches. Loaders take a source string, the one
value a notebook's parameter cell sets: ``"sample"`` (bundled, offline) or a real data set
(``"fsdd:PATH"``, ``"audiomnist:PATH"``, ``"common_voice:PATH"``, ``"hf:NAME"``, ...).
The public names of :mod:`dlsaudio.data.asr` and :mod:`dlsaudio.data.digits` are importable
from here, and :func:`fetch_common_voice`, which downloads Common Voice from Mozilla Data
Collective (:mod:`dlsaudio.data.mdc`).
"""

from dlsaudio.data import asr, digits
from dlsaudio.data.asr import *  # noqa: F403
from dlsaudio.data.digits import *  # noqa: F403
from dlsaudio.data.mdc import MdcError, fetch_common_voice, mdc_api_key_source
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.data.waves import WaveCache, as_cache

__all__ = [
    "SAMPLE_DIR",
    "MdcError",
    "WaveCache",
    "as_cache",
    "fetch_common_voice",
    "mdc_api_key_source",
    *asr.__all__,
    *digits.__all__,
]
