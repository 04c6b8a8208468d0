"""Notebook tooling: clean and stamp notebooks, generate student copies, run headless.

The headless runner is :mod:`dlsaudio.notebook_runner`; ``run`` below only calls it.

Homework solution notebooks are the single source. Solution code sits between lines
``### BEGIN SOLUTION`` and ``### END SOLUTION``; :func:`make_student` replaces each region with
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (in markdown cells: *YOUR ANSWER
HERE*). Every notebook gets a Colab badge and an install cell built from
:mod:`dlsaudio.repo`, so the repository location is written once.

A marker is the whole line, exactly: a line that only looks like one (``## BEGIN SOLUTION``,
``###BEGIN SOLUTION``, ``# end solution``) is an error naming the notebook and the cell, never a
line copied into the student copy.

A generated ``homework.ipynb`` carries a stamp (a hash of every cell it was generated with), so
``build`` can tell a copy it wrote from one somebody filled in: it refuses to overwrite edits
unless given ``--force``, and then keeps the edited file as ``homework.ipynb.bak``.

Command line::

    python -m dlsaudio.notebooks build          # clean, stamp, write homework.ipynb files
    python -m dlsaudio.notebooks build --force  # overwrite edited student copies (backup kept)
    python -m dlsaudio.notebooks check          # exit 1 when a committed notebook is stale
    python -m dlsaudio.notebooks run week_03_ssl/seminar.ipynb --out results/week03
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import nbformat

from dlsaudio import repo
from dlsaudio.cli import add_out_argument
from dlsaudio.notebook_runner import run_notebook
from dlsaudio.notebook_stamps import stamp, student_edits

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
ANSWER_STUB = "*YOUR ANSWER HERE*"
SOLUTION_SUFFIX = "_solution.ipynb"
BADGE_ID = "colab-badge"
INSTALL_ID = "colab-install"
NOTEBOOK_DIRS = "week_*"
BACKUP_SUFFIX = ".bak"
STALE_ADVICE = (
    "course staff: regenerate with `python -m dlsaudio.notebooks build` and commit the result; "
    "students: do not run it, your filled-in homework.ipynb is meant to differ, and "
    "regenerating it would replace your answers"
)

_KEEP_CELL_METADATA = ("tags",)
# the marker words after nothing but punctuation and spaces: "## BEGIN SOLUTION", "###END SOLUTION",
# "# begin solution", "### BEGIN SOLUTIONS", "<!-- END SOLUTION -->"; prose that mentions a
# solution does not match
_MARKER_LIKE = re.compile(r"\W*(begin|end)[\s_-]*solutions?\b", re.IGNORECASE)


def install_source() -> str:
    """Source of the install cell: installs dlsaudio on Colab, does nothing elsewhere.

    The ``mdc`` extra brings Mozilla Data Collective's client, with which module 11 downloads
    Common Voice when a key is set (:func:`dlsaudio.data.fetch_common_voice`).
    """
    return (
        "# Colab: install the course package (about a minute). Elsewhere this cell does nothing:\n"
        "# install locally with `pip install -e .` from the repository root.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "dlsaudio[mdc] @ {repo.PIP_URL}"],\n'
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


def _strip_regions(source: str, where: str, markdown: bool) -> tuple[str, int]:
    """Replace every solution region of one cell's source by the stub; return it and the
    number of regions."""
    out: list[str] = []
    inside = False
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(
                    f"{where}, line {number}: nested '{BEGIN}'; close the previous region first"
                )
            inside = True
            regions += 1
            indent = line[: len(line) - len(line.lstrip())]
            if markdown:
                out.append(ANSWER_STUB)
            else:
                out.extend(indent + stub for stub in CODE_STUB)
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}, line {number}: '{END}' without a matching '{BEGIN}'")
            inside = False
        elif _MARKER_LIKE.match(stripped):
            raise ValueError(
                f"{where}, line {number}: {stripped!r} looks like a solution marker but is not "
                f"one; a marker is the whole line, exactly '{BEGIN}' or '{END}' (the line "
                "would otherwise be copied into the student notebook)"
            )
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out), regions


def make_student(
    solution_nb: nbformat.NotebookNode, name: str = "notebook"
) -> nbformat.NotebookNode:
    """Return the student copy of a solution notebook (a new object; the input is unchanged).

    Raises:
        ValueError: a marker is mistyped, unbalanced or nested (the message names the notebook,
            the cell's index and id, and the line), or the notebook has no solution region.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(solution_nb)))
    regions = 0
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}" + (f" (id {cell.id})" if cell.get("id") else "")
        cell.source, found = _strip_regions(
            cell.source, where, markdown=cell.cell_type == "markdown"
        )
        regions += found
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


class StudentEditsError(ValueError):
    """``build`` would overwrite a student copy that holds edits."""


def _read(path: Path, rel: str) -> nbformat.NotebookNode:
    """The notebook at ``path`` (``rel`` from the repository root, for messages).

    Raises:
        ValueError: the file is empty, not JSON or not a notebook; the message names it.
    """
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # NotJSONError, JSONDecodeError, a schema error, ...
        raise ValueError(
            f"{rel} ({path.stat().st_size} bytes): not a readable notebook "
            f"({type(error).__name__}: {str(error)[:120]}); restore it from git "
            f"(git checkout -- {rel})"
        ) from None


def _solution_of(path: Path) -> Path:
    return path.with_name(path.stem + SOLUTION_SUFFIX)


def render_all(root: Path) -> dict[Path, str]:
    """The text every notebook under ``root`` should have, student copies included."""
    wanted: dict[Path, str] = {}
    for path in find_notebooks(root):
        rel = path.relative_to(root).as_posix()
        if path.name.endswith(SOLUTION_SUFFIX) or not _solution_of(path).exists():
            nb = clean(_read(path, rel), rel)
            wanted[path] = _dumps(nb)
            if path.name.endswith(SOLUTION_SUFFIX):
                target = student_path(path)
                student = make_student(nb, name=rel)
                student = clean(student, target.relative_to(root).as_posix())
                wanted[target] = _dumps(stamp(student, path.name))
    return wanted


def _stale(wanted: dict[Path, str]) -> list[Path]:
    return [
        path
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def _edited_student_copies(wanted: dict[Path, str], paths: list[Path]) -> dict[Path, list[str]]:
    edited = {}
    for path in paths:
        if _solution_of(path).exists():
            edits = student_edits(path, nbformat.reads(wanted[path], as_version=4))
            if edits:
                edited[path] = edits
    return edited


def _backup(path: Path) -> Path:
    backup, n = path.with_name(path.name + BACKUP_SUFFIX), 1
    while backup.exists():
        backup, n = path.with_name(f"{path.name}{BACKUP_SUFFIX}{n}"), n + 1
    os.replace(path, backup)
    return backup


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def build(root: Path, *, force: bool = False) -> list[Path]:
    """Write every cleaned notebook and student copy; return the files that changed.

    A student copy that holds edits (answers, outputs of a run, changed cells: see
    :func:`student_edits`) is never overwritten silently.

    Args:
        root: the repository root.
        force: overwrite edited student copies anyway, keeping each as ``<name>.bak``.

    Raises:
        StudentEditsError: a student copy holds edits and ``force`` is off; nothing is written.
        ValueError: a solution notebook's markers are mistyped, unbalanced or missing.
    """
    wanted = render_all(root)
    changed = _stale(wanted)
    edited = _edited_student_copies(wanted, changed)
    if edited and not force:
        lines = [
            f"  {path.relative_to(root)}: {'; '.join(edits)}" for path, edits in edited.items()
        ]
        raise StudentEditsError(
            "not overwritten, these student notebooks hold edits (a student's answers?):\n"
            + "\n".join(lines)
            + "\nNothing was written. Students: keep your notebook, do not regenerate it. "
            "Course staff who mean to replace them: build --force (each edited file is kept as "
            f"<name>{BACKUP_SUFFIX})"
        )
    for path in changed:
        if path in edited:
            _backup(path)
        _write(path, wanted[path])
    return changed


def check(root: Path) -> list[Path]:
    """Return the notebooks whose committed text differs from what :func:`build` would write."""
    return _stale(render_all(root))


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
    build_parser = sub.add_parser(
        "build", help="clean notebooks, stamp badges and install cells, write student copies"
    )
    build_parser.add_argument(
        "--force",
        action="store_true",
        help=f"overwrite student copies that hold edits (each is kept as <name>{BACKUP_SUFFIX})",
    )
    sub.add_parser("check", help="exit 1 when a committed notebook differs from what build writes")
    run = sub.add_parser("run", help="execute a notebook headless and save it with its figures")
    run.add_argument("notebook", type=Path)
    add_out_argument(run, "the executed notebook and figures")
    run.add_argument(
        "--full", action="store_true", help="full run instead of smoke mode (bundled sample)"
    )
    args = parser.parse_args(argv)

    if args.command == "run":
        result = run_notebook(args.notebook, args.out, smoke=not args.full)
        print(json.dumps(result, indent=2))
        return 0
    root = find_root()
    try:
        if args.command == "build":
            changed = build(root, force=args.force)
            for path in changed:
                print(f"wrote {path.relative_to(root)}")
            print(f"{len(changed)} notebook(s) changed")
            return 0
        wanted = render_all(root)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    stale = _stale(wanted)
    edited = _edited_student_copies(wanted, stale)
    for path in stale:
        note = f" (holds edits: {'; '.join(edited[path])})" if path in edited else ""
        print(f"out of date: {path.relative_to(root)}{note}")
    if stale:
        print(STALE_ADVICE, file=sys.stderr)
        return 1
    print("all notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
