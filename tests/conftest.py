"""Fixtures shared by the unit tests (smoke mode and the network guard are in ../conftest.py)."""

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread per library avoids contention with other processes.

    Use it for a whole file with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    with threadpool_limits(limits=1):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_whisper_sizes():
    """Sizes of the smallest tiny Whisper the tests build (``build_tiny_whisper(**sizes)``)."""
    return {"d_model": 32, "layers": 1, "heads": 2}


#: files whose every test is long (test_ddp.py starts two torchrun processes) and that have no
#: ``pytestmark`` of their own: marked here so that ``pytest -m "not slow"`` leaves them out
SLOW_FILES = {"test_ddp.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
