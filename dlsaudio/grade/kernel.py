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
- network: a connection or name lookup for any host but this machine fails at once, as in the
  test suite's ``conftest.py`` (the kernel's own sockets are ZeroMQ's, made in C, and unaffected).
"""

from __future__ import annotations

import argparse
import resource
import signal
import socket
import sys

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


class NetworkRefused(OSError):
    """Code under grading tried to reach another machine."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host in _LOCAL_HOSTS or (isinstance(host, str) and host.startswith("127."))


def refuse_network() -> None:
    """Make every connection, datagram and name lookup for another machine fail with
    :class:`NetworkRefused` naming the host."""
    connect, connect_ex, sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )
    getaddrinfo = socket.getaddrinfo

    def refuse(host):
        raise NetworkRefused(f"grading runs without network: connecting to {host} is refused")

    def is_remote(sock, address) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0])

    def guarded_connect(sock, address):
        if is_remote(sock, address):
            refuse(address[0])
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        if is_remote(sock, address):
            refuse(address[0])
        return connect_ex(sock, address)

    def guarded_sendto(sock, data, *args):
        address = args[-1]
        if is_remote(sock, address):
            refuse(address[0])
        return sendto(sock, data, *args)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            refuse(host)
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.socket.sendto = guarded_sendto
    socket.getaddrinfo = guarded_getaddrinfo


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
