"""Common Voice from Mozilla Data Collective (MDC), fetched with MDC's own client.

:func:`fetch_common_voice` finds a Common Voice Scripted Speech release in MDC's public
catalog, downloads it with ``datacollective`` (which resumes an interrupted download),
verifies the archive and unpacks it once into ``<dest>/<locale>``, the folder
``load_asr("common_voice:PATH")`` reads. A download needs an MDC API key (``MDC_API_KEY``
in the environment or a ``.env`` file, or a Colab secret of that name); the key is handed to
the client through the environment and never printed or written anywhere.

Command line: ``python -m dlsaudio.data.mdc --locale ky --dest PATH [--dataset ID]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from dlsaudio.data.common_voice import COMMON_VOICE_DESTS, MDC_URL
from dlsaudio.data.mdc_files import (
    MdcError,
    check_space,
    follow_file,
    reuse_release,
    unpack_release,
    verify_archive,
)
from dlsaudio.smoke import DRIVE_ROOT, on_colab

__all__ = [
    "COMMON_VOICE_DESTS",
    "MDC_KEY_ENV",
    "MdcError",
    "default_dest",
    "fetch_common_voice",
    "mdc_api_key_source",
]

MDC_KEY_ENV = "MDC_API_KEY"
MDC_SITE = MDC_URL  # the site the client itself talks to
KEY_PAGE = f"{MDC_SITE}/profile/credentials"
INSTALL_HINT = (
    'pip install "dlsaudio[mdc]" (or pip install datacollective); '
    "MDC's client needs Python 3.11.4+"
)


def _no_key_message(page: str | None) -> str:
    return (
        "no MDC API key, and downloading Common Voice needs one: 1) create an account on "
        f"{MDC_SITE}; 2) on the dataset's page ({page or MDC_SITE + '/datasets'}) accept its "
        f"terms; 3) create an API key on {KEY_PAGE}; 4) set the environment variable "
        f"{MDC_KEY_ENV} (or write {MDC_KEY_ENV}=... into a .env file), or on Colab add a secret "
        f"named {MDC_KEY_ENV} (key icon in the left panel) and grant this notebook access"
    )


def default_dest() -> Path:
    """The folder :func:`fetch_common_voice` uses without ``dest`` (see :data:`COMMON_VOICE_DESTS`)."""
    if on_colab():
        return COMMON_VOICE_DESTS["drive" if DRIVE_ROOT.is_dir() else "colab"]
    return COMMON_VOICE_DESTS["local"].expanduser()


def _colab_secret() -> str | None:
    if not on_colab():
        return None
    try:
        from google.colab import userdata
    except ImportError:
        return None
    names = ("SecretNotFoundError", "NotebookAccessError", "TimeoutException")
    no_key = tuple(e for e in (getattr(userdata, n, None) for n in names) if isinstance(e, type))
    try:
        return (userdata.get(MDC_KEY_ENV) or "").strip() or None
    except no_key:
        return None


def _find_key() -> tuple[str, str] | None:
    """(key, where it was found), or None."""
    key = os.environ.get(MDC_KEY_ENV, "").strip()
    if key:
        return key, f"the environment variable {MDC_KEY_ENV}"
    with contextlib.suppress(ImportError):
        import dotenv

        path = dotenv.find_dotenv(usecwd=True)
        key = (dotenv.dotenv_values(path).get(MDC_KEY_ENV) or "").strip() if path else ""
        if key:
            return key, f"{MDC_KEY_ENV} in {path}"
    key = _colab_secret()
    return (key, f"the Colab secret {MDC_KEY_ENV}") if key else None


def mdc_api_key_source() -> str | None:
    """Where an MDC API key is available, without revealing it; None when there is none.

    Looks at the environment variable ``MDC_API_KEY``, a ``.env`` file (in this folder or one
    above it) and, on Colab, the notebook secret ``MDC_API_KEY`` (Colab may ask to grant the
    notebook access; a missing or refused secret counts as no key).
    """
    found = _find_key()
    return found[1] if found else None


@contextlib.contextmanager
def _key_for_client(page: str | None) -> Iterator[str]:
    """Hand the key to the client through ``MDC_API_KEY`` for the block, then restore it."""
    found = _find_key()
    if found is None:
        raise MdcError(_no_key_message(page))
    if not re.fullmatch(r"[!-~]+", found[0]):  # else HTTP libraries quote it in their errors
        raise MdcError(
            f"the MDC API key in {found[1]} has spaces, line breaks or non-ASCII characters "
            f"inside; copy it again from {KEY_PAGE}"
        )
    before = os.environ.get(MDC_KEY_ENV)
    os.environ[MDC_KEY_ENV] = found[0]
    try:
        yield found[0]
    finally:
        if before is None:
            os.environ.pop(MDC_KEY_ENV, None)
        else:
            os.environ[MDC_KEY_ENV] = before


def _client():
    try:
        import datacollective
    except ImportError:
        raise MdcError(
            f"downloading from Mozilla Data Collective needs its client: {INSTALL_HINT}"
        ) from None
    return datacollective


def _mdc_call(what: str, key: str | None, call, *args, **kwargs):
    """``call(*args, **kwargs)``, with the client's errors turned into :class:`MdcError`."""
    import requests
    from datacollective.errors import AuthenticationError, RateLimitError, ResourceRemovedError

    try:
        return call(*args, **kwargs)
    except AuthenticationError:
        message = (
            f"MDC refused the API key while {what} (HTTP 401: invalid, expired or revoked); "
            f"create a new key on {KEY_PAGE} and set it as {MDC_KEY_ENV} (on Colab: update "
            f"the secret {MDC_KEY_ENV})"
        )
    except ResourceRemovedError as err:
        message = f"MDC no longer serves it while {what} (HTTP 410): {err}"
    except FileNotFoundError as err:
        message = (
            f"not found in the MDC catalog while {what} (HTTP 404): {err}; pass an id or slug "
            f"from {MDC_SITE}/datasets, or dataset=None for the newest Common Voice release"
        )
    except PermissionError as err:
        message = (
            f"MDC denied access while {what} (HTTP 403): {err}; sign in with the account the "
            "key belongs to, accept the dataset's terms on its page, then run again"
        )
    except RateLimitError as err:
        message = f"MDC's rate limit while {what}: {err}"
    except requests.RequestException as err:
        message = f"could not talk to MDC while {what}: {err}; check the connection and rerun"
    if key:
        message = message.replace(key, "***")
    raise MdcError(message) from None


def _version(item) -> tuple:
    text = f"{item.name or ''} {item.slug or ''}"
    found = re.search(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else (-1, -1)


def _is_scripted_release(item) -> bool:
    """A Common Voice Scripted Speech release, published by Common Voice itself (not a copy)."""
    text = " ".join(filter(None, (item.name, item.slug, item.shortDescription))).lower()
    words = set(re.split(r"[^a-z0-9]+", (item.slug or "").lower()))
    common_voice = "common voice" in text or "common-voice" in text or "mcv" in words
    other_kind = "spontaneous" in text or "code switching" in text or "sps" in words
    org = (item.organization.name or "") if item.organization else ""
    by_mozilla = not org or "common voice" in org.lower() or "mozilla" in org.lower()
    return common_voice and not other_kind and by_mozilla


def _catalog(client, **filters) -> list:
    items, page = [], 1
    while page <= 20:
        found = _mdc_call(
            "searching the catalog",
            None,
            client.list_datasets,
            results_per_page=100,
            page_number=page,
            **filters,
        )
        items += found.items
        if not found.items or len(items) >= found.total:
            return items
        page += 1
    return items


def _newest_release(client, locale: str):
    items = _catalog(client, locale=locale)
    releases = [
        i for i in items if (i.locale or "").lower() == locale.lower() and _is_scripted_release(i)
    ]
    if not releases:
        others = _catalog(client, query="Common Voice")
        locales = sorted({i.locale for i in others if i.locale and _is_scripted_release(i)})
        raise MdcError(
            f"the MDC catalog has no Common Voice Scripted Speech release for locale={locale!r} "
            f"({len(items)} other datasets for it); releases found for the locales "
            f"{locales or 'none'}: pass one of them as locale, or pin a dataset id or slug"
        )
    newest = max(releases, key=lambda i: (_version(i), i.createdAt or ""))
    print(
        f"common_voice: newest release for {locale!r} in the MDC catalog: {newest.name} (id {newest.id})"
    )
    return newest


def _download(client, details, dest: Path) -> Path:
    name = details.filename or ""
    if Path(name).name != name or not name.endswith((".tar.gz", ".tgz")):
        raise MdcError(f"{details.name} (id {details.id}) is not a .tar.gz archive: {name!r}")
    archive, part = dest / name, dest / f"{name}.part"
    size = int(details.sizeBytes or 0)
    if archive.is_file():
        check_space(dest, size, 0)
        print(f"common_voice: {archive} is already downloaded; checking and unpacking it")
        return archive
    partial = part.stat().st_size if part.is_file() else 0
    check_space(dest, size, max(size - partial, 0))
    from datacollective.errors import DownloadError

    with _key_for_client(details.datasetUrl) as key, follow_file(part, archive, size, name):
        try:
            return Path(
                _mdc_call(
                    f"downloading {details.name}",
                    key,
                    client.download_dataset,
                    details.id,
                    download_directory=str(dest),
                    show_progress=False,
                )
            )
        except DownloadError:
            kept = part.stat().st_size if part.is_file() else 0
            again = "resumes from there" if details.checksum else "starts again"
    raise MdcError(
        f"the download of {details.name} was interrupted at {kept} of {size} bytes; {part} is "
        f"kept: run fetch_common_voice again and it {again}"
    )


def fetch_common_voice(
    locale: str = "ky", dest: str | Path | None = None, dataset: str | None = None
) -> Path:
    """Download and unpack a Common Voice release from MDC; return its language folder.

    The first call finds the release (``dataset=None``: the newest Common Voice Scripted
    Speech release for ``locale`` in the public catalog, printed with its id), checks free
    disk space, downloads with MDC's client (an interrupted download keeps its ``.part``
    file and the next call resumes it), checks the archive's size and SHA-256, unpacks it
    into a hidden sibling folder and renames the language folder to ``<dest>/<locale>``
    only when complete, then deletes the archive. Later calls (also in a new Colab session
    with Drive mounted) find that folder, print one line and download nothing.

    Args:
        locale: Common Voice locale code, e.g. ``"ky"``.
        dest: where releases go; default :func:`default_dest`.
        dataset: an MDC dataset id or slug to pin a release; None: the newest one.

    Returns:
        ``<dest>/<locale>``, for ``load_asr(f"common_voice:{folder}")``.

    Raises:
        ValueError: an empty or path-like ``locale``, or a pinned dataset of another locale.
        MdcError: no client installed, no API key, a key MDC refuses, an unknown dataset, no
            release for the locale, too little disk space, an interrupted download, a corrupt
            archive, or ``<dest>/<locale>`` holding something else. The key is never in it.
    """
    if not locale or not re.fullmatch(r"[A-Za-z0-9-]+", locale):
        raise ValueError(f"locale={locale!r}; expected a Common Voice locale code such as 'ky'")
    dest = Path(dest).expanduser() if dest is not None else default_dest()
    folder = dest / locale
    if reuse_release(folder, dataset):
        return folder
    client = _client()
    if dataset is None:
        details = _newest_release(client, locale)
    else:
        details = _mdc_call(
            f"looking up dataset={dataset!r}", None, client.get_dataset_details, dataset
        )
        if (details.locale or locale).lower() != locale.lower():
            raise ValueError(
                f"dataset={dataset!r} ({details.name}) is locale {details.locale!r}, not "
                f"locale={locale!r}; pass locale={details.locale!r}"
            )
        print(f"common_voice: {details.name} (id {details.id})")
    dest.mkdir(parents=True, exist_ok=True)
    archive = _download(client, details, dest)
    verify_archive(archive, details)
    unpack_release(archive, details, folder)
    archive.unlink()
    print(f"common_voice: {details.name} unpacked into {folder} (archive deleted)")
    return folder


def main(argv: list[str] | None = None) -> int:
    """``python -m dlsaudio.data.mdc``: fetch a release, print its folder and how to load it."""
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.data.mdc", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--locale", default="ky", help="Common Voice locale code (default: ky)")
    parser.add_argument(
        "--dest", default=None, help=f"where releases go (default: {default_dest()})"
    )
    parser.add_argument("--dataset", default=None, help="MDC dataset id or slug (default: newest)")
    args = parser.parse_args(argv)
    try:
        folder = fetch_common_voice(args.locale, args.dest, args.dataset)
    except (MdcError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(folder)
    print(f'load it with: load_asr("common_voice:{folder}")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
