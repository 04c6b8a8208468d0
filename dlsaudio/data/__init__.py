"""Data sets in one item format.

Every data set here yields dict items::

    {"wave": (time,) float32 tensor, "sample_rate": int, "label": int | None,
     "text": str | None, "speaker": str, "source": str, "path": str}

which :func:`dlsaudio.audio.collate_waves` batches. Loaders take a source string, the one
value a notebook's parameter cell sets: ``"sample"`` (bundled, offline) or a real data set
(``"fsdd:PATH"``, ``"audiomnist:PATH"``, ``"common_voice:PATH"``, ``"hf:NAME"``, ...).
"""

from dlsaudio.data.asr import (
    AsrDataset,
    DatasetUnavailableError,
    asr_source,
    concat_asr,
    load_asr,
)
from dlsaudio.data.digits import (
    DigitsDataset,
    digits_source,
    fetch_fsdd,
    fsdd_official_split,
    load_digits,
    parse_takes,
    speaker_split,
    take_split,
)
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.data.waves import WaveCache, as_cache

__all__ = [
    "SAMPLE_DIR",
    "WaveCache",
    "as_cache",
    "AsrDataset",
    "DatasetUnavailableError",
    "asr_source",
    "concat_asr",
    "load_asr",
    "DigitsDataset",
    "digits_source",
    "fetch_fsdd",
    "fsdd_official_split",
    "load_digits",
    "parse_takes",
    "speaker_split",
    "take_split",
]
