"""Build stamps: telling a student copy that ``build`` wrote from one a student filled in.

:func:`stamp` records in a generated ``homework.ipynb`` which solution it came from and a hash
of each cell; :func:`student_edits` lists what a copy holds beyond that (edited, added or
deleted cells, outputs of a run), so :mod:`dlsaudio.notebooks` never overwrites answers
without ``--force``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

STAMP_KEY = "dlsaudio"


def _cell_hash(cell: nbformat.NotebookNode) -> str:
    return hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]


def stamp(nb: nbformat.NotebookNode, solution_name: str) -> nbformat.NotebookNode:
    """Record in ``nb``'s metadata which solution it was generated from and a hash of each cell,
    so that later edits (a student's answers) can be told from build's own output."""
    nb.metadata[STAMP_KEY] = {
        "generated_from": solution_name,
        "cells": {cell.id: _cell_hash(cell) for cell in nb.cells},
    }
    return nb


def _describe(nb: nbformat.NotebookNode, indices: list[int]) -> str:
    return ", ".join(f"{nb.cells[i].get('id', '?')} (index {i})" for i in indices)


def student_edits(path: Path, wanted: nbformat.NotebookNode | None = None) -> list[str]:
    """What the student copy at ``path`` holds beyond what build wrote there: edited, added or
    deleted cells and outputs of a run. Empty when the file is missing or unedited.

    Args:
        path: a generated student notebook (``homework.ipynb``).
        wanted: what build would write now; compared against when the file has no stamp (a
            copy from before stamps existed).
    """
    if not path.exists():
        return []
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # a damaged file or a merge leftover may still hold answers
        return [f"not a readable notebook ({type(error).__name__}: {str(error)[:120]})"]
    edits = []
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
    if ran:
        edits.append(f"outputs of a run in cells {_describe(nb, ran)}")
    recorded = nb.metadata.get(STAMP_KEY, {}).get("cells")
    if not isinstance(recorded, dict):
        if wanted is not None and [(c.cell_type, c.source) for c in nb.cells] == [
            (c.cell_type, c.source) for c in wanted.cells
        ]:
            return edits
        return [*edits, "no build stamp, so its cells cannot be told from a student's answers"]
    known = set(recorded.values())
    changed = [
        i
        for i, cell in enumerate(nb.cells)
        if recorded.get(cell.get("id")) != _cell_hash(cell)
        and not (cell.get("id") not in recorded and _cell_hash(cell) in known)
    ]
    if changed:
        edits.append(f"edited or added cells {_describe(nb, changed)}")
    present = {cell.get("id") for cell in nb.cells} | {_cell_hash(cell) for cell in nb.cells}
    deleted = [
        cell_id for cell_id, h in recorded.items() if cell_id not in present and h not in present
    ]
    if deleted:
        edits.append(f"deleted cells {', '.join(deleted)}")
    return edits
