"""The bundled Kyrgyz ASR sample of module 11, synthesised with espeak-ng.

Three sources of unequal size, listed by :func:`asr_utterances` and written by
:func:`generate_kyrgyz` with ``manifest.csv`` (``path,text,spoken,source,speaker,duration``):
``ky_tts`` (Kyrgyz sentences, numbers read in words, everyday phrases), ``ky_tts_noisy`` (noisy
copies of some of them at :data:`NOISY_SNR_DB` dB SNR) and ``kk_tts`` (Kazakh sentences). The
voices, speech and files come from :mod:`dlsaudio.data.synth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dlsaudio.asr.text import verbalize_numbers
from dlsaudio.data import synth
from dlsaudio.data.synth import SAMPLE_RATE, Voice, seeded_rng, synthesize, voice_table

__all__ = [
    "KAZAKH_SENTENCES",
    "KAZAKH_SPEAKERS",
    "KYRGYZ_SENTENCES",
    "KYRGYZ_SPEAKERS",
    "NOISY_SNR_DB",
    "Utterance",
    "asr_utterances",
    "generate_kyrgyz",
]


NOISY_SNR_DB = 10.0


#  speaker  espeak-ng voice       pitch  rate
KYRGYZ_SPEAKERS = voice_table("""
    kym1    ky+m1                   40   150
    kyf2    ky+f2                   62   145
    kym3    ky+m3                   30   140
    kyf4    ky+f4                   70   155
    kym7    ky+m7                   45   135
""")
KAZAKH_SPEAKERS = voice_table("""
    kkm2    kk+m2                   45   150
    kkf1    kk+f1                   65   145
    kkm4    kk+m4                   35   140
""")


# Written forms: numbers with digits, as people write them; the synthesiser reads
# verbalize_numbers(text).
KYRGYZ_NUMBER_TEMPLATES = (
    ("Мен {} жаштамын.", 18, 80),
    ("Бул китеп {} сом турат.", 120, 990),
    ("Биздин класста {} окуучу бар.", 15, 35),
    ("Поезд {} мүнөттөн кийин жөнөйт.", 5, 55),
    ("Китептин {} бети бар.", 100, 700),
    ("Ал {}-жылы туулган.", 1950, 2020),
    ("Мен {}-класста окуйм.", 1, 11),
    ("Шаарда {} адам жашайт.", 20000, 900000),
    ("Тоонун бийиктиги {} метр.", 1500, 7400),
    ("Бүгүн {}-май.", 1, 31),
    ("Дүкөнгө {} килограмм алма келди.", 10, 500),
    ("Мен {} сом төлөдүм.", 50, 5000),
    ("Ооруканада {} дарыгер иштейт.", 12, 90),
    ("Айылга чейин {} километр.", 3, 250),
    ("Автобуста {} орун бар.", 20, 60),
)
KYRGYZ_NUMBER_READINGS = 2  # sentences per template

KYRGYZ_SENTENCES = (
    "Саламатсызбы!",
    "Менин атым Айгүл.",
    "Бүгүн аба ырайы жакшы.",
    "Мен Бишкекте жашайм.",
    "Сиз кайдан келдиңиз?",
    "Биз эртең тоого барабыз.",
    "Апам нан бышырды.",
    "Кыргызстан тоолуу өлкө.",
    "Ысык-Көл абдан кооз.",
    "Мен чай ичкенди жакшы көрөм.",
    "Балдар мектепке барышты.",
    "Китеп столдун үстүндө жатат.",
    "Атам жумушка кетти.",
    "Кечээ кар жаады.",
    "Бул жерде дүкөн барбы?",
    "Чоң рахмат!",
    "Мен кыргызча үйрөнүп жатам.",
    "Эжем дарыгер болуп иштейт.",
    "Жайында биз жайлоого чыгабыз.",
    "Ат адамдын канаты.",
    "Көчөдө машина көп.",
    "Сиздин телефонуңуз шыңгырап жатат.",
    "Мен кечке чейин иштейм.",
    "Бүгүн базар жабык.",
    "Досум мага кат жазды.",
    "Тамак даяр, келгиле!",
    "Манас кыргыз элинин эпосу.",
    "Түштөн кийин жамгыр жаайт.",
    "Мен эне тилимди сүйөм.",
    "Суу муздак экен.",
    "Бала ойноп жүрөт.",
    "Жакшы калыңыз!",
)

KAZAKH_SENTENCES = (
    "Сәлеметсіз бе!",
    "Менің атым Асқар.",
    "Бүгін ауа райы жақсы.",
    "Мен Алматыда тұрамын.",
    "Сіз қайдан келдіңіз?",
    "Біз ертең тауға барамыз.",
    "Анам нан пісірді.",
    "Қазақстан үлкен ел.",
    "Мен шай ішкенді жақсы көремін.",
    "Балалар мектепке барды.",
    "Кітап үстелдің үстінде жатыр.",
    "Әкем жұмысқа кетті.",
    "Кеше қар жауды.",
    "Үлкен рахмет!",
    "Мен қазақша үйреніп жүрмін.",
    "Әпкем дәрігер болып істейді.",
    "Көшеде көлік көп.",
    "Тамақ дайын, келіңдер!",
    "Су суық екен.",
    "Бала ойнап жүр.",
    "Досым маған хат жазды.",
    "Бүгін базар жабық.",
    "Жазда біз жайлауға шығамыз.",
    "Мен кешке дейін жұмыс істеймін.",
    "Сау болыңыз!",
)
NOISY_COUNT = 20


@dataclass(frozen=True)
class Utterance:
    """One sentence of the ASR sample.

    Example:
        >>> Utterance("mine/0.flac", "Мен 25 жаштамын.", "mine", KYRGYZ_SPEAKERS[0]).spoken
        'Мен жыйырма беш жаштамын.'

    Attributes:
        path: the file path relative to the output folder, e.g. ``"ky_tts/ky_tts_000.flac"``.
        text: the transcript as a person would write it.
        source: ``"ky_tts"``, ``"ky_tts_noisy"``, ``"kk_tts"`` or a name of your own.
        voice: the speaker.
        spoken: the text given to the synthesiser; default: ``text`` with numbers in Kyrgyz
            words (:func:`dlsaudio.asr.text.verbalize_numbers`). Give it for other languages.
        snr_db: white noise is added at this SNR when set.

    Raises:
        ValueError: ``path`` is not a relative ``.flac`` path or ``text`` is empty.
    """

    path: str
    text: str
    source: str
    voice: Voice
    spoken: str | None = None
    snr_db: float | None = None

    def __post_init__(self) -> None:
        if (
            not self.path.endswith(".flac")
            or Path(self.path).is_absolute()
            or ".." in Path(self.path).parts
        ):
            raise ValueError(
                f"path must be a relative .flac path inside the output folder, got {self.path!r}"
            )
        if not self.text.strip():
            raise ValueError(f"text must not be empty ({self.path})")
        if self.spoken is None:
            object.__setattr__(self, "spoken", verbalize_numbers(self.text))


def asr_utterances() -> list[Utterance]:
    """The utterances of the bundled ASR sample, in manifest order.

    Returns:
        ``ky_tts`` (number readings and everyday sentences), then ``ky_tts_noisy`` (noisy copies
        of a seeded choice of ``ky_tts``), then ``kk_tts``.
    """
    ky_texts = []
    for template, low, high in KYRGYZ_NUMBER_TEMPLATES:
        rng = seeded_rng("ky_numbers", template)
        for n in rng.integers(low, high + 1, size=KYRGYZ_NUMBER_READINGS).tolist():
            ky_texts.append(template.format(n))
    ky_texts += KYRGYZ_SENTENCES
    utterances = []
    for i, text in enumerate(ky_texts):
        voice = KYRGYZ_SPEAKERS[i % len(KYRGYZ_SPEAKERS)]
        voice = voice.jittered(seeded_rng("ky_tts", i))
        utterances.append(Utterance(f"ky_tts/ky_tts_{i:03d}.flac", text, "ky_tts", voice))
    picks = seeded_rng("ky_tts_noisy").choice(len(utterances), size=NOISY_COUNT, replace=False)
    for j, i in enumerate(sorted(picks.tolist())):
        clean = utterances[i]
        utterances.append(
            replace(
                clean,
                path=f"ky_tts_noisy/ky_tts_noisy_{j:03d}.flac",
                source="ky_tts_noisy",
                snr_db=NOISY_SNR_DB,
            )
        )
    for i, text in enumerate(KAZAKH_SENTENCES):
        voice = KAZAKH_SPEAKERS[i % len(KAZAKH_SPEAKERS)].jittered(seeded_rng("kk_tts", i))
        utterances.append(
            Utterance(f"kk_tts/kk_tts_{i:03d}.flac", text, "kk_tts", voice, spoken=text)
        )
    return utterances


def _add_noise(wave: torch.Tensor, snr_db: float, rng: np.random.Generator) -> torch.Tensor:
    noise = torch.from_numpy(rng.standard_normal(wave.numel()).astype(np.float32))
    scale = wave.pow(2).mean().sqrt() / (noise.pow(2).mean().sqrt() * 10 ** (snr_db / 20))
    noisy = wave + scale * noise
    return noisy / max(1.0, float(noisy.abs().max()) / 0.99)


def generate_kyrgyz(
    out_dir: str | Path,
    utterances: Sequence[Utterance] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write the Kyrgyz ASR sample (with its noisy and Kazakh sources) and its manifest.

    Args:
        out_dir: the folder to write; files go to ``<source>/<source>_<index>.flac``.
        utterances: what to say; defaults to :func:`asr_utterances`. Pass your own
            :class:`Utterance` list to synthesise more data.
        sample_rate: the rate of the written FLAC files.

    Returns:
        The path of ``manifest.csv`` (``path,text,spoken,source,speaker,duration``, paths
        relative to it, duration in seconds).

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        ValueError: two utterances share a path.
    """
    utterances = asr_utterances() if utterances is None else list(utterances)
    paths = [u.path for u in utterances]
    if len(set(paths)) != len(paths):
        raise ValueError(
            "utterance paths must be unique; two utterances would overwrite each other"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for u in utterances:
        wave = synthesize(u.spoken, u.voice, sample_rate)
        if u.snr_db is not None:
            wave = _add_noise(wave, u.snr_db, seeded_rng("noise", u.path))
        duration = synth.write_flac(out_dir / u.path, wave, sample_rate)
        rows.append((u.path, u.text, u.spoken, u.source, u.voice.speaker, f"{duration:.3f}"))
    manifest = out_dir / "manifest.csv"
    synth.write_csv(manifest, ("path", "text", "spoken", "source", "speaker", "duration"), rows)
    return manifest
