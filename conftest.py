"""Test configuration: every test and notebook runs in smoke mode, offline.

``pytest --nbval`` executes every notebook under ``week_*/``. Student notebooks
(``homework.ipynb``) stop at their first ``raise NotImplementedError`` by design; nbval skips
them and ``tests/test_notebooks.py`` checks that they stop exactly there.

Tests may not touch the network: in the test process, a connection or name lookup for any
host but this machine fails at once with an error naming the host (kernels and worker
processes talk over loopback, which stays open); the guard is the grader's,
:mod:`dlsaudio.offline`.
"""

import gc
import os

import pytest

os.environ.setdefault("DLSAUDIO_SMOKE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

collect_ignore_glob = ["week_*/homework.ipynb", "outputs/*", "results/*"]


class NetworkAccessInTests(OSError):
    """A test tried to reach another machine."""


def _refusal(host: str, looked_up: bool) -> NetworkAccessInTests:
    return NetworkAccessInTests(
        f"tests run offline, but a test {'looked up' if looked_up else 'connected to'} {host}; "
        "use the bundled sample and the local tiny Whisper"
    )


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    from dlsaudio.offline import refuse_network  # after the environment above is set

    refuse_network(_refusal, patch=monkeypatch.setattr)


# ---------------------------------------------------------------- garbage collection
#
# Once torch, transformers and the test modules are imported, a test process holds about
# 800,000 long-lived objects, and each full collection of the cyclic garbage collector scans
# them all (0.2-0.6 s on 2 cores): about once a second while the tests run (21 times in 20 s of
# four test files), and five more times as pytest ends. Nothing imported is garbage: what exists
# once the plugins are loaded, and again once the tests are collected, is moved out of the
# collector's reach (``gc.freeze``), so that a collection scans only what the tests make.
# (Switching the collector off during collection instead made the suite slower here: 237-247 s
# against 226-230 s.) The grader's kernels do the same for the pristine state of a notebook
# (dlsaudio/grade/guard.py).


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session):
    gc.freeze()


def pytest_collection_finish(session):
    gc.freeze()


def pytest_configure(config):
    """nbval's kernels listen on Unix sockets of their own, as the package's do
    (:func:`dlsaudio.notebook_runner.use_private_sockets`): a TCP port picked for a kernel can be
    taken by another test's process before the kernel binds it, and the notebook then fails with
    "Kernel died before replying to kernel_info"."""
    if not config.pluginmanager.has_plugin("nbval"):
        return
    import nbval.kernel

    from dlsaudio.notebook_runner import use_private_sockets

    class PrivateSocketKernelManager(nbval.kernel.KernelManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            use_private_sockets(self)

    nbval.kernel.KernelManager = PrivateSocketKernelManager


# ---------------------------------------------------------------- one run per notebook


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
def pytest_collection_modifyitems(config, items):
    """A notebook that a selected test executes whole (``@pytest.mark.runs_notebook``: the
    browser test runs each seminar in JupyterLab and fails on any error in it) is not executed a
    second time by nbval; its nbval items are skipped with the test that runs it. Where that test
    cannot run (no browser here), or is not selected, nbval runs the notebook as usual."""
    runs = {}
    for item in items:
        for mark in item.iter_markers("runs_notebook"):
            runs[mark.args[0]] = item
    if not runs:
        return
    import browser_lab  # tests/browser_lab.py, imported by the test that carries the mark

    if browser_lab.missing():
        return
    for item in items:
        path = item.nodeid.split("::")[0]
        if item.path.suffix == ".ipynb" and path in runs:
            test = runs[path].nodeid.split("@")[0]  # without the xdist group
            reason = f"{path} runs once in this session, in JupyterLab: {test}"
            item.add_marker(pytest.mark.skip(reason=reason))


# ---------------------------------------------------------------- two workers (pytest-xdist)
#
# ``pyproject.toml`` runs the suite on one worker per core with ``--dist loadgroup``: the tests of
# one group run in one worker, in order, and a group's module-scoped fixture is built once.

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # each worker, and the kernels and processes its tests start, uses its share of the cores:
    # two workers with two threads each on two cores spend their time waiting for each other
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_key, str(_share))

#: tests/test_grade.py's module-scoped fixtures, each a batch of graded notebooks
GRADE_BATCHES = ("module3", "tiny", "module11")

#: the longest groups (tens of seconds each on 2 cores), started first so that no worker is
#: left running one of them alone at the end; the rest follow in collection order
LONG_FIRST = (
    "grade-module3",
    "grade-tiny",
    "browser",
    "tests/test_notebooks.py::test_seminar_runs_without_a_language_token_and_with_lora",
    "week_11_low_resource/seminar.ipynb",
    "grade-module11",
    "tests/test_asr_cli.py::test_cli_runs_unchanged_under_torchrun",
    "tests/test_ssl_plots_widgets.py::test_umap_map_has_one_point_per_clip",
    "tests/test_grade.py::test_the_in_kernel_network_guard_alone_also_refuses_the_network",
    "tests/test_notebooks.py::test_student_notebook_runs_until_its_first_task",
    "tests/test_ddp.py",
    "week_03_ssl/seminar.ipynb",
    "week_11_low_resource/homework_solution.ipynb",
    "week_03_ssl/homework_solution.ipynb",
)


def _group(item) -> str | None:
    """The worker group of a test: a notebook's cells share one kernel, the tests of a grading
    batch or of the browser share the batch or the server; None: any worker."""
    if item.path.suffix == ".ipynb":
        return item.nodeid.split("::")[0]
    if item.path.name == "test_grade.py":
        return next((f"grade-{b}" for b in GRADE_BATCHES if b in item.fixturenames), None)
    if item.path.name == "test_browser.py":
        return "browser"
    return None


def _rank(item, group: str | None) -> int:
    for rank, key in enumerate(LONG_FIRST):
        if key == group or item.nodeid.startswith(key):
            return rank
    return len(LONG_FIRST)


@pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
def pytest_worker_groups(config, items):  # before xdist reads the groups
    if not config.pluginmanager.has_plugin("xdist"):
        return
    groups = {}
    for item in items:
        groups[item] = _group(item)
        if groups[item] is not None:
            item.add_marker(pytest.mark.xdist_group(groups[item]))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the order in which the workers are fed
        items.sort(key=lambda item: _rank(item, groups[item]))
