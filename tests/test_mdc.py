"""fetch_common_voice with MDC's real client (datacollective) against a stand-in MDC API on
127.0.0.1 (tests/mdc_standin.py), pointed to through MDC_API_URL."""

import io
import logging
import os
import sys
import tarfile
import traceback
import types

import pytest

if sys.version_info < (3, 11, 4):
    pytest.skip(
        f"datacollective needs Python 3.11.4+, this is {sys.version.split()[0]}",
        allow_module_level=True,
    )

import datacollective  # noqa: E402, F401  (installed with dlsaudio[dev]: fail loudly if not)
from mdc_standin import Dataset, StandInMDC  # noqa: E402
from test_data_asr import CV_HEADER, _tone, _write_tsv  # noqa: E402

from dlsaudio.data import MdcError, fetch_common_voice, load_asr, mdc_api_key_source  # noqa: E402
from dlsaudio.data import mdc as mdc_module  # noqa: E402
from dlsaudio.data.mdc_files import MARKER  # noqa: E402

KEY = "mdcfake-Zq8v3LkW-never-shown-7731"
SENTENCES = [f"Сүйлөм номер {i}." for i in range(12)]
TOP = "cv-corpus-25.0-2026-03-09"
KY25, KY24 = "cmky25scripted00000000001", "cmky24scripted00000000001"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> bytes:
    """A tiny Common Voice release as MDC serves it: a tar.gz of <top>/ky/ with real MP3s."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("release") / TOP / "ky"
    (folder / "clips").mkdir(parents=True)
    rows, durations = [], []
    for i, sentence in enumerate(SENTENCES):
        name = f"common_voice_ky_{i}.mp3"
        sf.write(str(folder / "clips" / name), _tone(48000, 1.5, i), 48000, format="MP3")
        rows.append([f"client{i % 3}", name, str(i), sentence, "2", "0", "ky"])
        durations.append([name, "1500"])
    _write_tsv(folder / "validated.tsv", CV_HEADER, rows)
    _write_tsv(folder / "train.tsv", CV_HEADER, rows[:8])
    _write_tsv(folder / "dev.tsv", CV_HEADER, rows[8:10])
    _write_tsv(folder / "test.tsv", CV_HEADER, rows[10:])
    _write_tsv(folder / "clip_durations.tsv", ["clip", "duration[ms]"], durations)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder.parent, arcname=TOP)
    return buffer.getvalue()


@pytest.fixture
def mdc(monkeypatch, tmp_path, release):
    def cv(version, locale, language, **kw):
        return Dataset(
            name=f"Common Voice Scripted Speech {version} - {language}",
            slug=f"mcv-scripted-{locale}-v{version}",
            locale=locale,
            archive=release,
            **kw,
        )

    flipped = bytearray(release)
    flipped[len(release) // 2] ^= 0xFF
    datasets = [
        cv("24.0", "ky", "Kyrgyz", id=KY24, created="2025-12-10T00:00:00.000Z"),
        cv("25.0", "ky", "Kyrgyz", id=KY25, created="2026-03-20T00:00:00.000Z"),
        cv("25.0", "kk", "Kazakh", id="cmkk25scripted00000000001"),
        cv("26.0", "ky", "Kyrgyz, re-cut", id="cmkycopy", organization="Someone Else"),
        Dataset(
            "cmkysps",
            "mcv-spontaneous-ky-v5.0",
            "Common Voice Spontaneous Speech 5.0 - Kyrgyz",
            "ky",
            release,
            created="2026-06-01T00:00:00.000Z",
        ),
        Dataset(
            "cmkyradio",
            "ky-radio-v30.0",
            "Kyrgyz Radio Speech 30.0",
            "ky",
            release,
            organization="Radio",
        ),
        Dataset(
            "cmcorrupt",
            "corrupt-transfer",
            "Corrupt transfer",
            "ky",
            release,
            served=bytes(flipped),
        ),
        Dataset(
            "cmnotar", "not-a-tar", "Not a tar", "ky", b"not a tar archive\n" * 50, checksum=None
        ),
        Dataset(
            "cmnosum",
            "corrupt-without-checksum",
            "Corrupt, no checksum",
            "ky",
            release,
            checksum=None,
            served=bytes(flipped),
        ),
        Dataset(
            "cmterms",
            "terms-not-accepted",
            "Terms not accepted",
            "ky",
            release,
            terms_accepted=False,
        ),
        Dataset("cmhuge", "too-big", "Too big", "ky", release, size=10**18),
    ]
    server = StandInMDC(KEY, datasets).start()
    monkeypatch.setenv("MDC_API_URL", server.api_url)
    monkeypatch.setenv("MDC_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)  # no .env above the test's folder
    yield server
    server.stop()


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "cv"


@pytest.fixture(autouse=True)
def key_never_shown(caplog, capfd, dest):
    """After every test: the key is in no output, log record or file written under dest."""
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    assert KEY not in out + err
    assert not [r for r in caplog.get_records("call") if KEY in r.getMessage()]
    written = [p for p in dest.rglob("*") if p.is_file()] if dest.exists() else []
    assert not [p for p in written if KEY.encode() in p.read_bytes()]


def _shown(capfd) -> str:
    out, err = capfd.readouterr()
    assert KEY not in out + err
    return out


def _error(excinfo) -> str:
    shown = "".join(traceback.format_exception(excinfo.value))
    assert KEY not in shown
    return str(excinfo.value)


def test_fetch_newest_release_then_reuse(mdc, dest, capfd):
    folder = fetch_common_voice("ky", dest)
    out = _shown(capfd)
    assert folder == dest / "ky"
    assert f"Common Voice Scripted Speech 25.0 - Kyrgyz (id {KY25})" in out
    assert [r.path for r in mdc.requests("POST", "/api")] == [f"/api/datasets/{KY25}/download"]
    assert sorted(p.name for p in dest.iterdir()) == ["ky"]  # archive deleted, no leftovers
    validated = load_asr(f"common_voice:{folder}", split="validated")
    assert validated.texts == SENTENCES and validated.speakers[:3] == [
        "client0",
        "client1",
        "client2",
    ]
    wave = validated[4]["wave"]
    assert abs(wave.numel() - 24000) < 1200 and wave.abs().max() > 0.1  # 1.5 s at 16 kHz
    assert (
        len(load_asr(f"common_voice:{folder}")) == 8
        and len(load_asr(f"common_voice:{folder}", split="test")) == 2
    )

    requests_before, inode = len(mdc.log), (folder / "validated.tsv").stat().st_ino
    assert fetch_common_voice("ky", dest) == folder
    out = _shown(capfd)
    assert out.count("\n") == 1 and "reusing" in out and KY25 in out
    assert len(mdc.log) == requests_before  # no catalog, no download request
    assert (folder / "validated.tsv").stat().st_ino == inode  # not unpacked again


def test_interrupted_download_resumes_with_a_range_request(mdc, dest, release, capfd):
    mdc.cut_next_download_at = len(release) * 3 // 4
    with pytest.raises(MdcError, match="interrupted") as excinfo:
        fetch_common_voice("ky", dest, dataset=KY25)
    message = _error(excinfo)
    part = dest / "mcv-scripted-ky-v25.0.tar.gz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(release) and str(part) in message and "resumes" in message
    assert not (dest / "ky").exists()

    folder = fetch_common_voice("ky", dest, dataset=KY25)
    transfers = mdc.requests("GET", f"/files/{KY25}")
    assert [t.range for t in transfers] == [None, f"bytes={kept}-"]
    assert len(load_asr(f"common_voice:{folder}", split="validated")) == len(SENTENCES)
    assert not part.exists()


def test_pinned_release_by_slug_and_what_the_folder_holds(mdc, dest, capfd):
    folder = fetch_common_voice("ky", dest, dataset="mcv-scripted-ky-v24.0")
    assert "Common Voice Scripted Speech 24.0 - Kyrgyz" in _shown(capfd)
    assert [r.path for r in mdc.requests("POST", "/api")] == [f"/api/datasets/{KY24}/download"]
    assert fetch_common_voice("ky", dest, dataset=KY24) == folder
    assert "reusing" in _shown(capfd)
    with pytest.raises(
        MdcError, match="already holds Common Voice Scripted Speech 24.0"
    ) as excinfo:
        fetch_common_voice("ky", dest, dataset=KY25)
    _error(excinfo)


def test_no_key_says_how_to_get_one(mdc, dest, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    assert mdc_api_key_source() is None
    with pytest.raises(MdcError, match="no MDC API key") as excinfo:
        fetch_common_voice("ky", dest)
    message = _error(excinfo)
    assert "accept its terms" in message and mdc_module.KEY_PAGE in message
    assert "Colab" in message and "MDC_API_KEY" in message
    assert not mdc.requests("POST", "/api")


def test_key_from_a_dotenv_file(mdc, dest, monkeypatch, tmp_path):
    monkeypatch.delenv("MDC_API_KEY")
    (tmp_path / ".env").write_text(f"MDC_API_KEY={KEY}\n")
    assert ".env" in mdc_api_key_source()
    assert fetch_common_voice("ky", dest).is_dir()
    assert "MDC_API_KEY" not in os.environ  # handed to the client for the download only


def _colab(monkeypatch, get):
    userdata = types.ModuleType("google.colab.userdata")
    userdata.SecretNotFoundError = type("SecretNotFoundError", (Exception,), {})
    userdata.NotebookAccessError = type("NotebookAccessError", (Exception,), {})
    userdata.get = lambda name: get(userdata, name)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def test_key_from_a_colab_secret(mdc, dest, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    _colab(monkeypatch, lambda userdata, name: {"MDC_API_KEY": f"{KEY}\n"}[name])
    assert mdc_api_key_source() == "the Colab secret MDC_API_KEY"
    assert fetch_common_voice("ky", dest).is_dir()
    assert "MDC_API_KEY" not in os.environ


@pytest.mark.parametrize("refusal", ["SecretNotFoundError", "NotebookAccessError"])
def test_a_missing_or_refused_colab_secret_is_no_key(mdc, dest, monkeypatch, refusal):
    def get(userdata, name):
        raise getattr(userdata, refusal)(name)

    monkeypatch.delenv("MDC_API_KEY")
    _colab(monkeypatch, get)
    assert mdc_api_key_source() is None
    with pytest.raises(MdcError, match="no MDC API key"):
        fetch_common_voice("ky", dest)


def test_a_key_with_a_line_break_inside_is_refused_before_any_request(mdc, dest, monkeypatch):
    monkeypatch.setenv("MDC_API_KEY", f"{KEY[:12]}\n{KEY[12:]}")
    with pytest.raises(MdcError, match="line breaks") as excinfo:
        fetch_common_voice("ky", dest)
    message = _error(excinfo)
    assert KEY[:12] not in message and KEY[12:] not in message
    assert not mdc.requests("POST", "/api")


def test_a_refused_key_is_not_echoed(mdc, dest):
    mdc.key = "the-key-mdc-accepts"
    with pytest.raises(MdcError, match="refused the API key") as excinfo:
        fetch_common_voice("ky", dest)
    assert "401" in _error(excinfo)


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"dataset": "terms-not-accepted"}, MdcError, "denied access.*terms"),
        ({"dataset": "no-such-dataset"}, MdcError, "not found in the MDC catalog.*404"),
        (
            {"locale": "xx"},
            MdcError,
            "no Common Voice Scripted Speech release for locale='xx'",
        ),
        ({"dataset": "mcv-scripted-kk-v25.0"}, ValueError, "is locale 'kk', not locale='ky'"),
        ({"locale": "../ky"}, ValueError, "expected a Common Voice locale code"),
    ],
)
def test_errors_that_say_what_to_do(mdc, dest, kwargs, error, phrase):
    with pytest.raises(error, match=phrase) as excinfo:
        fetch_common_voice(dest=dest, **{"locale": "ky", **kwargs})
    _error(excinfo)
    assert not mdc.requests("GET", "/files")


def test_not_enough_disk_space_stops_before_downloading(mdc, dest):
    with pytest.raises(MdcError, match="not enough free disk space") as excinfo:
        fetch_common_voice("ky", dest, dataset="too-big")
    assert str(dest) in _error(excinfo) and "1000000000000000000" in str(excinfo.value)
    assert not mdc.requests("POST", "/api")


@pytest.mark.parametrize(
    ("dataset", "phrase"),
    [
        ("corrupt-transfer", "corrupt: its SHA-256"),
        ("not-a-tar", "not a readable tar.gz"),
        ("corrupt-without-checksum", "not a readable tar.gz"),  # gzip's own CRC-32 catches it
    ],
)
def test_a_corrupt_archive_is_deleted_and_nothing_unpacked(mdc, dest, dataset, phrase, capfd):
    with pytest.raises(MdcError, match=phrase) as excinfo:
        fetch_common_voice("ky", dest, dataset=dataset)
    assert "deleted it" in _error(excinfo)
    assert list(dest.iterdir()) == []  # no archive, no half-unpacked folder
    checked = "the catalog gives no SHA-256" not in _shown(capfd)
    assert checked == (mdc.find(dataset).checksum is not None)


def test_an_interrupted_unpack_is_redone_and_a_foreign_folder_is_left_alone(mdc, dest):
    leftover = dest / ".ky.unpacking" / TOP / "ky"
    leftover.mkdir(parents=True)
    (leftover / "validated.tsv").write_text("half\n")
    folder = fetch_common_voice("ky", dest)
    assert not (dest / ".ky.unpacking").exists()
    assert len(load_asr(f"common_voice:{folder}", split="validated")) == len(SENTENCES)

    (folder / MARKER).unlink()
    with pytest.raises(MdcError, match="not unpacked by fetch_common_voice"):
        fetch_common_voice("ky", dest)


def test_without_the_client_it_says_what_to_install(mdc, dest, monkeypatch):
    monkeypatch.setitem(sys.modules, "datacollective", None)
    with pytest.raises(MdcError, match=r'pip install "dlsaudio\[mdc\]".*Python 3\.11\.4\+'):
        fetch_common_voice("ky", dest)


def test_command_line(mdc, dest, capfd, monkeypatch):
    assert mdc_module.main(["--locale", "ky", "--dest", str(dest)]) == 0
    out = _shown(capfd)
    assert f"{dest / 'ky'}\n" in out and f'load_asr("common_voice:{dest / "ky"}")' in out
    monkeypatch.delenv("MDC_API_KEY")
    assert mdc_module.main(["--dest", str(dest / "other")]) == 1
    out, err = capfd.readouterr()
    assert err.startswith("error: no MDC API key") and "Traceback" not in err


def test_default_dest(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mdc_module.default_dest() == tmp_path / "data" / "common_voice"
    _colab(monkeypatch, lambda userdata, name: None)
    monkeypatch.setattr(mdc_module, "DRIVE_ROOT", tmp_path / "no-drive")
    assert mdc_module.default_dest() == mdc_module.COMMON_VOICE_DESTS["colab"]
    monkeypatch.setattr(mdc_module, "DRIVE_ROOT", tmp_path)
    assert mdc_module.default_dest() == mdc_module.COMMON_VOICE_DESTS["drive"]


def test_asr_source_with_a_key_downloads_common_voice_once(mdc, dest, monkeypatch, capfd):
    from dlsaudio.data import asr_source

    for var in ("DLSAUDIO_ASR", "DLSAUDIO_COMMON_VOICE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DLSAUDIO_SMOKE", "0")
    monkeypatch.setenv("HOME", str(dest))  # the default folder off Colab is ~/data/common_voice
    source = asr_source()
    folder = dest / "data" / "common_voice" / "ky"
    assert source == f"common_voice:{folder}"
    out = _shown(capfd)
    assert "the environment variable MDC_API_KEY" in out and "SYNTHETIC" not in out
    assert len(load_asr(source, split="test")) > 0
    assert asr_source() == source  # a second notebook run reuses the unpacked release
    assert "nothing downloaded" in _shown(capfd)
