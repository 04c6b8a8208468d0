"""The test suite cannot reach other machines (see conftest.py)."""

import socket

import pytest


def test_a_test_cannot_reach_another_machine():
    with pytest.raises(OSError, match="a test looked up huggingface.co"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError, match="a test connected to 8.8.8.8"):
            s.connect(("8.8.8.8", 53))
    finally:
        s.close()


def test_loopback_stays_open():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=5)
        client.close()
    finally:
        server.close()
