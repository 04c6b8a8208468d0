"""Rubrics: which cells of a homework are the student's, which are checks, and what each is worth.

A rubric is a JSON file beside the solution notebook, ``<name>_rubric.json`` for
``<name>_solution.ipynb``::

    {
      "title": "Module 3 homework",
      "tasks": [
        {
          "id": "1",
          "name": "Supervised baseline",
          "answers": ["25839804", "e0139466"],
          "written": [{"cell": "a4ca02a5", "points": 2, "what": "why BYOL and SimSiam"}],
          "checks": [
            {"cell": "20fc3a7b", "points": 2, "what": "validation loss and accuracy"},
            {"code": "assert history.steps", "after": "e0139466", "points": 1, "what": "..."}
          ]
        }
      ],
      "skip": {"92ad64ae": "why no check needs this cell"}
    }

- ``bonus``: ``true`` for an optional task: the points of its checks come on top of the
  homework's maximum (a solution that skips it still has full marks), and a submission that
  does not attempt it loses nothing.

- ``answers``: the cells the student fills in (those with a ``### BEGIN SOLUTION`` region in
  the solution); they are the only code taken from a submission, and they run, whatever they
  are (a function, a training run).
- ``written``: markdown cells the student answers in words, each ``{"cell", "points", "what"}``
  (a bare cell id is worth no points); taken from the submission, listed for staff in
  ``manual_review.md`` beside the solution's reference answer, and graded by hand: their points
  are not in the automatic score but in the ``manual_points`` column of ``grades.csv``.
- ``checks``: a course cell (``cell``) that awards its points when it runs without an error, or
  grading-only ``code`` run after the cell ``after`` (at the end when omitted).
- ``skip``: course cells the grader does not run because no check depends on them (slow
  demonstrations, plots), each with the reason.

Every answer cell of the solution belongs to exactly one task; :func:`load_rubric` checks the
rubric against the solution notebook and names what does not fit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from dlsaudio import notebooks

RUBRIC_SUFFIX = "_rubric.json"


@dataclass(frozen=True)
class Check:
    """One source of points: a course cell, grading-only code, or a staff check."""

    points: float
    what: str
    cell: str | None = None  # a course cell that passes when it runs without an error
    code: str | None = None  # or code run after the cell ``after``
    after: str | None = None  # None: at the end of the notebook
    private: bool = False  # from --extra-checks: its code is not shown in the feedback


@dataclass(frozen=True)
class Written:
    """A written answer, graded by hand."""

    cell: str
    points: float = 0.0
    what: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    name: str
    checks: tuple[Check, ...]
    answers: tuple[str, ...] = ()
    written: tuple[str, ...] = ()
    manual: tuple[Written, ...] = ()  # the written answers with their points
    bonus: bool = False  # optional: its points come on top of the maximum

    @property
    def max_points(self) -> float:
        """Points the grader awards automatically."""
        return sum(check.points for check in self.checks)

    @property
    def manual_max(self) -> float:
        """Points staff award by hand for the written answers."""
        return sum(w.points for w in self.manual)


@dataclass(frozen=True)
class Rubric:
    title: str
    tasks: tuple[Task, ...]
    solution: Path
    skip: dict[str, str] = field(default_factory=dict)

    @property
    def max_points(self) -> float:
        """Full marks: the points of every task but the bonus tasks."""
        return sum(task.max_points for task in self.tasks if not task.bonus)

    @property
    def bonus_points(self) -> float:
        """What the bonus tasks add on top of :attr:`max_points`."""
        return sum(task.max_points for task in self.tasks if task.bonus)

    @property
    def manual_max(self) -> float:
        return sum(task.manual_max for task in self.tasks)

    @property
    def answer_ids(self) -> set[str]:
        """The cells taken from a submission: code answers and written answers."""
        return {cid for t in self.tasks for cid in (*t.answers, *t.written)}

    @property
    def check_ids(self) -> set[str]:
        """The course cells that are checks."""
        return {c.cell for t in self.tasks for c in t.checks if c.cell}

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise ValueError(
            f"no task {task_id!r} in the rubric of {self.solution.name}; its tasks are "
            f"{[t.id for t in self.tasks]}"
        )

    def template(self) -> nbformat.NotebookNode:
        """The student copy, as build generates it: the course side of every cell."""
        root = notebooks.find_root(self.solution.parent)
        rel = self.solution.relative_to(root).as_posix()
        nb = notebooks.clean(nbformat.read(self.solution, as_version=4), rel)
        student = notebooks.make_student(nb, name=rel)
        target = notebooks.student_path(self.solution).relative_to(root).as_posix()
        return notebooks.clean(student, target)

    def with_checks(self, extra: dict[str, list[Check]]) -> Rubric:
        """This rubric with ``extra`` checks (task id -> checks) added to its tasks; a check
        without ``after`` runs right after the last cell of its task, so that a run stopped
        later keeps it."""
        for task_id in extra:
            self.task(task_id)
        order = [c.id for c in nbformat.read(self.solution, as_version=4).cells]
        tasks = []
        for t in self.tasks:
            cells = [*t.answers, *(c.cell or c.after for c in t.checks)]
            last = max((c for c in cells if c in order), key=order.index, default=None)
            added = tuple(
                c if c.after is not None else dataclasses.replace(c, after=last)
                for c in extra.get(t.id, [])
            )
            tasks.append(
                Task(t.id, t.name, t.checks + added, t.answers, t.written, t.manual, t.bonus)
            )
        return Rubric(self.title, tuple(tasks), self.solution, dict(self.skip))


def rubric_path(solution: Path) -> Path:
    """``homework_solution.ipynb`` -> ``homework_rubric.json``."""
    return solution.with_name(solution.name[: -len(notebooks.SOLUTION_SUFFIX)] + RUBRIC_SUFFIX)


def find_rubric(folder: Path) -> Path:
    """The one rubric in a module folder.

    Raises:
        FileNotFoundError: the folder or its rubric does not exist.
        ValueError: the folder holds several rubrics.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no module folder {folder}; pass e.g. week_03_ssl")
    found = sorted(folder.glob(f"*{RUBRIC_SUFFIX}"))
    if not found:
        raise FileNotFoundError(
            f"no rubric (*{RUBRIC_SUFFIX}) in {folder}; write one beside the solution notebook "
            "(see dlsaudio/grade/rubric.py)"
        )
    if len(found) > 1:
        raise ValueError(f"{folder} holds several rubrics {[p.name for p in found]}; keep one")
    return found[0]


def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _check(path: Path, task_id: str, raw: dict) -> Check:
    if not isinstance(raw, dict):
        raise _fail(path, f"task {task_id}: a check must be an object, got {raw!r}")
    unknown = set(raw) - {"cell", "code", "after", "points", "what"}
    if unknown:
        raise _fail(path, f"task {task_id}: unknown check keys {sorted(unknown)}")
    if ("cell" in raw) == ("code" in raw):
        raise _fail(path, f"task {task_id}: a check has either 'cell' or 'code', got {raw}")
    points = raw.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise _fail(path, f"task {task_id}: points must be a positive number, got {points!r}")
    if not isinstance(raw.get("what"), str) or not raw["what"].strip():
        raise _fail(path, f"task {task_id}: every check says 'what' it checks, in a few words")
    return Check(float(points), raw["what"], raw.get("cell"), raw.get("code"), raw.get("after"))


def _written(path: Path, task_id: str, raw) -> Written:
    if isinstance(raw, str):
        return Written(raw)
    if not isinstance(raw, dict) or "cell" not in raw:
        raise _fail(
            path,
            f"task {task_id}: a written answer is a cell id or {{'cell', 'points', 'what'}}, got {raw!r}",
        )
    unknown = set(raw) - {"cell", "points", "what"}
    if unknown:
        raise _fail(path, f"task {task_id}: unknown written-answer keys {sorted(unknown)}")
    points = raw.get("points", 0)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise _fail(path, f"task {task_id}: written points must be a number >= 0, got {points!r}")
    what = raw.get("what", "")
    if points and (not isinstance(what, str) or not what.strip()):
        raise _fail(path, f"task {task_id}: a written answer with points says 'what' is graded")
    return Written(str(raw["cell"]), float(points), what)


def load_rubric(path: str | Path) -> Rubric:
    """Read a rubric and check it against its solution notebook.

    Raises:
        FileNotFoundError: the rubric or its solution notebook does not exist.
        ValueError: the JSON is malformed, a task or check misses a field, a cell id is not in
            the notebook or has the wrong role, or an answer cell belongs to no task or two.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"rubric not found: {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise _fail(path, f"not valid JSON ({error})") from None
    solution = path.with_name(path.name[: -len(RUBRIC_SUFFIX)] + notebooks.SOLUTION_SUFFIX)
    if not solution.is_file():
        raise FileNotFoundError(f"{path}: its solution notebook {solution.name} is missing")
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list) or not raw["tasks"]:
        raise _fail(path, "expected an object with a non-empty list 'tasks'")
    tasks = []
    for number, task in enumerate(raw["tasks"], start=1):
        if not isinstance(task, dict) or not {"id", "name", "checks"} <= set(task):
            raise _fail(path, f"task {number} needs 'id', 'name' and 'checks'")
        checks = tuple(_check(path, str(task["id"]), c) for c in task["checks"])
        if not checks:
            raise _fail(path, f"task {task['id']} has no checks")
        manual = tuple(_written(path, str(task["id"]), w) for w in task.get("written", ()))
        bonus = task.get("bonus", False)
        if not isinstance(bonus, bool):
            raise _fail(path, f"task {task['id']}: 'bonus' is true or false, got {bonus!r}")
        tasks.append(
            Task(
                str(task["id"]),
                str(task["name"]),
                checks,
                tuple(task.get("answers", ())),
                tuple(w.cell for w in manual),
                manual,
                bonus,
            )
        )
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise _fail(path, f"task ids repeat: {ids}")
    skip = raw.get("skip", {})
    if not isinstance(skip, dict):
        raise _fail(path, "'skip' maps cell ids to the reason no check needs them")
    rubric = Rubric(str(raw.get("title", solution.stem)), tuple(tasks), solution, skip)
    _validate_cells(path, rubric)
    return rubric


def answer_cells(solution: nbformat.NotebookNode) -> list[str]:
    """Ids of the cells holding a solution region."""
    return [
        cell.id
        for cell in solution.cells
        if any(line.strip() == notebooks.BEGIN for line in cell.source.split("\n"))
    ]


def _validate_cells(path: Path, rubric: Rubric) -> None:
    nb = nbformat.read(rubric.solution, as_version=4)
    cells = {cell.id: cell for cell in nb.cells}
    regions = set(answer_cells(nb))
    owner: dict[str, str] = {}
    for task in rubric.tasks:
        for cell_id in (*task.answers, *task.written):
            if cell_id not in cells:
                raise _fail(path, f"task {task.id}: no cell {cell_id!r} in {rubric.solution.name}")
            if cell_id in owner:
                raise _fail(path, f"cell {cell_id} belongs to tasks {owner[cell_id]} and {task.id}")
            owner[cell_id] = task.id
        for cell_id in task.answers:
            if cell_id not in regions:
                raise _fail(path, f"task {task.id}: cell {cell_id} has no solution region")
        for cell_id in task.written:
            if cells[cell_id].cell_type != "markdown":
                raise _fail(
                    path, f"task {task.id}: written answer {cell_id} is not a markdown cell"
                )
        for check in task.checks:
            for cell_id in (check.cell, check.after):
                if cell_id is not None and cell_id not in cells:
                    raise _fail(
                        path, f"task {task.id}: no cell {cell_id!r} in {rubric.solution.name}"
                    )
            if check.cell is not None and (
                check.cell in regions or cells[check.cell].cell_type != "code"
            ):
                raise _fail(
                    path, f"task {task.id}: check cell {check.cell} must be a course code cell"
                )
    missing = sorted(regions - set(owner), key=list(cells).index)
    if missing:
        raise _fail(path, f"answer cells {missing} belong to no task; list each under 'answers'")
    checked = {c.cell for t in rubric.tasks for c in t.checks}
    for cell_id in rubric.skip:
        if cell_id not in cells or cell_id in regions or cell_id in owner or cell_id in checked:
            raise _fail(path, f"skip: {cell_id} is not a course cell that no check runs")
