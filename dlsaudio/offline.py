"""Refusing the network: a connection, datagram or name lookup for any host but this machine
fails at once, with an error naming the host.

Used in two places: the grader's kernel (:mod:`dlsaudio.grade.kernel`) refuses the network for
a submission's whole run, and the test suite (``conftest.py``) for each test, undone after it.
Sockets for loopback stay open (kernels and worker processes talk over it), and so do sockets
made in C (ZeroMQ's), which never go through Python's ``socket`` module.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None})
"""Hosts that are this machine (with every ``127.*`` address)."""

Refusal = Callable[[str, bool], OSError]
"""``refusal(host, looked_up)``: the error to raise for ``host``; ``looked_up`` is True for a
name lookup, False for a connection or datagram."""


def is_local(host: str | bytes | None) -> bool:
    """True when ``host`` is this machine."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host in LOCAL_HOSTS or (isinstance(host, str) and host.startswith("127."))


def refuse_network(
    refusal: Refusal, patch: Callable[[object, str, object], None] = setattr
) -> None:
    """Make ``socket`` raise ``refusal(host, looked_up)`` for every connection (``connect``,
    ``connect_ex``), datagram (``sendto``) and name lookup (``getaddrinfo``) for another machine.

    Args:
        refusal: builds the error, so each caller says why the network is off.
        patch: sets the guarded functions; ``setattr`` for good, pytest's
            ``monkeypatch.setattr`` for one test.
    """
    connect, connect_ex, sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )
    getaddrinfo = socket.getaddrinfo

    def check(sock, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            raise refusal(address[0], False)

    def guarded_connect(sock, address):
        check(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        check(sock, address)
        return connect_ex(sock, address)

    def guarded_sendto(sock, data, *args):
        check(sock, args[-1])
        return sendto(sock, data, *args)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            raise refusal(host, True)
        return getaddrinfo(host, *args, **kwargs)

    patch(socket.socket, "connect", guarded_connect)
    patch(socket.socket, "connect_ex", guarded_connect_ex)
    patch(socket.socket, "sendto", guarded_sendto)
    patch(socket, "getaddrinfo", guarded_getaddrinfo)
