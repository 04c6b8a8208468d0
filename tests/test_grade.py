"""The grader: rubrics, assembly, isolation and scores, on a tiny course and on the real homework.

The batches run real kernels: a tiny course (seconds per notebook) for the limits and the
tampering the guard must undo, and the module 3 and module 11 homework for the scores the
course depends on. Each batch runs once per module (fixtures) and the tests read its results.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from dlsaudio import notebooks
from dlsaudio.grade import extra_check
from dlsaudio.grade.__main__ import main as grade_main
from dlsaudio.grade.assemble import assemble
from dlsaudio.grade.batch import find_submissions, grade_folder, load_extra_checks
from dlsaudio.grade.rubric import find_rubric, load_rubric
from dlsaudio.grade.sandbox import LIMITS, Limits, kernel_env

ROOT = Path(__file__).resolve().parents[1]
W3, W11 = ROOT / "week_03_ssl", ROOT / "week_11_low_resource"

# ---------------------------------------------------------------- a tiny course

TINY_CELLS = [
    ("md", None, "# Tiny homework"),
    ("code", None, "import os\nimport socket\nimport torch\nfrom dlsaudio.ssl import losses"),
    (
        "code",
        "add",
        "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
    ),
    ("code", "check-add", "assert add(2, 3) == 5, f'add(2, 3) should be 5, got {add(2, 3)}'"),
    (
        "code",
        "byol",
        "def byol(p, z):\n    ### BEGIN SOLUTION\n    return losses.byol_loss(p, z)\n    ### END SOLUTION",
    ),
    (
        "code",
        "check-byol",
        "p, z = torch.randn(4, 8), torch.randn(4, 8)\n"
        "assert torch.allclose(byol(p, z), losses.byol_loss(p, z)), 'byol is not the BYOL loss'",
    ),
    ("code", "answer", "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
    ("code", "check-answer", "assert answer == 42, f'answer should be 42, got {answer}'"),
    ("md", "why", "Why 42?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
    (
        "code",
        "check-offline",
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=3).close()\n"
        "except OSError:\n    pass\nelse:\n    raise AssertionError('the network is reachable')",
    ),
    (
        "code",
        "check-env",
        "assert 'GRADER_SECRET' not in os.environ, 'the grader leaked its environment'",
    ),
]
TINY_RUBRIC = {
    "title": "Tiny homework",
    "tasks": [
        {
            "id": "1",
            "name": "Add",
            "answers": ["add"],
            "checks": [{"cell": "check-add", "points": 2, "what": "add"}],
        },
        {
            "id": "2",
            "name": "BYOL",
            "answers": ["byol"],
            "checks": [{"cell": "check-byol", "points": 1, "what": "byol"}],
        },
        {
            "id": "3",
            "name": "Answer",
            "answers": ["answer"],
            "written": [{"cell": "why", "points": 2, "what": "why 42"}],
            "checks": [{"cell": "check-answer", "points": 1, "what": "the answer"}],
        },
        {
            "id": "4",
            "name": "Isolation",
            "checks": [
                {"cell": "check-offline", "points": 1, "what": "no network"},
                {"cell": "check-env", "points": 1, "what": "no grader environment"},
            ],
        },
    ],
}
# Cell limits just above what the slowest cell needs on a loaded 2-core machine (a few seconds),
# so the submissions that hit them (loops, sleeps) cost the suite as little time as possible.
TINY_LIMITS = Limits(
    cell_seconds=12, total_seconds=240, memory_mb=4096, disk_mb=100, file_mb=50, answer_seconds=5
)


def tiny_course(root: Path, rubric: dict | None = None) -> Path:
    """A repository with one tiny homework under ``root``; returns its module folder."""
    (root / "pyproject.toml").write_text("")
    (root / "dlsaudio").mkdir(exist_ok=True)
    module = root / "week_00"
    module.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    for kind, cell_id, source in TINY_CELLS:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(
            source
        )
        if cell_id:
            cell.id = cell_id
        nb.cells.append(cell)
    nbformat.write(nb, module / "homework_solution.ipynb")
    notebooks.build(root)
    (module / "homework_rubric.json").write_text(json.dumps(rubric or TINY_RUBRIC))
    return module


def _answered(module: Path) -> nbformat.NotebookNode:
    """The student copy with the solution's answers filled in, as a student hands it in."""
    nb = nbformat.read(module / "homework.ipynb", as_version=4)
    solution = nbformat.read(module / "homework_solution.ipynb", as_version=4)
    answers = {c.id: c.source for c in solution.cells}
    for cell in nb.cells:
        if "YOUR CODE HERE" in cell.source or notebooks.ANSWER_STUB in cell.source:
            cell.source = "\n".join(
                line
                for line in answers[cell.id].split("\n")
                if line.strip() not in (notebooks.BEGIN, notebooks.END)
            )
    return nb


def _set(nb, cell_id: str, source: str):
    next(c for c in nb.cells if c.id == cell_id).source = source
    return nb


TAMPERING = """def add(a, b):
    return a - b


import torch
from IPython import get_ipython

shell = get_ipython()
shell.input_transformers_post.append(lambda lines: ["pass\\n"])  # every later cell does nothing
losses.byol_loss = lambda p, z: torch.zeros(())  # the reference of the next check
torch.allclose = lambda *args, **kwargs: True  # what the check compares with
"""


def tiny_submissions(module: Path, folder: Path) -> dict[str, nbformat.NotebookNode]:
    """Submissions of the tiny homework, each testing one behaviour of the grader."""
    folder.mkdir()
    cases = {
        "solution": _answered(module),
        "unsolved": nbformat.read(module / "homework.ipynb", as_version=4),
        # wrong add and byol, with tampering that would make every check pass if it stayed;
        # the check of add edited to pass, and a cell added that claims success (one kernel for
        # the guard's undoing and the assembly's ignoring)
        "tampering": _set(
            _set(
                _set(_answered(module), "add", TAMPERING),
                "byol",
                "def byol(p, z):\n    return p.sum() * 0",
            ),
            "check-add",
            "print('OK')",
        ),
        # the byol cell ignores interrupts and loops: stopped, later checks not run (the loop
        # sleeps, so that it leaves the cores to the other tests while it waits to be stopped)
        "deaf_loop": _set(
            _answered(module),
            "byol",
            "import signal\nimport time\n\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    time.sleep(0.05)",
        ),
        # the answer cell fills the folder file by file: stopped at the disk limit
        "fills_disk": _set(
            _answered(module),
            "answer",
            "n = 0\nwhile True:\n    open(f'junk{n}', 'wb').write(b'0' * 2**23)\n    n += 1",
        ),
        # one file past the size limit fails with an error, and the run goes on to the private
        # check, which catches an add tuned to the public check only (one kernel for both)
        "big_file_tuned": _set(
            _set(
                _answered(module),
                "answer",
                "open('big', 'wb').write(b'0' * (60 * 2**20))\nanswer = 42",
            ),
            "add",
            "def add(a, b):\n    return 5 if (a, b) == (2, 3) else 0",
        ),
        "exits": _set(_answered(module), "answer", "exit()"),
    }
    reordered = _answered(module)
    reordered.cells = [reordered.cells[0], *reversed(reordered.cells[1:])]
    cases["reordered"] = reordered
    lost = _answered(module)
    for n, cell in enumerate(lost.cells):
        cell.id = f"fresh-{n}"
    cases["lost_ids"] = lost
    cases["tampering"].cells.insert(4, nbformat.v4.new_code_cell("print('OK: everything passed')"))
    for name, nb in cases.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "broken.ipynb").write_text("{ this is not json")
    return cases


PRIVATE_CHECKS = """
from dlsaudio.grade import extra_check


@extra_check(task="1", points=1, what="add on other numbers")
def add_other_numbers(add):
    assert add(-1, 2) == 1, f"add(-1, 2) should be 1, got {add(-1, 2)}"
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    module = tiny_course(root)
    tiny_submissions(module, root / "submissions")
    (root / "private.py").write_text(PRIVATE_CHECKS)
    start = time.perf_counter()
    os.environ["GRADER_SECRET"] = "a token the submissions must not see"
    try:
        batch = grade_folder(
            module,
            root / "submissions",
            root / "grades",
            jobs=2,
            extra_checks=root / "private.py",
            limits=TINY_LIMITS,
            progress=False,
        )
    finally:
        del os.environ["GRADER_SECRET"]
    print(f"\ntiny batch: {len(batch.results)} notebooks in {time.perf_counter() - start:.0f} s")
    return batch, {r["submission"]: r for r in batch.results}, root


def _points(result) -> dict[str, float]:
    return {t["id"]: t["points"] for t in result["tasks"]}


def _notes(result) -> str:
    return " ".join(result["notes"])


@pytest.mark.slow
def test_tiny_solution_scores_full_marks_with_nothing_to_report(tiny):
    _, results, _ = tiny
    solution = results["solution"]
    assert _points(solution) == {"1": 3, "2": 1, "3": 1, "4": 2}, solution["tasks"]
    assert solution["notes"] == []
    assert (
        solution["tasks"][2]["message"]
        == "all checks passed. Written answer (2 points): graded by hand"
    )
    assert solution["tasks"][2]["manual_max"] == 2
    assert "Because." in solution["tasks"][2]["written_text"]["why"]


@pytest.mark.slow
def test_tiny_unsolved_scores_zero_with_one_message_per_task(tiny):
    _, results, _ = tiny
    tasks = results["unsolved"]["tasks"]
    assert [t["points"] for t in tasks[:3]] == [0, 0, 0]
    assert all(t["message"].startswith("not answered") for t in tasks[:3])
    assert "Written answer why is missing" in tasks[2]["message"]


@pytest.mark.slow
def test_isolation_checks_pass_in_every_submission_that_reaches_them(tiny):
    _, results, _ = tiny
    for name in ("solution", "unsolved", "tampering", "reordered", "lost_ids", "big_file_tuned"):
        assert _points(results[name])["4"] == 2, (name, results[name]["tasks"][3])


@pytest.mark.slow
def test_tampering_with_cells_checks_and_the_package_gains_nothing(tiny):
    _, results, _ = tiny
    result = results["tampering"]
    assert _points(result) == {"1": 0, "2": 0, "3": 1, "4": 2}, result["tasks"]
    notes = _notes(result)
    for changed in (
        "shell.input_transformers_post",
        "dlsaudio.ssl.losses.byol_loss",
        "torch.allclose",
    ):
        assert changed in notes, notes
    assert "add(2, 3) should be 5, got -1" in result["tasks"][0]["message"]


@pytest.mark.slow
def test_an_edited_check_cell_and_added_cells_are_ignored_and_reported(tiny):
    _, results, _ = tiny
    result = results["tampering"]  # its add is wrong: the course's check fails it
    assert _points(result)["1"] == 0
    assert "add(2, 3) should be 5, got -1" in result["tasks"][0]["message"]
    notes = _notes(result)
    assert "You edited the check cell check-add" in notes and "1 cell(s) you added" in notes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "points", "says"),
    [
        # ignores the interrupt: the kernel is stopped, later checks do not run
        ("deaf_loop", {"1": 3, "2": 0, "3": 0, "4": 0}, "the kernel did not answer"),
        ("fills_disk", {"1": 3, "2": 1, "3": 0, "4": 0}, "more than 100 MB into its folder"),
        # a single file past the size limit is an error in that cell; the run goes on
        # (its add is tuned to the public check: task 1 loses the private check's point)
        ("big_file_tuned", {"1": 2, "2": 1, "3": 0, "4": 2}, "File too large"),
        ("exits", {"1": 3, "2": 1, "3": 0, "4": 0}, "the kernel exited"),
    ],
)
def test_a_run_that_breaks_a_limit_keeps_the_points_earned_before(tiny, case, points, says):
    _, results, _ = tiny
    result = results[case]
    assert _points(result) == points, result["tasks"]
    assert says in _notes(result) + " ".join(t["message"] for t in result["tasks"])


@pytest.mark.slow
def test_private_checks_catch_an_answer_tuned_to_the_public_check(tiny):
    _, results, _ = tiny
    result = results["big_file_tuned"]  # its answer cell writes a file past the limit too
    assert _points(result)["1"] == 2, result["tasks"]
    message = result["tasks"][0]["message"]
    assert "add on other numbers: add(-1, 2) should be 1, got 0 (-1)" in message


@pytest.mark.slow
def test_reordered_cells_and_lost_cell_ids_still_grade(tiny):
    _, results, _ = tiny
    assert _points(results["reordered"]) == {"1": 3, "2": 1, "3": 1, "4": 2}
    assert "another order" in _notes(results["reordered"])
    assert _points(results["lost_ids"]) == {"1": 3, "2": 1, "3": 1, "4": 2}
    assert "found by its position" in _notes(results["lost_ids"])


@pytest.mark.slow
def test_an_unreadable_notebook_scores_zero_with_the_reason(tiny):
    _, results, _ = tiny
    assert all(t["points"] == 0 for t in results["broken"]["tasks"])
    assert results["broken"]["tasks"][0]["message"].startswith("your notebook could not be read")


@pytest.mark.slow
def test_batch_writes_grades_feedback_and_summary(tiny):
    batch, results, root = tiny
    out = root / "grades"
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert set(rows[0]) == {
        "submission",
        "task",
        "points",
        "max",
        "message",
        "manual_points",
        "manual_points_max",
    }
    assert len(rows) == len(results) * 5  # four tasks and a total per submission
    solution_total = next(r for r in rows if r["submission"] == "solution" and r["task"] == "total")
    assert (solution_total["points"], solution_total["max"]) == ("7", "7")
    # the written answer's points: empty for staff to fill, worth 2
    assert (solution_total["manual_points"], solution_total["manual_points_max"]) == ("", "2")
    written_row = next(
        r for r in rows if r["submission"] == "solution" and r["task"].startswith("3.")
    )
    assert written_row["manual_points_max"] == "2"
    review = (out / "manual_review.md").read_text()
    assert (
        "## Task 3. Answer: cell why (2 points)" in review and "What is graded: why 42." in review
    )
    reference = review.split("**Reference answer**")[1].split("### `", 1)[0]
    assert "> Because." in reference and "BEGIN SOLUTION" not in reference
    assert "Because." in review.split("### `solution`")[1].split("### `")[0]
    assert "*(no answer)*" in review.split("### `unsolved`")[1].split("### `")[0]
    assert "(2 points, not in the score above)" in (out / "feedback" / "solution.md").read_text()
    assert "manual_review.md" in (out / "summary.md").read_text()
    page = (out / "feedback" / "tampering.md").read_text()
    assert "**Score: 3 / 7**" in page and "What the grader ignored" in page
    summary = (out / "summary.md").read_text()
    assert "score_histogram.png" in summary and "task_pass_rate.png" in summary
    for png in ("score_histogram.png", "task_pass_rate.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / "executed" / "solution.ipynb").is_file()
    assert batch.changed_package == []


def test_the_in_kernel_network_guard_alone_also_refuses_the_network(tmp_path, monkeypatch):
    module = tiny_course(tmp_path)
    (tmp_path / "subs").mkdir()
    nbformat.write(_answered(module), tmp_path / "subs" / "solution.ipynb")
    monkeypatch.setenv("GRADER_SECRET", "x")
    batch = grade_folder(
        module,
        tmp_path / "subs",
        tmp_path / "out",
        limits=TINY_LIMITS,
        progress=False,
        network="guard",
    )
    assert batch.network == "guard"
    assert _points(batch.results[0]) == {"1": 2, "2": 1, "3": 1, "4": 2}


# ---------------------------------------------------------------- rubric and argument errors


def _rubric_with(tmp_path, change) -> Path:
    module = tiny_course(tmp_path)
    rubric = json.loads(json.dumps(TINY_RUBRIC))
    change(rubric)
    (module / "homework_rubric.json").write_text(json.dumps(rubric))
    return module / "homework_rubric.json"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(tasks=[]), "non-empty list 'tasks'"),
        (lambda r: r["tasks"][0].pop("checks"), "task 1 needs 'id', 'name' and 'checks'"),
        (lambda r: r["tasks"][0].update(checks=[]), "task 1 has no checks"),
        (lambda r: r["tasks"][1].update(id="1"), "task ids repeat"),
        (lambda r: r["tasks"][0]["checks"][0].update(points=0), "points must be a positive number"),
        (
            lambda r: r["tasks"][0]["checks"][0].update(points=True),
            "points must be a positive number",
        ),
        (lambda r: r["tasks"][0]["checks"][0].pop("what"), "says 'what' it checks"),
        (lambda r: r["tasks"][0]["checks"][0].update(code="1"), "either 'cell' or 'code'"),
        (lambda r: r["tasks"][0]["checks"][0].update(weight=1), "unknown check keys"),
        (lambda r: r["tasks"][0]["checks"][0].update(cell="nope"), "no cell 'nope'"),
        (lambda r: r["tasks"][0]["checks"][0].update(cell="add"), "must be a course code cell"),
        (lambda r: r["tasks"][0].update(answers=["check-add"]), "has no solution region"),
        (lambda r: r["tasks"][0].update(answers=[]), r"answer cells \['add'\] belong to no task"),
        (lambda r: r["tasks"][1]["answers"].append("add"), "belongs to tasks 1 and 2"),
        (lambda r: r["tasks"][2].update(written=["check-answer"]), "is not a markdown cell"),
        (
            lambda r: r["tasks"][2].update(written=[{"cell": "why", "points": -1, "what": "x"}]),
            "written points must be a number >= 0",
        ),
        (
            lambda r: r["tasks"][2].update(written=[{"cell": "why", "points": 2}]),
            "a written answer with points says 'what' is graded",
        ),
        (
            lambda r: r["tasks"][2].update(written=[{"cell": "why", "mark": 2}]),
            "unknown written-answer keys",
        ),
        (lambda r: r["tasks"][2].update(written=[3]), "a written answer is a cell id or"),
        (lambda r: r.update(skip={"check-add": "x"}), "not a course cell that no check runs"),
        (lambda r: r.update(skip=["x"]), "'skip' maps cell ids"),
        (lambda r: r["tasks"][1].update(bonus="yes"), "'bonus' is true or false, got 'yes'"),
    ],
)
def test_load_rubric_names_what_does_not_fit(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load_rubric(_rubric_with(tmp_path, change))


def test_a_bonus_task_adds_points_on_top_of_full_marks(tmp_path):
    from dlsaudio.grade.report import feedback, total

    rubric = load_rubric(_rubric_with(tmp_path, lambda r: r["tasks"][1].update(bonus=True)))
    assert [t.bonus for t in rubric.tasks] == [False, True, False, False]
    assert rubric.max_points == 5 and rubric.bonus_points == 1  # of 2 + 1 + 1 + 2

    def task(id, points, most, message, bonus=False):
        checks = [{"what": f"check {id}", "points": points, "max": most, "reason": ""}]
        if points < most:
            checks[0]["reason"] = "wrong"
        return {
            "id": id,
            "name": f"task {id}",
            "points": points,
            "max": most,
            "message": message,
            "checks": checks,
            "bonus": bonus,
        }

    solved = [task("1", 3, 3, "all checks passed"), task("4", 2, 2, "all checks passed")]
    skipped = task("2", 0, 1, "optional bonus task, not attempted: ...", bonus=True)
    failed = task("2", 0, 1, "check 2: wrong (-1)", bonus=True)
    done = task("2", 1, 1, "all checks passed", bonus=True)
    assert total({"tasks": [*solved, skipped]}) == (5, 5)  # full marks without the bonus
    assert total({"tasks": [*solved, done]}) == (6, 5)
    page = feedback({"submission": "s", "tasks": [*solved, skipped]}, rubric)
    assert "**Score: 5 / 5**" in page and "| 2. task 2 (bonus) | 0 | 1 | not attempted |" in page
    assert "Where points were lost" not in page
    page = feedback({"submission": "s", "tasks": [*solved, failed]}, rubric)
    assert "### 2. task 2 (bonus)" in page and "**check 2** (-1): wrong" in page


def test_load_rubric_rejects_bad_json_and_missing_files(tmp_path):
    path = _rubric_with(tmp_path, lambda r: None)
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_rubric(path)
    with pytest.raises(FileNotFoundError, match="rubric not found"):
        load_rubric(tmp_path / "nope_rubric.json")
    path.write_text(json.dumps(TINY_RUBRIC))
    (tmp_path / "week_00" / "homework_solution.ipynb").unlink()
    with pytest.raises(
        FileNotFoundError, match="solution notebook homework_solution.ipynb is missing"
    ):
        load_rubric(path)


def test_find_rubric_needs_exactly_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="no module folder"):
        find_rubric(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no rubric"):
        find_rubric(tmp_path)
    (tmp_path / "a_rubric.json").write_text("{}")
    (tmp_path / "b_rubric.json").write_text("{}")
    with pytest.raises(ValueError, match="several rubrics"):
        find_rubric(tmp_path)


def test_the_course_rubrics_cover_every_answer_cell():
    w3 = load_rubric(W3 / "homework_rubric.json")
    assert [t.max_points for t in w3.tasks] == [3, 3, 5, 2, 2] and w3.max_points == 13
    assert [t.bonus for t in w3.tasks] == [False] * 4 + [True] and w3.bonus_points == 2
    w11 = load_rubric(W11 / "homework_rubric.json")
    assert [t.id for t in w11.tasks] == ["1", "2"]


def test_extra_checks_are_validated(tmp_path):
    with pytest.raises(ValueError, match="points must be a positive number"):
        extra_check(task="1", points=0)
    with pytest.raises(FileNotFoundError, match="extra checks not found"):
        load_extra_checks(tmp_path / "nope.py")
    (tmp_path / "empty.py").write_text("def f(): pass\n")
    with pytest.raises(ValueError, match="no check found"):
        load_extra_checks(tmp_path / "empty.py")
    module = tiny_course(tmp_path)
    (tmp_path / "wrong_task.py").write_text(PRIVATE_CHECKS.replace('task="1"', 'task="9"'))
    (tmp_path / "subs").mkdir()
    nbformat.write(_answered(module), tmp_path / "subs" / "a.ipynb")
    with pytest.raises(ValueError, match="no task '9'"):
        grade_folder(
            module, tmp_path / "subs", tmp_path / "out", extra_checks=tmp_path / "wrong_task.py"
        )


def test_grade_folder_checks_its_arguments(tmp_path):
    module = tiny_course(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="mode must be one of"):
        grade_folder(module, tmp_path / "empty", tmp_path / "out", mode="fast")
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        grade_folder(module, tmp_path / "empty", tmp_path / "out", jobs=0)
    with pytest.raises(ValueError, match="network must be one of"):
        grade_folder(module, tmp_path / "empty", tmp_path / "out", network="off")
    with pytest.raises(ValueError, match="no .ipynb file in"):
        find_submissions(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no submissions folder"):
        find_submissions(tmp_path / "nope")


def test_command_line_reports_errors_and_rejects_bad_limits(tmp_path, capsys):
    assert grade_main([str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "error: no module folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade_main(
            ["week_03_ssl", str(tmp_path), "--out", str(tmp_path / "o"), "--cell-timeout", "0"]
        )
    assert "--cell-timeout must be positive" in capsys.readouterr().err


def test_assemble_takes_only_answer_cells_from_the_submission(tmp_path):
    module = tiny_course(tmp_path)
    rubric = load_rubric(module / "homework_rubric.json")
    template = rubric.template()
    submission = _answered(module)
    _set(submission, "check-add", "print('OK')")
    _set(submission, "add", "def add(a, b):\n    return 7")
    submission.cells = [c for c in submission.cells if c.id != "byol"]
    assembly = assemble(rubric, template, submission)
    sources = {c.id: c.source for c in assembly.nb.cells}
    assert sources["add"] == "def add(a, b):\n    return 7"
    assert sources["check-add"] == next(c.source for c in template.cells if c.id == "check-add")
    assert "raise NotImplementedError()" in sources["byol"]
    assert assembly.answered == {"add": True, "byol": False, "answer": True, "why": True}
    assert any("Answer cell byol (cell 6) of task 2 is missing" in n for n in assembly.notes)
    assert [s.kind for s in assembly.steps][:4] == ["course", "course", "answer", "check"]


def test_kernel_environment_is_minimal_offline_and_follows_the_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "token")
    monkeypatch.setenv("DLSAUDIO_COMMON_VOICE", "/data/ky")
    smoke = kernel_env(tmp_path / "work", tmp_path / "package", "smoke")
    assert "GRADER_SECRET" not in smoke and smoke["DLSAUDIO_COMMON_VOICE"] == "/data/ky"
    assert smoke["DLSAUDIO_SMOKE"] == "1" and smoke["HF_HUB_OFFLINE"] == "1"
    assert smoke["HOME"] == smoke["TMPDIR"] == str(tmp_path / "work")
    assert smoke["https_proxy"] == smoke["HTTPS_PROXY"] == "http://127.0.0.1:9"
    assert smoke["PYTHONPATH"] == str(tmp_path / "package") and "HF_HOME" not in smoke
    full = kernel_env(tmp_path / "work", tmp_path / "package", "full")
    assert full["DLSAUDIO_SMOKE"] == "0" and full["HF_HOME"], (
        "full mode loads cached models offline"
    )


def test_limits_are_written_once_per_mode():
    assert set(LIMITS) == {"smoke", "full"}
    assert LIMITS["smoke"].cell_seconds < LIMITS["full"].cell_seconds


# ---------------------------------------------------------------- the module 3 homework


def _solved(path: Path) -> nbformat.NotebookNode:
    """A solution notebook as a student who solved everything hands it in (no markers)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.source = "\n".join(
            line
            for line in cell.source.split("\n")
            if line.strip() not in (notebooks.BEGIN, notebooks.END)
        )
    return nb


BYOL_WITHOUT_STOP_GRADIENT = """def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    p = F.normalize(p, dim=1)
    z = F.normalize(z, dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()"""


INFO_NCE_WITHOUT_MASK = """def info_nce(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / tau
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, partner)"""

BYOL_TRAINS = "BYOL trains with your training_step and target update without collapsing"

# Answers that hand their task to the package: InfoNCE under another name, BYOL's training
# step through super().
INFO_NCE_DELEGATED = """from dlsaudio.ssl.losses import info_nce as _info_nce


def info_nce(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    return _info_nce(z1, z2, tau)"""


def _byol_step_through_super(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = next(c for c in nb.cells if c.id == "6e66629d")
    start = cell.source.index("        p1, p2, t1, t2, z1, z2 = self(x1, x2)")
    end = cell.source.index("        return StepOutput(loss, z1, z2)\n", start)
    cell.source = (
        cell.source[:start]
        + "        return super().training_step(x1, x2)\n"
        + cell.source[end + len("        return StepOutput(loss, z1, z2)\n") :]
    )
    return nb


# The bonus task answered wrongly: single frames masked instead of spans, and the targets
# handed to the package.
SPAN_MASK_PER_FRAME = """def span_mask(batch, frames, mask_prob, span, generator=None):
    return torch.rand(batch, frames, generator=generator) < mask_prob"""
DATA2VEC_TARGETS_DELEGATED = """from dlsaudio.ssl import data2vec_targets as _targets


def data2vec_targets(layer_outputs, top_k):
    return _targets(layer_outputs, top_k)"""


#: answer cells of task 4 (and two course cells), deleted in one submission
DELETED_CELLS = {"45ae5d01", "923eec49", "20fc3a7b", "e002f143"}


def homework_submissions(folder: Path) -> None:
    """The module 3 submissions: solution, unsolved, a wrong InfoNCE, BYOL loss and bonus
    answers, answers that call the package's, tampered checks with cells deleted, one cell that
    sleeps forever and one that allocates without bound."""
    folder.mkdir()
    cases = {"solution": _solved(W3 / "homework_solution.ipynb")}
    cases["unsolved"] = nbformat.read(W3 / "homework.ipynb", as_version=4)
    # three mistakes in three tasks, one notebook (two kernel runs less): each costs its own
    # task's checks and nothing else
    cases["wrong_answers"] = _set(
        _set(
            _set(
                _set(_solved(W3 / "homework_solution.ipynb"), "b7c8d9e0", INFO_NCE_WITHOUT_MASK),
                "94568382",
                BYOL_WITHOUT_STOP_GRADIENT,
            ),
            "d2a70002",
            SPAN_MASK_PER_FRAME,
        ),
        "d2a70005",
        DATA2VEC_TARGETS_DELEGATED,
    )
    cases["delegated"] = _byol_step_through_super(
        _set(_solved(W3 / "homework_solution.ipynb"), "b7c8d9e0", INFO_NCE_DELEGATED)
    )
    # tampered checks, and answer cells of another task deleted (one kernel run less)
    tampered = _solved(W3 / "homework_solution.ipynb")
    _set(
        tampered,
        "94568382",
        BYOL_WITHOUT_STOP_GRADIENT + '\n\n\nchecks.check_byol_loss = lambda fn: print("OK")',
    )
    _set(
        tampered,
        "59f25aa7",
        "def byol_momentum(progress, tau_base=0.996):\n    return tau_base + (1 - tau_base) * progress",
    )
    _set(
        tampered,
        "b5ae6b2a",
        'print("OK: `byol_momentum` follows BYOL\'s cosine momentum schedule.")',
    )
    simsiam = next(c for c in tampered.cells if c.id == "1fb75593")
    simsiam.source = simsiam.source.replace(
        "negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2",
        "negative_cosine(p1, z1) / 2 + negative_cosine(p2, z2) / 2",
    ) + (
        "\n\n\nclass _AllPass:\n    def __getattr__(self, name):\n"
        "        return lambda *args, **kwargs: print('OK')\n\n\nchecks = _AllPass()"
    )
    tampered.cells = [c for c in tampered.cells if c.id not in DELETED_CELLS]
    cases["tampered_checks_deleted_cells"] = tampered
    # one cell sleeps forever (stopped at its time limit), a later one allocates without bound
    # (stopped at the memory limit): the run goes on after each
    limits = _solved(W3 / "homework_solution.ipynb")
    momentum = next(c for c in limits.cells if c.id == "59f25aa7")
    momentum.source = "import time\n\ntime.sleep(10**9)\n\n" + momentum.source
    ema = next(c for c in limits.cells if c.id == "4735c03e")
    ema.source = (
        "def _hog():\n    kept = []\n    while True:\n        kept.append(bytearray(2**26))\n\n\n_hog()\n\n"
        + ema.source
    )
    cases["past_its_limits"] = limits
    for name, nb in cases.items():
        nbformat.write(nb, folder / f"{name}.ipynb")


HOMEWORK_LIMITS = Limits(
    cell_seconds=30, total_seconds=900, memory_mb=4096, disk_mb=512, file_mb=256
)
# A module 3 run in smoke mode needs between 1.28 and 1.5 GB of the kernel's data limit (module
# 11's Whisper needs more than 2.5), so 2.5 GB is ample, and the submission that allocates without
# bound writes 2.5 GB, not 4, before it is stopped: on a loaded machine writing 4 GB took longer
# than the 30 s a cell may run.
MODULE3_LIMITS = replace(HOMEWORK_LIMITS, memory_mb=2560)


@pytest.fixture(scope="module")
def module3(tmp_path_factory):
    root = tmp_path_factory.mktemp("week03")
    homework_submissions(root / "submissions")
    start = time.perf_counter()
    # three jobs on two cores: one run spends 30 s waiting for its sleeping cell to time out
    batch = grade_folder(
        W3, root / "submissions", root / "grades", jobs=3, limits=MODULE3_LIMITS, progress=False
    )
    print(
        f"\nmodule 3 batch: {len(batch.results)} notebooks in {time.perf_counter() - start:.0f} s with 3 jobs"
    )
    return {r["submission"]: r for r in batch.results}


@pytest.mark.slow
def test_module3_solution_scores_full_marks(module3):
    result = module3["solution"]
    assert _points(result) == {"1": 3, "2": 3, "3": 5, "4": 2, "5": 2}, result["tasks"]
    assert result["notes"] == []


@pytest.mark.slow
def test_module3_unsolved_scores_zero_with_one_message_per_task(module3):
    tasks = module3["unsolved"]["tasks"]
    assert [t["points"] for t in tasks] == [0, 0, 0, 0, 0]
    assert [t["message"].split(".")[0] for t in tasks] == [
        "not answered: fill in the cells marked # YOUR CODE HERE"
    ] * 4 + ["optional bonus task, not attempted: its points come on top of full marks"]


def _lost(task: dict) -> dict[str, str]:
    return {c["what"]: c["reason"] for c in task["checks"] if c["reason"]}


@pytest.mark.slow
def test_module3_wrong_loss_loses_its_checks_only(module3):
    result = module3["wrong_answers"]  # a wrong InfoNCE (task 2) and bonus (task 5) too
    assert _points(result) == {"1": 3, "2": 1, "3": 3, "4": 2, "5": 0}, result["tasks"]
    # the loss check and, through one step of the trained model, BYOL's training check
    assert "missing stop-gradient: gradient flows into z" in result["tasks"][2]["message"]
    lost = _lost(result["tasks"][2])
    assert set(lost) == {"BYOL loss with its stop-gradient (byol_loss)", BYOL_TRAINS}, lost
    assert "gradient into the target networks" in lost[BYOL_TRAINS], lost


@pytest.mark.slow
def test_module3_wrong_info_nce_loses_the_loss_check_and_says_why(module3):
    result = module3["wrong_answers"]  # wrong BYOL loss (task 3) and bonus (task 5) too
    assert (_points(result)["1"], _points(result)["2"]) == (3, 1), result["tasks"]
    assert "mask the diagonal of the similarity matrix" in result["tasks"][1]["message"]
    lost = _lost(result["tasks"][1])
    assert set(lost) == {"InfoNCE with each row's own denominator (info_nce)"}, lost


@pytest.mark.slow
def test_module3_wrong_bonus_answers_lose_the_bonus_and_say_why(module3):
    result = module3["wrong_answers"]  # wrong InfoNCE (task 2) and BYOL loss (task 3) too
    assert _points(result)["5"] == 0, result["tasks"]
    lost = _lost(result["tasks"][4])
    assert "masked frames are not contiguous spans" in lost["data2vec's span mask (span_mask)"]
    refused = [reason for what, reason in lost.items() if "span_mask" not in what]
    assert len(refused) == 2 and all(
        "dlsaudio.ssl.masked.data2vec_targets" in reason for reason in refused
    ), lost


@pytest.mark.slow
def test_module3_delegated_answers_lose_their_checks_and_the_feedback_says_so(module3):
    result = module3["delegated"]
    lost = {
        c["what"]: c["reason"] for task in result["tasks"] for c in task["checks"] if c["reason"]
    }
    assert set(lost) == {
        "InfoNCE with each row's own denominator (info_nce)",
        "HomeworkContrastive trains with your training_step without collapsing",
        BYOL_TRAINS,
    }, lost
    info_nce = lost["InfoNCE with each row's own denominator (info_nce)"]
    assert "`info_nce` hands its task to the package" in info_nce
    assert "dlsaudio.ssl.losses.info_nce" in info_nce
    assert "hands its task to the package" in lost[BYOL_TRAINS]
    assert "dlsaudio.ssl.non_contrastive.BYOL.training_step" in lost[BYOL_TRAINS]
    assert "hands its task to the package" in result["tasks"][1]["message"]
    assert _points(result)["1"] == 3 and _points(result)["4"] == 2, result["tasks"]


@pytest.mark.slow
def test_module3_tampered_checks_gain_nothing(module3):
    result = module3["tampered_checks_deleted_cells"]  # task 4's answer cells deleted too
    lost = {c["what"]: c["reason"] for c in result["tasks"][2]["checks"] if c["reason"]}
    assert set(lost) >= {
        "BYOL loss with its stop-gradient (byol_loss)",
        "BYOL's cosine momentum schedule (byol_momentum)",
        "SimSiam loss with its stop-gradient (simsiam_loss)",
    }, lost
    assert "missing stop-gradient" in lost["BYOL loss with its stop-gradient (byol_loss)"]
    assert "compares p1 with z1" in lost["SimSiam loss with its stop-gradient (simsiam_loss)"]
    assert _points(result)["1"] == 3 and _points(result)["2"] == 3
    notes = _notes(result)
    assert "dlsaudio.ssl.checks.check_byol_loss" in notes
    assert "You edited the check cell b5ae6b2a" in notes
    assert "the name `checks` of your notebook" in notes


@pytest.mark.slow
def test_module3_a_cell_past_its_limit_loses_its_task_and_the_rest_is_graded(module3):
    """One cell is stopped at its time limit, a later one fails at the memory limit; BYOL, which
    trains with the functions they should have defined, fails with them; the run goes on after
    each, and everything else scores as in the solution."""
    result = module3["past_its_limits"]
    points = _points(result)
    assert (points["1"], points["2"], points["4"]) == (3, 3, 2), result["tasks"]
    failed = {c["what"] for c in result["tasks"][2]["checks"] if c["reason"]}
    assert failed == {
        "BYOL's cosine momentum schedule (byol_momentum)",
        "the EMA update of the target (ema_update)",
        BYOL_TRAINS,
    }, result["tasks"][2]
    # the bonus's data2vec trains with task 3's moving average
    assert set(_lost(result["tasks"][4])) == {
        "HomeworkData2Vec trains with your mask, targets and moving average without collapsing"
    }, result["tasks"][4]
    cells = {c["cell_id"]: c for c in result["run"]["cells"]}
    assert cells["59f25aa7"]["status"] == "timeout", cells["59f25aa7"]
    assert "stopped after 30 s" in cells["59f25aa7"]["error"]
    assert cells["4735c03e"]["status"] == "error", cells["4735c03e"]
    notes = _notes(result)
    assert "stopped after 30 s" in notes and "ran out of memory" in notes, notes
    assert all(c["status"] != "not run" for c in cells.values()), "the run stopped early"
    assert result["run"]["peak_memory_mb"] < MODULE3_LIMITS.memory_mb + 512


@pytest.mark.slow
def test_module3_deleted_cells_run_from_the_course(module3):
    result = module3["tampered_checks_deleted_cells"]  # tampered checks of task 3 too
    points = _points(result)
    assert (points["1"], points["2"], points["4"], points["5"]) == (3, 3, 0, 2), result["tasks"]
    assert result["tasks"][3]["message"].startswith("not answered")
    notes = _notes(result)
    assert "Answer cell 45ae5d01" in notes and "are not in your notebook; the course's ran" in notes


# ---------------------------------------------------------------- the module 11 homework


@pytest.fixture(scope="module")
def module11(tmp_path_factory):
    root = tmp_path_factory.mktemp("week11")
    (root / "submissions").mkdir()
    nbformat.write(
        _solved(W11 / "homework_solution.ipynb"), root / "submissions" / "solution.ipynb"
    )
    nbformat.write(
        nbformat.read(W11 / "homework.ipynb", as_version=4), root / "submissions" / "unsolved.ipynb"
    )
    batch = grade_folder(
        W11, root / "submissions", root / "grades", jobs=2, limits=HOMEWORK_LIMITS, progress=False
    )
    return {r["submission"]: r for r in batch.results}


@pytest.mark.slow
def test_module11_solution_scores_full_marks_and_unsolved_zero(module11):
    assert _points(module11["solution"]) == {"1": 5, "2": 5}, module11["solution"]["tasks"]
    assert module11["solution"]["notes"] == []
    unsolved = module11["unsolved"]["tasks"]
    assert [t["points"] for t in unsolved] == [0, 0]
    assert all(t["message"].startswith("not answered") for t in unsolved)


def test_torchs_own_step_hook_is_not_tampering_but_a_lookalike_is():
    """An optimizer subclass (a check's counting optimizer) has its ``step`` wrapped by torch
    on first use; that is accepted, a function that only claims to be the wrapper is not."""
    import torch

    from dlsaudio.grade.guard import _hooked_by_torch

    class Counting(torch.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    original = Counting.__dict__["step"]
    Counting([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert _hooked_by_torch(Counting.__dict__["step"], original)

    def lookalike(*args, **kwargs):
        return None

    lookalike.hooked, lookalike.__wrapped__ = True, original
    assert not _hooked_by_torch(lookalike, original)


def test_an_error_without_a_message_is_explained():
    from dlsaudio.grade.run import _error_text

    assert _error_text("ValueError", "bad") == "ValueError: bad"
    assert "more memory than the grading limit" in _error_text("MemoryError", "")
    assert _error_text("KeyboardInterrupt", "") == "KeyboardInterrupt (raised without a message)"


@pytest.mark.parametrize("module", [W3, W11], ids=lambda m: m.name)
def test_the_course_rubrics_give_every_written_answer_points_and_a_reference(module):
    rubric = load_rubric(find_rubric(module))
    written = [w for task in rubric.tasks for w in task.manual]
    assert written and all(w.points > 0 and w.what for w in written)
    assert rubric.manual_max == sum(w.points for w in written)
    cells = {c.id: c.source for c in nbformat.read(rubric.solution, as_version=4).cells}
    for w in written:
        lines = [line.strip() for line in cells[w.cell].split("\n")]
        assert notebooks.BEGIN in lines and notebooks.END in lines, w.cell
        region = lines[lines.index(notebooks.BEGIN) + 1 : lines.index(notebooks.END)]
        assert len(" ".join(region)) > 200, f"{w.cell}: the reference answer is too short"
