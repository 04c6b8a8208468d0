"""Start the IPython kernel that runs one submission, with its limits set before any of its code.

The grader launches ``python -m dlsaudio.grade.kernel [limits] -f CONNECTION_FILE``; this sets
the limits on the process (inherited by anything it starts), refuses the network, then hands
over to ``ipykernel``:

- memory: ``RLIMIT_DATA`` (heap and private writable mappings: tensors, arrays, Python
  objects), so an allocation past the limit fails with ``MemoryError`` or torch's "can't
  allocate memory" and the kernel lives on. Not ``RLIMIT_AS``: CUDA reserves far more address
  space than it ever uses, and the limit is meant for memory actually written to;
- file size: ``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, so a write past it fails with
  ``OSError: File too large`` instead of killing the kernel;
- no core dumps;
- network: a connection or name lookup for any host but this machine fails at once, with the
  test suite's guard (:mod:`dlsaudio.offline`; the kernel's own sockets are ZeroMQ's, made in C,
  and unaffected).
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys

from dlsaudio import offline


class NetworkRefused(OSError):
    """Code under grading tried to reach another machine."""


def _refusal(host: str, looked_up: bool) -> NetworkRefused:
    return NetworkRefused(f"grading runs without network: connecting to {host} is refused")


def refuse_network() -> None:
    """Make every connection, datagram and name lookup for another machine fail with
    :class:`NetworkRefused` naming the host (:func:`dlsaudio.offline.refuse_network`)."""
    offline.refuse_network(_refusal)


def set_limits(memory_mb: int | None, file_mb: int | None) -> None:
    """Limit the memory and the size of any file the process writes (None: no limit)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        size = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    if file_mb:
        size = file_mb * 2**20
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dlsaudio.grade.kernel")
    parser.add_argument("--memory-mb", type=int, default=None)
    parser.add_argument("--file-mb", type=int, default=None)
    args, kernel_args = parser.parse_known_args(argv)
    set_limits(args.memory_mb, args.file_mb)
    refuse_network()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=kernel_args)


if __name__ == "__main__":
    main(sys.argv[1:])
