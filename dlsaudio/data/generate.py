"""Synthetic speech for the bundled sample, made with the espeak-ng synthesiser.

The package carries two small data sets so that every notebook and test runs offline:

* ``digits/``: English spoken digits 0-9 from :data:`DIGIT_SPEAKERS` (voice, variant, pitch
  and rate), :data:`DIGIT_TAKES` takes each, named ``<digit>_<speaker>_<take>.flac`` as in the
  Free Spoken Digit Dataset and AudioMNIST, with ``digits/manifest.csv``
  (``path,label,speaker,take,voice``).
* ``asr/``: a Kyrgyz ASR sample in three sources of unequal size, with ``asr/manifest.csv``
  (``path,text,spoken,source,speaker,duration``):

  - ``ky_tts``: Kyrgyz sentences, numbers read through :func:`dlsaudio.asr.text.verbalize_numbers`
    and everyday phrases;
  - ``ky_tts_noisy``: noisy copies of some ``ky_tts`` utterances (white noise at
    :data:`NOISY_SNR_DB` dB SNR, seeded);
  - ``kk_tts``: Kazakh sentences, the related language Whisper knows.

  ``text`` is what a person would write (``"Мен 25 жаштамын."``, digits kept); ``spoken`` is
  what was synthesised (``"Мен жыйырма беш жаштамын."``). A normaliser that verbalises numbers
  maps both to the same string.

Every parameter of every file comes from a random generator seeded by the file's own name, so
the same command writes the same audio, and one file can be regenerated on its own. Synthetic
speech is itself a topic of module 11: call :func:`synthesize` or :func:`generate_kyrgyz` with
your own sentences and voices to make more.

Command line::

    python -m dlsaudio.data.generate --out DIR        # default: the package's sample folder
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from dlsaudio.asr.text import verbalize_numbers
from dlsaudio.audio import trim_silence
from dlsaudio.data.paths import SAMPLE_DIR

__all__ = [
    "DIGIT_SPEAKERS",
    "DIGIT_TAKES",
    "DIGIT_WORDS",
    "ESPEAK_INSTALL_HINT",
    "KAZAKH_SENTENCES",
    "KAZAKH_SPEAKERS",
    "KYRGYZ_SENTENCES",
    "KYRGYZ_SPEAKERS",
    "BITS",
    "NOISY_SNR_DB",
    "SAMPLE_DIR",
    "SAMPLE_RATE",
    "EspeakNotFoundError",
    "Utterance",
    "Voice",
    "asr_utterances",
    "espeak_version",
    "generate_all",
    "generate_digits",
    "generate_kyrgyz",
    "synthesize",
]

SAMPLE_RATE = 16000
NOISY_SNR_DB = 10.0
BITS = 12
"""Significant bits stored per sample: quantisation noise at about -72 dBFS, far below the
synthesiser's own noise, and FLAC files 40 % smaller than at 16 bits."""
ESPEAK_INSTALL_HINT = (
    "espeak-ng is not installed; install it with `apt-get install espeak-ng` "
    "(Debian/Ubuntu/Colab: `!apt-get -qq install espeak-ng`) or `brew install espeak-ng` (macOS)"
)


class EspeakNotFoundError(RuntimeError):
    """The ``espeak-ng`` program is not on the PATH."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice with a variant, a pitch and a rate.

    Attributes:
        speaker: the speaker id used in file names and manifests (letters and digits only).
        voice: espeak-ng voice and variant, e.g. ``"en-us+m3"``, ``"ky+f2"``.
        pitch: base pitch, 0 to 99 (espeak-ng ``-p``).
        rate: speaking rate in words per minute, 80 to 450 (espeak-ng ``-s``).
        amplitude: loudness, 0 to 200 (espeak-ng ``-a``).
    """

    speaker: str
    voice: str
    pitch: int = 50
    rate: int = 160
    amplitude: int = 100

    def __post_init__(self) -> None:
        if not self.speaker.isalnum():
            raise ValueError(
                f"speaker must be letters and digits only (it goes into file names), got {self.speaker!r}"
            )
        if not 0 <= self.pitch <= 99:
            raise ValueError(f"pitch must be in 0..99, got {self.pitch}")
        if not 80 <= self.rate <= 450:
            raise ValueError(f"rate must be in 80..450 words per minute, got {self.rate}")
        if not 0 <= self.amplitude <= 200:
            raise ValueError(f"amplitude must be in 0..200, got {self.amplitude}")

    def args(self) -> list[str]:
        """The espeak-ng command-line options for this voice."""
        return [
            "-v",
            self.voice,
            "-p",
            str(self.pitch),
            "-s",
            str(self.rate),
            "-a",
            str(self.amplitude),
        ]

    def jittered(self, rng: np.random.Generator) -> Voice:
        """A take of this voice: pitch +-6, rate +-10 % and amplitude +-25 % drawn from ``rng``."""
        return replace(
            self,
            pitch=int(np.clip(self.pitch + rng.integers(-6, 7), 0, 99)),
            rate=int(np.clip(round(self.rate * rng.uniform(0.9, 1.1)), 80, 450)),
            amplitude=int(np.clip(round(self.amplitude * rng.uniform(0.75, 1.25)), 0, 200)),
        )


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TAKES = 3


def _voices(table: str) -> tuple[Voice, ...]:
    """Voices from a table with one ``speaker voice pitch rate`` row per line."""
    rows = (line.split() for line in table.strip().splitlines())
    return tuple(Voice(name, voice, int(pitch), int(rate)) for name, voice, pitch, rate in rows)


#  speaker  espeak-ng voice       pitch  rate
DIGIT_SPEAKERS = _voices("""
    usm1    en-us+m1                40   150
    usf2    en-us+f2                60   165
    gbm3    en-gb+m3                35   140
    scof4   en-gb-scotland+f4       65   155
    carm4   en-029+m4               45   170
    nycf1   en-us-nyc+f1            70   160
    rpm7    en-gb-x-rp+m7           30   135
    lanf5   en-gb-x-gbclan+f5       55   175
    klatt   en-us+klatt             50   150
    croak   en+croak                25   145
    andy    en-us+Andy              50   180
    wmdf3   en-gb-x-gbcwmd+f3       75   150
    usm6    en-us+m6                20   130
    annie   en+Annie                60   190
""")
KYRGYZ_SPEAKERS = _voices("""
    kym1    ky+m1                   40   150
    kyf2    ky+f2                   62   145
    kym3    ky+m3                   30   140
    kyf4    ky+f4                   70   155
    kym7    ky+m7                   45   135
""")
KAZAKH_SPEAKERS = _voices("""
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


def _rng(*keys: object) -> np.random.Generator:
    """A generator seeded by the keys' text, stable across runs and platforms."""
    return np.random.default_rng(zlib.crc32("/".join(map(str, keys)).encode("utf-8")))


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakNotFoundError(ESPEAK_INSTALL_HINT)
    return exe


def espeak_version() -> str:
    """The first line of ``espeak-ng --version``, e.g. ``"eSpeak NG text-to-speech: 1.51 ..."``.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed (the message says how to install it).
    """
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split()[:4])


def synthesize(text: str, voice: Voice, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Speak ``text`` with espeak-ng and return the trimmed waveform.

    Args:
        text: what to say (UTF-8; numbers are read by espeak-ng's own rules, so verbalise them
            first when the spelling matters).
        voice: the speaker.
        sample_rate: the rate of the returned waveform (espeak-ng speaks at 22050 Hz).

    Returns:
        ``(time,)`` float32 waveform with leading and trailing silence cut to 50 ms.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        ValueError: ``text`` is empty, or espeak-ng fails or returns silence.
    """
    if not text.strip():
        raise ValueError("text must contain something to say, got an empty string")
    cmd = [_espeak(), *voice.args(), "-b", "1", "--stdout", text]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise ValueError(
            f"espeak-ng failed for voice {voice.voice!r} ({result.stderr.decode(errors='replace').strip()}); "
            "list the voices with `espeak-ng --voices` and the variants with `espeak-ng --voices=variant`"
        )
    data, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    wave = trim_silence(torch.from_numpy(data), threshold_db=-45.0, frame=int(0.05 * rate))
    if wave.numel() == 0:
        raise ValueError(f"espeak-ng returned silence for {text!r} with voice {voice.voice!r}")
    if rate != sample_rate:
        wave = torchaudio.functional.resample(wave, rate, sample_rate)
    return wave.contiguous()


def _write_flac(path: Path, wave: torch.Tensor, sample_rate: int) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = 2 ** (BITS - 1)
    data = np.clip(np.round(wave.numpy() * steps), -steps, steps - 1) / steps
    sf.write(str(path), data, sample_rate, format="FLAC", subtype="PCM_16", compression_level=1.0)
    return len(data) / sample_rate


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate_digits(
    out_dir: str | Path,
    speakers: Sequence[Voice] = DIGIT_SPEAKERS,
    takes: int = DIGIT_TAKES,
    digits: Iterable[int] = range(10),
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write spoken digits ``<digit>_<speaker>_<take>.flac`` and ``manifest.csv`` into ``out_dir``.

    Each take jitters pitch, rate and amplitude (see :meth:`Voice.jittered`) with a generator
    seeded by the file name, so any subset reproduces the same files.

    Args:
        out_dir: the folder to write (created if needed).
        speakers: the synthetic speakers.
        takes: takes per digit and speaker.
        digits: which digits to say.
        sample_rate: the rate of the written FLAC files.

    Returns:
        The path of ``manifest.csv`` (``path,label,speaker,take,voice``, paths relative to it).

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        ValueError: ``takes`` < 1, a digit outside 0-9, or duplicate speaker ids.
    """
    if takes < 1:
        raise ValueError(f"takes must be at least 1, got {takes}")
    digits = list(digits)
    if any(d not in range(10) for d in digits):
        raise ValueError(f"digits must be in 0..9, got {digits}")
    names = [v.speaker for v in speakers]
    if len(set(names)) != len(names):
        raise ValueError(f"speaker ids must be unique, got {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for voice in speakers:
        for digit in digits:
            for take in range(takes):
                name = f"{digit}_{voice.speaker}_{take}.flac"
                take_voice = voice.jittered(_rng("digits", name))
                wave = synthesize(DIGIT_WORDS[digit], take_voice, sample_rate)
                _write_flac(out_dir / name, wave, sample_rate)
                rows.append((name, digit, voice.speaker, take, " ".join(take_voice.args())))
    manifest = out_dir / "manifest.csv"
    _write_csv(manifest, ("path", "label", "speaker", "take", "voice"), rows)
    return manifest


def asr_utterances() -> list[Utterance]:
    """The utterances of the bundled ASR sample, in manifest order.

    Returns:
        ``ky_tts`` (number readings and everyday sentences), then ``ky_tts_noisy`` (noisy copies
        of a seeded choice of ``ky_tts``), then ``kk_tts``.
    """
    ky_texts = []
    for template, low, high in KYRGYZ_NUMBER_TEMPLATES:
        rng = _rng("ky_numbers", template)
        for n in rng.integers(low, high + 1, size=KYRGYZ_NUMBER_READINGS).tolist():
            ky_texts.append(template.format(n))
    ky_texts += KYRGYZ_SENTENCES
    utterances = []
    for i, text in enumerate(ky_texts):
        voice = KYRGYZ_SPEAKERS[i % len(KYRGYZ_SPEAKERS)]
        voice = voice.jittered(_rng("ky_tts", i))
        utterances.append(Utterance(f"ky_tts/ky_tts_{i:03d}.flac", text, "ky_tts", voice))
    picks = _rng("ky_tts_noisy").choice(len(utterances), size=NOISY_COUNT, replace=False)
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
        voice = KAZAKH_SPEAKERS[i % len(KAZAKH_SPEAKERS)].jittered(_rng("kk_tts", i))
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
            wave = _add_noise(wave, u.snr_db, _rng("noise", u.path))
        duration = _write_flac(out_dir / u.path, wave, sample_rate)
        rows.append((u.path, u.text, u.spoken, u.source, u.voice.speaker, f"{duration:.3f}"))
    manifest = out_dir / "manifest.csv"
    _write_csv(manifest, ("path", "text", "spoken", "source", "speaker", "duration"), rows)
    return manifest


def _remove_listed(manifest: Path) -> None:
    """Delete the files an earlier run listed, so renamed speakers leave no stale files."""
    if not manifest.is_file():
        return
    with open(manifest, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            (manifest.parent / row["path"]).unlink(missing_ok=True)
    manifest.unlink()


def generate_all(out_dir: str | Path = SAMPLE_DIR) -> dict[str, Path]:
    """Write the whole bundled sample: ``digits/`` and ``asr/`` under ``out_dir``.

    Files listed by earlier manifests in ``out_dir`` are removed first. Also writes
    ``generated_with.txt`` with the espeak-ng version: other versions of the synthesiser speak
    slightly differently.

    Returns:
        ``{"digits": manifest path, "asr": manifest path}``.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
    """
    out_dir = Path(out_dir)
    for manifest in (out_dir / "digits" / "manifest.csv", out_dir / "asr" / "manifest.csv"):
        _remove_listed(manifest)
    manifests = {
        "digits": generate_digits(out_dir / "digits"),
        "asr": generate_kyrgyz(out_dir / "asr"),
    }
    (out_dir / "generated_with.txt").write_text(espeak_version() + "\n", encoding="utf-8")
    return manifests


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.data.generate",
        description="Synthesise the bundled spoken-digit and Kyrgyz ASR samples with espeak-ng.",
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder")
    args = parser.parse_args(argv)
    try:
        manifests = generate_all(args.out)
    except EspeakNotFoundError as err:
        parser.exit(1, f"error: {err}\n")
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
