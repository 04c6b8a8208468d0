"""Running a notebook headless: the command line's ``run`` and the grader's kernels.

:func:`run_notebook` executes a notebook and saves it with its figures
(``python -m dlsaudio.notebooks run NOTEBOOK --out FOLDER``); :func:`notebook_client` is the
``nbclient`` client both it and the grader (:mod:`dlsaudio.grade.run`) use, whose wait for each
cell's reply polls in short slices (:func:`sliced_get_msg`) and whose kernel listens on sockets of
its own (:func:`use_private_sockets`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

import nbformat

REPLY_POLL_SECONDS = 1.0


def sliced_get_msg(get_msg, slice_seconds: float = REPLY_POLL_SECONDS):
    """Wrap a channel's async ``get_msg(timeout)`` so that it waits in slices of at most
    ``slice_seconds`` until the caller's ``timeout`` (None: forever), then raises ``Empty``.

    A headless run waits for each cell's reply with one ``get_msg(timeout=<cell timeout>)`` on
    the shell channel. After a cell that opens many widget comms, that wait sometimes misses the
    socket's wake-up and returns only when the whole timeout has passed: 30 minutes per widget
    cell at the default. Every new slice polls the socket afresh, so a missed wake-up costs at
    most one slice.
    """
    from queue import Empty

    async def get_msg_in_slices(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(
                    timeout=slice_seconds if left is None else min(slice_seconds, left)
                )
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_slices


def use_private_sockets(km, folder: str | Path | None = None) -> bool:
    """Make the kernel manager ``km`` (not started yet) give its kernel Unix sockets in a folder
    instead of TCP ports on the loopback; True if it did.

    With TCP, the manager picks free ports, closes them and hands them to the kernel, which binds
    them a second or so later: in that gap any other process on the machine (another kernel, a
    browser, a grading worker) may take one, and the kernel dies at start with "Address already
    in use". Sockets in a folder nobody else writes to cannot be taken. Where Unix sockets do not
    exist (Windows), or the manager was given a transport already, ``km`` is left as it is.

    Args:
        km: a jupyter_client kernel manager.
        folder: where the sockets go (short: a socket's path has room for about 100
            characters); None: a new private folder, removed with ``km``.
    """
    if os.name != "posix" or km.transport != "tcp" or km.has_kernel:
        return False
    if folder is None:
        folder = tempfile.mkdtemp(prefix="kernel-")
        weakref.finalize(km, shutil.rmtree, folder, True)
    km.transport = "ipc"
    km.ip = os.path.join(folder, "k")
    return True


def notebook_client(nb: nbformat.NotebookNode, *, max_output_chars: int | None = None, **kwargs):
    """An ``nbclient.NotebookClient`` whose wait for each cell's reply polls in short slices
    (see :func:`sliced_get_msg`); ``kwargs`` go to ``NotebookClient``.

    Args:
        nb: the notebook to run.
        max_output_chars: keep at most about this many characters of output per cell (errors
            are always kept), so that a cell printing in a loop cannot fill the memory of the
            process running it; None keeps everything.
    """
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    class SlicedReplyClient(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.shell_channel.get_msg = sliced_get_msg(kc.shell_channel.get_msg)
            return kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            use_private_sockets(km)
            return km

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if max_output_chars is None or out is None or out.output_type == "error":
                return out
            if sum(len(json.dumps(o)) for o in outs) > max_output_chars:
                outs.pop()
                note = f"[output cut at {max_output_chars} characters]\n"
                if not any(o.get("text") == note for o in outs):
                    outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                return None
            return out

    return SlicedReplyClient(nb, **kwargs)


def run_notebook(
    path: str | Path,
    out_dir: str | Path,
    *,
    smoke: bool = True,
    timeout: int = 1800,
) -> dict:
    """Execute a notebook headless and write it, executed, with its figures to ``out_dir``.

    The kernel runs in ``out_dir``, so files the notebook writes land there too.

    Args:
        path: the notebook.
        out_dir: folder for the executed notebook, ``figures/*.png`` and the notebook's own files.
        smoke: run with ``DLSAUDIO_SMOKE=1`` (the bundled sample, small sizes).
        timeout: seconds allowed per cell.

    Returns:
        ``{"notebook", "executed", "figures", "seconds", "smoke"}``.

    Raises:
        FileNotFoundError: the notebook does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    out_dir = Path(out_dir).resolve()
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    env = {
        "DLSAUDIO_SMOKE": "1" if smoke else "0",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    start = time.perf_counter()
    try:
        client = notebook_client(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(out_dir)}},
        )
        try:
            client.execute()
        finally:
            executed = out_dir / path.name
            nbformat.write(nb, executed)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    figures = []
    for index, cell in enumerate(nb.cells):
        for k, output in enumerate(cell.get("outputs", [])):
            png = output.get("data", {}).get("image/png")
            if png:
                figure = out_dir / "figures" / f"{path.stem}_cell{index:03d}_{k}.png"
                figure.write_bytes(base64.b64decode(png))
                figures.append(str(figure))
    return {
        "notebook": str(path),
        "executed": str(executed),
        "figures": figures,
        "seconds": round(seconds, 1),
        "smoke": smoke,
    }
