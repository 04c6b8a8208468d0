"""Data sets in one item format.

Every data set here yields dict items::

    {"wave": (time,) float32 tensor, "sample_rate": int, "label": int | None,
     "text": str | None, "speaker": str, "source": str, "path": str}

which :func:`dlsaudio.audio.collate_waves` batches. Loaders take a source string, the one
value a notebook's parameter cell sets: ``"sample"`` (bundled, offline) or a real data set
(``"fsdd:PATH"``, ``"audiomnist:PATH"``, ``"common_voice:PATH"``, ``"hf:NAME"``, ...).
The public names of :mod:`dlsaudio.data.digits` (module 3) and :mod:`dlsaudio.data.asr`
(module 11) are importable from here, and :func:`fetch_common_voice`, which downloads Common
Voice from Mozilla Data Collective (:mod:`dlsaudio.data.mdc`). Module 11's loaders are imported
on first use, so module 3 never loads them (nor pandas).
"""

import importlib

from dlsaudio.data import digits
from dlsaudio.data.digits import *  # noqa: F403
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.data.waves import WaveCache, as_cache

_MDC_NAMES = ("MdcError", "fetch_common_voice", "mdc_api_key_source")
__all__ = ["SAMPLE_DIR", "WaveCache", "as_cache", *_MDC_NAMES, *digits.__all__]


def __getattr__(name: str):
    # dlsaudio.data.mdc is imported on first use, so that ``python -m dlsaudio.data.mdc`` runs a
    # module its package has not imported already; module 11's loaders on first use too.
    if name in _MDC_NAMES:
        return getattr(importlib.import_module("dlsaudio.data.mdc"), name)
    if not name.startswith("_"):
        asr = importlib.import_module("dlsaudio.data.asr")
        if name in asr.__all__:
            return getattr(asr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
