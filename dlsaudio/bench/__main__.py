"""Benchmarks that print JSON: ``python -m dlsaudio.bench {ssl,asr,audio,gpu}``."""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m dlsaudio.bench {ssl,asr,audio,gpu} [options]"
    "  (add --help after the name for options)"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("ssl", "asr", "audio", "gpu"):
        print(USAGE, file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name == "ssl":
        from dlsaudio.bench.ssl import main as run
    elif name == "audio":
        from dlsaudio.bench.audio import main as run
    elif name == "gpu":
        from dlsaudio.bench.gpu import main as run
    else:
        from dlsaudio.bench.asr import main as run
    return run(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
