"""Notebook tooling: clean and stamp notebooks, generate student copies, run headless.

Homework solution notebooks are the single source. Solution code sits between lines
``### BEGIN SOLUTION`` and ``### END SOLUTION``; :func:`make_student` replaces each region with
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (in markdown cells: *YOUR ANSWER
HERE*). Every notebook gets a Colab badge and an install cell built from
:mod:`dlsaudio.repo`, so the repository location is written once.

Command line::

    python -m dlsaudio.notebooks build          # clean, stamp, write homework.ipynb files
    python -m dlsaudio.notebooks check          # exit 1 when a committed notebook is stale
    python -m dlsaudio.notebooks run week_03_ssl/seminar.ipynb --out results/week03
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat

from dlsaudio import repo

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
ANSWER_STUB = "*YOUR ANSWER HERE*"
SOLUTION_SUFFIX = "_solution.ipynb"
BADGE_ID = "colab-badge"
INSTALL_ID = "colab-install"
NOTEBOOK_DIRS = "week_*"

_KEEP_CELL_METADATA = ("tags",)


def install_source() -> str:
    """Source of the install cell: installs dlsaudio on Colab, does nothing elsewhere."""
    return (
        "# Colab: install the course package (about a minute). Elsewhere this cell does nothing:\n"
        "# install locally with `pip install -e .` from the repository root.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "dlsaudio @ {repo.PIP_URL}"],\n'
        "        check=True,\n"
        "    )"
    )


def badge_source(rel_path: str) -> str:
    """Markdown of the Colab badge for the notebook at ``rel_path`` in the repository."""
    return repo.colab_badge(rel_path)


def find_notebooks(root: Path) -> list[Path]:
    """Every committed notebook of the course under ``root``."""
    return sorted(
        p for p in root.glob(f"{NOTEBOOK_DIRS}/*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def student_path(solution: Path) -> Path:
    """``homework_solution.ipynb`` -> ``homework.ipynb``."""
    if not solution.name.endswith(SOLUTION_SUFFIX):
        raise ValueError(
            f"{solution} is not a solution notebook (its name must end with {SOLUTION_SUFFIX})"
        )
    return solution.with_name(solution.name[: -len(SOLUTION_SUFFIX)] + ".ipynb")


def _strip_regions(source: str, where: str, markdown: bool) -> str:
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(
                    f"{where}, line {number}: nested '{BEGIN}'; close the previous region first"
                )
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            if markdown:
                out.append(ANSWER_STUB)
            else:
                out.extend(indent + stub for stub in CODE_STUB)
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"{where}, line {number}: '{END}' without a matching '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def make_student(
    solution_nb: nbformat.NotebookNode, name: str = "notebook"
) -> nbformat.NotebookNode:
    """Return the student copy of a solution notebook (a new object; the input is unchanged).

    Raises:
        ValueError: markers are unbalanced or nested, or the notebook has no solution region.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(solution_nb)))
    regions = 0
    for index, cell in enumerate(nb.cells):
        if BEGIN in cell.source or END in cell.source:
            regions += cell.source.count(BEGIN)
            cell.source = _strip_regions(
                cell.source, f"{name}, cell {index}", markdown=cell.cell_type == "markdown"
            )
    if regions == 0:
        raise ValueError(
            f"{name}: no '{BEGIN}' region found; a solution notebook needs at least one"
        )
    return nb


def _stable_id(rel_path: str, index: int, taken: set[str]) -> str:
    digest = hashlib.sha1(f"{rel_path}:{index}".encode()).hexdigest()[:8]
    while digest in taken:
        digest = hashlib.sha1(digest.encode()).hexdigest()[:8]
    return digest


def clean(nb: nbformat.NotebookNode, rel_path: str) -> nbformat.NotebookNode:
    """Strip outputs and execution counts, keep only tag metadata, give every cell a stable id,
    and put the Colab badge and install cell (for ``rel_path``) at the top."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    cells = [c for c in nb.cells if c.get("id") not in (BADGE_ID, INSTALL_ID)]
    badge = nbformat.v4.new_markdown_cell(badge_source(rel_path))
    badge.id = BADGE_ID
    install = nbformat.v4.new_code_cell(install_source())
    install.id = INSTALL_ID
    cells = [badge, install, *cells]
    taken: set[str] = set()
    for index, cell in enumerate(cells):
        cell.metadata = {
            k: v for k, v in cell.get("metadata", {}).items() if k in _KEEP_CELL_METADATA
        }
        cell.pop("attachments", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell_id = cell.get("id")
        if not cell_id or cell_id in taken:
            cell_id = _stable_id(rel_path, index, taken)
        cell.id = cell_id
        taken.add(cell_id)
    nb.cells = cells
    return nb


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def render_all(root: Path) -> dict[Path, str]:
    """The text every notebook under ``root`` should have, student copies included."""
    wanted: dict[Path, str] = {}
    for path in find_notebooks(root):
        rel = path.relative_to(root).as_posix()
        if (
            path.name.endswith(SOLUTION_SUFFIX)
            or not (path.with_name(path.stem + "_solution.ipynb")).exists()
        ):
            nb = clean(nbformat.read(path, as_version=4), rel)
            wanted[path] = _dumps(nb)
            if path.name.endswith(SOLUTION_SUFFIX):
                target = student_path(path)
                student = make_student(nb, name=rel)
                student = clean(student, target.relative_to(root).as_posix())
                wanted[target] = _dumps(student)
    return wanted


def build(root: Path) -> list[Path]:
    """Write every cleaned notebook and student copy; return the files that changed."""
    changed = []
    for path, text in render_all(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def check(root: Path) -> list[Path]:
    """Return the notebooks whose committed text differs from what :func:`build` would write."""
    return [
        path
        for path, text in render_all(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


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


def notebook_client(nb: nbformat.NotebookNode, **kwargs):
    """An ``nbclient.NotebookClient`` whose wait for each cell's reply polls in short slices
    (see :func:`sliced_get_msg`); ``kwargs`` go to ``NotebookClient``."""
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    class SlicedReplyClient(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.shell_channel.get_msg = sliced_get_msg(kc.shell_channel.get_msg)
            return kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

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


_ROOT_MARKERS = ("pyproject.toml", "dlsaudio")


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder upwards holding ``pyproject.toml`` and ``dlsaudio/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    raise FileNotFoundError(
        f"no repository root (a folder with pyproject.toml and dlsaudio/) above {here}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.notebooks", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "build", help="clean notebooks, stamp badges and install cells, write student copies"
    )
    sub.add_parser("check", help="exit 1 when a committed notebook differs from what build writes")
    run = sub.add_parser("run", help="execute a notebook headless and save it with its figures")
    run.add_argument("notebook", type=Path)
    run.add_argument(
        "--out", type=Path, required=True, help="folder for the executed notebook and figures"
    )
    run.add_argument(
        "--full", action="store_true", help="full run instead of smoke mode (bundled sample)"
    )
    args = parser.parse_args(argv)

    if args.command == "run":
        result = run_notebook(args.notebook, args.out, smoke=not args.full)
        print(json.dumps(result, indent=2))
        return 0
    root = find_root()
    if args.command == "build":
        changed = build(root)
        for path in changed:
            print(f"wrote {path.relative_to(root)}")
        print(f"{len(changed)} notebook(s) changed")
        return 0
    stale = check(root)
    for path in stale:
        print(f"out of date: {path.relative_to(root)}")
    if stale:
        print("run `python -m dlsaudio.notebooks build` and commit the result", file=sys.stderr)
        return 1
    print("all notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
