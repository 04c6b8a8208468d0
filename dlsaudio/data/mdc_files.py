"""The local half of fetching a Common Voice release from Mozilla Data Collective.

Free disk space before a download, a progress bar over the file the client writes, the
archive checked against the catalog's size and SHA-256, and an unpack that happens once: into
a hidden sibling folder, renamed into place only when complete and marked with
:data:`MARKER`, so a half-unpacked release is never used and a complete one is reused.
:mod:`dlsaudio.data.mdc` talks to MDC and calls these.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import re
import shutil
import tarfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from dlsaudio.data.common_voice import _find_common_voice

__all__ = [
    "MARKER",
    "UNPACKED_PER_ARCHIVE_BYTE",
    "MdcError",
    "check_space",
    "follow_file",
    "reuse_release",
    "unpack_release",
    "verify_archive",
]

UNPACKED_PER_ARCHIVE_BYTE = 1.15
"""Unpacked size per archive byte. The clips are MP3, which gzip does not shrink, so a release
unpacks to about its archive's size; 15% more covers the tables (text, which gzip shrinks
about 4x) and the rounding of tens of thousands of small files up to whole disk blocks."""
MARKER = ".mdc-release.json"
"""Written into ``<dest>/<locale>`` last, after a complete unpack: which release it holds."""


class MdcError(RuntimeError):
    """Fetching from Mozilla Data Collective failed; the message says what to do."""


def reuse_release(folder: Path, dataset: str | None) -> bool:
    """True when ``folder`` holds a complete release to reuse (said in one line); False when absent.

    Args:
        folder: ``<dest>/<locale>``.
        dataset: the pinned dataset id or slug, or None for whichever release it holds.

    Raises:
        MdcError: ``folder`` exists without :data:`MARKER` (not unpacked here, maybe
            incomplete), or holds another release than the pinned one.
    """
    marker = folder / MARKER
    if not marker.is_file():
        if folder.exists():
            raise MdcError(
                f"{folder} exists but was not unpacked by fetch_common_voice (no {MARKER}): "
                f"load it with load_asr('common_voice:{folder}') if it is complete, or move it "
                "away (or pass another dest) to download a release"
            )
        return False
    held = json.loads(marker.read_text(encoding="utf-8"))
    if dataset is not None and dataset not in (held["id"], held.get("slug")):
        raise MdcError(
            f"{folder} already holds {held['name']} (id {held['id']}), not dataset={dataset!r}: "
            "pass another dest, or delete that folder to replace it"
        )
    print(f"common_voice: reusing {folder} ({held['name']}, id {held['id']}); nothing downloaded")
    return True


def check_space(dest: Path, size: int, to_download: int) -> None:
    """Check that ``dest`` has room for the rest of the download and the unpacked release.

    Args:
        dest: the folder the archive and the release go to (it exists).
        size: the archive's size in bytes (0: unknown, nothing is checked).
        to_download: bytes still to download (the archive minus a kept partial file).

    Raises:
        MdcError: fewer free bytes than ``to_download + size * UNPACKED_PER_ARCHIVE_BYTE``.
    """
    if not size:
        print(f"common_voice: the catalog gives no archive size; free space in {dest} unchecked")
        return
    need = to_download + math.ceil(size * UNPACKED_PER_ARCHIVE_BYTE)
    free = shutil.disk_usage(dest).free
    if need > free:
        raise MdcError(
            f"not enough free disk space in {dest}: need about {need} bytes ({need / 1e9:.2f} GB: "
            f"{to_download} to download + {size} x {UNPACKED_PER_ARCHIVE_BYTE} unpacked), "
            f"{free} bytes ({free / 1e9:.2f} GB) are free; free some space or pass another dest"
        )


@contextlib.contextmanager
def follow_file(part: Path, done: Path, total: int, desc: str) -> Iterator[None]:
    """A tqdm bar over the size of ``part``, which another writer grows, until the block ends.

    Args:
        part: the file being written (the client's ``<archive>.part``).
        done: what ``part`` is renamed to when complete; its size ends the bar.
        total: the expected size in bytes (0: unknown).
        desc: the bar's label.
    """
    size = part.stat().st_size if part.is_file() else 0
    bar = tqdm(total=total or None, initial=size, unit="B", unit_scale=True, desc=desc)
    stop = threading.Event()

    def follow():
        while not stop.wait(0.5):
            with contextlib.suppress(OSError):
                bar.update(part.stat().st_size - bar.n)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for path in (done, part):
            if path.is_file():
                bar.update(path.stat().st_size - bar.n)
                break
        bar.close()


def verify_archive(archive: Path, details) -> None:
    """Check the archive's size and, when the catalog gives one, its SHA-256; delete it if bad.

    Args:
        archive: the downloaded ``.tar.gz``.
        details: the catalog's entry (``datacollective.DatasetDetails``): ``sizeBytes``,
            ``checksum`` (SHA-256 in hex).

    Raises:
        MdcError: the size or the SHA-256 differs (the archive is deleted first).
    """
    size, actual = int(details.sizeBytes or 0), archive.stat().st_size
    checksum = (details.checksum or "").lower()
    problem = None
    if size and actual != size:
        problem = f"it has {actual} bytes, the catalog says {size}"
    elif re.fullmatch(r"[0-9a-f]{64}", checksum):
        digest = hashlib.sha256()
        with (
            open(archive, "rb") as f,
            tqdm(total=actual, unit="B", unit_scale=True, desc="verifying") as bar,
        ):
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                bar.update(len(block))
        if digest.hexdigest() != checksum:
            problem = f"its SHA-256 is {digest.hexdigest()}, the catalog says {checksum}"
    else:
        print(
            "common_voice: the catalog gives no SHA-256 for this archive; only its size is checked"
        )
    if problem:
        archive.unlink()
        raise MdcError(
            f"{archive} is corrupt: {problem}; deleted it: run fetch_common_voice again to "
            "download it afresh"
        )


def unpack_release(archive: Path, details, folder: Path) -> None:
    """Unpack into a hidden sibling of ``folder``, then move the language folder into place.

    The language folder is marked with :data:`MARKER` and renamed to ``folder`` only after
    every member is out and the gzip stream's own CRC-32 and length have been checked; an
    unpack that stops for any reason leaves nothing behind but the archive.

    Args:
        archive: the verified ``.tar.gz``.
        details: the catalog's entry for it; ``id``, ``slug``, ``name``, ``locale`` and
            ``checksum`` go into the marker.
        folder: ``<dest>/<locale>``, which must not exist yet.

    Raises:
        MdcError: the archive is not a readable tar.gz (it is deleted), or holds no single
            Common Voice language folder (it is kept).
    """
    work = folder.with_name(f".{folder.name}.unpacking")
    shutil.rmtree(work, ignore_errors=True)  # left by an interrupted unpack
    work.mkdir(parents=True)
    try:
        with (
            open(archive, "rb") as raw,
            tqdm(total=archive.stat().st_size, unit="B", unit_scale=True, desc="unpacking") as bar,
            gzip.GzipFile(fileobj=raw) as gz,
            tarfile.open(fileobj=gz, mode="r|") as tar,
        ):

            def members():
                for member in tar:
                    yield member
                    bar.update(raw.tell() - bar.n)

            tar.extractall(work, members=members(), filter="data")
            while gz.read(1 << 20):  # to the end, where GzipFile checks the CRC-32 and length
                bar.update(raw.tell() - bar.n)
        try:
            language = _find_common_voice(work)
        except (FileNotFoundError, ValueError) as err:
            raise MdcError(
                f"{archive} holds no single Common Voice language folder ({err}); is "
                f"{details.name} (id {details.id}) a Common Voice Scripted Speech release?"
            ) from None
        record = {k: getattr(details, k) for k in ("id", "slug", "name", "locale", "checksum")}
        (language / MARKER).write_text(json.dumps(record, indent=1), encoding="utf-8")
        language.rename(folder)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        archive.unlink()
        raise MdcError(
            f"{archive} is not a readable tar.gz ({type(err).__name__}: {err}); deleted it, "
            "nothing was unpacked: run fetch_common_voice again to download it afresh"
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
