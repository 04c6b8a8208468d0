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
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.data.waves import WaveCache, as_cache

_MDC_NAMES = ("MdcError", "fetch_common_voice", "mdc_api_key_source")
__all__ = ["SAMPLE_DIR", "WaveCache", "as_cache", *_MDC_NAMES, *asr.__all__, *digits.__all__]


def __getattr__(name: str):
    # dlsaudio.data.mdc is imported on first use, so that ``python -m dlsaudio.data.mdc``
    # runs a module its package has not imported already.
    if name in _MDC_NAMES:
        from dlsaudio.data import mdc

        return getattr(mdc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
