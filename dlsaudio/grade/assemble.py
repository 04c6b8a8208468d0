"""Put a submission's answers into the course's own notebook, and note what was left out.

Like nbgrader's autograded cells: the notebook that runs is the course's student copy, cell for
cell, in the course's order; only the answer cells named by the rubric take their source from
the submission. They are found by their stable cell id; an answer cell whose id was lost (a
copy-paste into a new notebook) is found by position, between the course cells around it. Every
other difference (an edited check cell, deleted or reordered cells, cells the student added)
changes nothing and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from dlsaudio.grade.rubric import Check, Rubric
from dlsaudio.grade.run import Step


@dataclass
class Assembly:
    nb: nbformat.NotebookNode  # what runs
    steps: list[Step]
    checks: dict[tuple[str, int], str]  # (task id, check number) -> the cell that decides it
    answered: dict[str, bool]  # answer cell id -> the student changed it
    notes: list[str] = field(default_factory=list)  # what was ignored, in words


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().split("\n"))


def _label(nb: nbformat.NotebookNode, cell_id: str) -> str:
    index = next(i for i, c in enumerate(nb.cells) if c.id == cell_id)
    return f"{cell_id} (cell {index})"


def _by_position(template, submission, cell_id: str, answer_ids: set[str], used: set[int]):
    """The submission cell between the course cells that surround ``cell_id`` in the template,
    when exactly one cell of the right type, and of no known id, sits there."""
    index = next(i for i, c in enumerate(template.cells) if c.id == cell_id)
    sources = [_norm(c.source) for c in submission.cells]

    def find(template_index: int, step: int) -> int | None:
        while 0 <= template_index < len(template.cells):
            cell = template.cells[template_index]
            if cell.id not in answer_ids and _norm(cell.source) in sources:
                return sources.index(_norm(cell.source))
            template_index += step
        return None

    before, after = find(index - 1, -1), find(index + 1, +1)
    low = -1 if before is None else before
    high = len(submission.cells) if after is None else after
    kind = template.cells[index].cell_type
    known = {c.id for c in template.cells}
    between = [
        i
        for i in range(low + 1, high)
        if submission.cells[i].cell_type == kind
        and i not in used
        and submission.cells[i].get("id") not in known
    ]
    return between[0] if len(between) == 1 else None


def _take_answers(rubric, template, submission, nb, notes) -> tuple[dict[str, bool], set[int]]:
    """Copy each answer cell's source from ``submission`` into ``nb``; return which answers
    changed the stub and which submission cells were taken."""
    task_of = {cid: t for t in rubric.tasks for cid in (*t.answers, *t.written)}
    ids = {}
    for i, cell in enumerate(submission.cells):
        ids.setdefault(cell.get("id"), i)
    stubs = {c.id: c.source for c in template.cells}
    used: set[int] = set()
    answered = {}
    for cell in nb.cells:
        task = task_of.get(cell.id)
        if task is None:
            continue
        i = ids.get(cell.id)
        if i is None or submission.cells[i].cell_type != cell.cell_type:
            i = _by_position(template, submission, cell.id, set(task_of), used)
            if i is not None:
                notes.append(
                    f"Answer cell {_label(nb, cell.id)} of task {task.id} had lost its cell id; "
                    "it was found by its position between the course's cells."
                )
        if i is None:
            notes.append(
                f"Answer cell {_label(nb, cell.id)} of task {task.id} is missing from your "
                "notebook; it was graded as unanswered."
            )
        else:
            used.add(i)
            cell.source = submission.cells[i].source
        answered[cell.id] = _norm(cell.source) != _norm(stubs[cell.id])
    return answered, used


def _differences(rubric, template, submission, nb, used: set[int]) -> list[str]:
    """What of the submission outside its answer cells was ignored, in words."""
    answers, checks = rubric.answer_ids, rubric.check_ids
    course = {c.id: c for c in template.cells if c.id not in answers}
    course_sources = {_norm(c.source) for c in course.values()}
    mine = {c.get("id"): c for c in submission.cells}
    mine_sources = {_norm(c.source) for c in submission.cells}
    notes = []
    for cell_id, cell in course.items():
        if cell.cell_type != "code":
            continue
        if cell_id in mine and _norm(mine[cell_id].source) != _norm(cell.source):
            what = "the check cell" if cell_id in checks else "the course cell"
            notes.append(
                f"You edited {what} {_label(nb, cell_id)}; your version was ignored and the "
                "course's ran."
            )
    deleted = [
        cid
        for cid, c in course.items()
        if c.cell_type == "code" and cid not in mine and _norm(c.source) not in mine_sources
    ]
    if deleted:
        notes.append(
            f"Course cells {', '.join(_label(nb, c) for c in deleted)} are not in your "
            "notebook; the course's ran."
        )
    added = [
        c.get("id") or f"#{i}"
        for i, c in enumerate(submission.cells)
        if i not in used
        and c.get("id") not in course
        and _norm(c.source) not in course_sources
        and c.source.strip()
    ]
    if added:
        notes.append(
            f"{len(added)} cell(s) you added ({', '.join(map(str, added[:8]))}"
            f"{', ...' if len(added) > 8 else ''}) did not run and were not read: only the "
            "answer cells are graded, so put what your answer needs inside them."
        )
    order = [c.id for c in template.cells]
    theirs = [c.get("id") for c in submission.cells if c.get("id") in order]
    if theirs != sorted(theirs, key=order.index):
        notes.append("Your cells are in another order; they ran in the course's order.")
    return notes


def _plan(rubric: Rubric, nb: nbformat.NotebookNode):
    """The steps to run (code cells not skipped, grading-only checks after their cell) and
    the cell that decides each check; appends the grading-only cells to ``nb``."""
    answers, check_cells = rubric.answer_ids, rubric.check_ids
    steps: list[Step] = []
    checks: dict[tuple[str, int], str] = {}
    pending = []
    for task in rubric.tasks:
        for n, check in enumerate(task.checks):
            if check.cell is not None:
                checks[task.id, n] = check.cell
            else:
                pending.append((task.id, n, check))

    def add_code(task_id: str, n: int, check: Check) -> None:
        cell = nbformat.v4.new_code_cell(check.code)
        cell.id = f"grading-{task_id}-{n}".replace(".", "-").replace(" ", "-")
        nb.cells.append(cell)
        checks[task_id, n] = cell.id
        steps.append(Step(len(nb.cells) - 1, cell.id, "check"))

    cells, nb.cells = list(nb.cells), []
    for cell in cells:
        nb.cells.append(cell)
        if cell.cell_type == "code" and cell.id not in rubric.skip:
            kind = (
                "answer" if cell.id in answers else "check" if cell.id in check_cells else "course"
            )
            steps.append(Step(len(nb.cells) - 1, cell.id, kind))
        for task_id, n, check in pending:
            if check.after == cell.id:
                add_code(task_id, n, check)
    for task_id, n, check in pending:
        if check.after is None:
            add_code(task_id, n, check)
    return steps, checks


def assemble(
    rubric: Rubric, template: nbformat.NotebookNode, submission: nbformat.NotebookNode
) -> Assembly:
    """The notebook to run for ``submission``, the steps to run, and what was ignored."""
    nb = nbformat.from_dict(template)
    notes: list[str] = []
    answered, used = _take_answers(rubric, template, submission, nb, notes)
    notes += _differences(rubric, template, submission, nb, used)
    steps, checks = _plan(rubric, nb)
    return Assembly(nb, steps, checks, answered, notes)
