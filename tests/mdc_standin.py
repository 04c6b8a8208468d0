"""A stand-in for Mozilla Data Collective's API on 127.0.0.1, for tests of dlsaudio.data.mdc.

It serves what ``datacollective`` asks for: the catalog (``GET /api/datasets``), a dataset's
details (``GET /api/datasets/<id or slug>``), a download session (``POST
/api/datasets/<id>/download``, with the API key) and the archive at the pre-signed URL the
session names (``GET /files/<id>``, with ``Range`` requests answered 206). Every request is
logged; ``cut_next_download_at`` makes the next archive transfer stop after that many bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class Dataset:
    """One catalog entry; ``archive`` is what the download URL serves."""

    id: str
    slug: str
    name: str
    locale: str
    archive: bytes = b""
    checksum: str | None = "auto"  # "auto": the archive's SHA-256; None: the catalog gives none
    size: int | None = None  # None: the archive's size
    created: str = "2026-01-01T00:00:00.000Z"
    terms_accepted: bool = True
    served: bytes | None = None  # bytes served instead of the archive (a corrupt transfer)
    organization: str = "Common Voice"

    def details(self, base: str) -> dict:
        checksum = (
            hashlib.sha256(self.archive).hexdigest() if self.checksum == "auto" else self.checksum
        )
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "shortDescription": f"{self.name} dataset",
            "locale": self.locale,
            "task": "ASR",
            "format": "MP3",
            "sizeBytes": self.size if self.size is not None else len(self.archive),
            "checksum": checksum,
            "createdAt": self.created,
            "filename": f"{self.slug}.tar.gz",
            "datasetUrl": f"{base}/datasets/{self.id}",
            "organization": {"name": self.organization, "slug": self.organization.lower()},
            "pricing": {"isPaid": False},
        }


@dataclass
class StandInMDC:
    key: str
    datasets: list[Dataset] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    cut_next_download_at: int | None = None

    def start(self) -> StandInMDC:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api"

    def find(self, id_or_slug: str) -> Dataset | None:
        return next((d for d in self.datasets if id_or_slug in (d.id, d.slug)), None)

    def requests(self, method: str, prefix: str) -> list[Request]:
        return [r for r in self.log if r.method == method and r.path.startswith(prefix)]


def _handler(mdc: StandInMDC) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _record(self, method: str) -> tuple[str, dict]:
            url = urlsplit(self.path)
            mdc.log.append(
                Request(
                    method, url.path, self.headers.get("Range"), self.headers.get("Authorization")
                )
            )
            return url.path, parse_qs(url.query)

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, query = self._record("GET")
            if path == "/api/datasets":
                return self._list(query)
            if match := re.fullmatch(r"/api/datasets/([^/]+)", path):
                found = mdc.find(match[1])
                if found is None:
                    return self._json(404, {"error": "Dataset not found"})
                return self._json(200, found.details(mdc.base))
            if match := re.fullmatch(r"/files/([^/]+)", path):
                return self._file(match[1])
            self._json(404, {"error": "Not found"})

        def do_POST(self) -> None:
            path, _ = self._record("POST")
            match = re.fullmatch(r"/api/datasets/([^/]+)/download", path)
            found = mdc.find(match[1]) if match else None
            if found is None:
                return self._json(404, {"error": "Dataset not found"})
            if self.headers.get("Authorization") != f"Bearer {mdc.key}":
                return self._json(401, {"error": "Invalid API key"})
            if not found.terms_accepted:
                return self._json(403, {"error": "Agree to the dataset's terms first"})
            details = found.details(mdc.base)
            self._json(
                200,
                {
                    "downloadUrl": f"{mdc.base}/files/{found.id}?signature=abc",
                    "sizeBytes": details["sizeBytes"],
                    "checksum": details["checksum"],
                },
            )

        def _list(self, query: dict) -> None:
            items = mdc.datasets
            if "locale" in query:
                items = [d for d in items if d.locale in query["locale"]]
            if "q" in query:
                words = query["q"][0].lower().split()
                items = [d for d in items if all(w in d.name.lower() for w in words)]
            limit, page = int(query.get("limit", ["24"])[0]), int(query.get("page", ["1"])[0])
            chosen = items[(page - 1) * limit : page * limit]
            body = {"items": [d.details(mdc.base) for d in chosen], "total": len(items)}
            self._json(200, body)

        def _file(self, dataset_id: str) -> None:
            found = mdc.find(dataset_id)
            data = found.served if found.served is not None else found.archive
            start = 0
            if ranged := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                start = int(ranged[1])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            cut, mdc.cut_next_download_at = mdc.cut_next_download_at, None
            if cut is None:
                self.wfile.write(data[start:])
                return
            self.wfile.write(data[start : start + cut])
            self.wfile.flush()
            self.close_connection = True

    return Handler
