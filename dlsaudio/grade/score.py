"""Points per task from a run, with the message that explains every lost point."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from dlsaudio.grade.assemble import Assembly
from dlsaudio.grade.rubric import Rubric
from dlsaudio.grade.run import RunResult, StepResult

NOT_ANSWERED = "not answered: fill in the cells marked # YOUR CODE HERE"
NOT_ATTEMPTED = "optional bonus task, not attempted: its points come on top of full marks"


@dataclass
class CheckScore:
    what: str
    points: float
    max: float
    reason: str = ""  # why the points were lost; empty when earned


@dataclass
class TaskScore:
    id: str
    name: str
    points: float
    max: float
    message: str
    checks: list[CheckScore] = field(default_factory=list)
    written: dict[str, bool] = field(default_factory=dict)  # cell id -> answered
    manual_max: float = 0.0  # points of the written answers, graded by hand
    written_text: dict[str, str] = field(default_factory=dict)  # cell id -> the student's text
    bonus: bool = False  # optional: its points come on top of full marks

    def to_dict(self) -> dict:
        return asdict(self)


def _fmt(points: float) -> str:
    return f"{points:g}"


def _reason(result: StepResult, task_results: list[StepResult]) -> str:
    """Why a check cell did not pass, in the student's terms."""
    if result.status == "not run":
        return f"did not run: {result.error}" if result.error else "did not run"
    if result.status == "timeout":
        return result.error
    if result.changed:
        return (
            f"your code changed {', '.join(result.changed[:3])} while this check ran, so the "
            "check does not count"
        )
    name, _, message = result.error.partition(": ")
    missing = re.fullmatch(r"name '(\w+)' is not defined", message)
    if name == "NameError" and missing:
        failed = [r for r in task_results if r.kind == "answer" and r.status != "ok"]
        cause = (
            f"; your cell {failed[0].cell_id} failed: {failed[0].error}"
            if failed
            else "; the cell that defines it did not run or did not define it"
        )
        return f"`{missing.group(1)}` is not defined{cause}"
    if name in ("AssertionError", "NotImplementedError") and message:
        return message
    return result.error


def score(rubric: Rubric, assembly: Assembly, run: RunResult) -> list[TaskScore]:
    """One :class:`TaskScore` per task of ``rubric``."""
    by_id = {r.cell_id: r for r in run.steps}
    scores = []
    for task in rubric.tasks:
        own = set(task.answers) | {assembly.checks[task.id, n] for n in range(len(task.checks))}
        task_results = [r for r in run.steps if r.cell_id in own]
        checks = []
        for n, check in enumerate(task.checks):
            result = by_id.get(assembly.checks[task.id, n])
            if result is None:
                reason = "did not run (the rubric skips its cell)"
            elif result.status == "ok" and not result.changed:
                reason = ""
            else:
                reason = _reason(result, task_results)
            checks.append(
                CheckScore(check.what, 0.0 if reason else check.points, check.points, reason)
            )
        points = sum(c.points for c in checks)
        answered = [assembly.answered.get(cid, False) for cid in task.answers]
        if points == 0 and task.answers and not any(answered):
            message = NOT_ATTEMPTED if task.bonus else NOT_ANSWERED
        elif all(not c.reason for c in checks):
            message = "all checks passed"
        else:
            message = "; ".join(
                f"{c.what}: {c.reason} (-{_fmt(c.max)})" for c in checks if c.reason
            )
        written = {cid: assembly.answered.get(cid, False) for cid in task.written}
        texts = {c.id: c.source for c in assembly.nb.cells if c.id in written}
        if written:
            missing = [cid for cid, done in written.items() if not done]
            worth = f" ({_fmt(task.manual_max)} points)" if task.manual_max else ""
            message += (
                f". Written answer {', '.join(missing)} is missing"
                if missing
                else f". Written answer{worth}: graded by hand"
            )
        scores.append(
            TaskScore(
                task.id,
                task.name,
                points,
                task.max_points,
                message,
                checks,
                written,
                task.manual_max,
                {cid: texts.get(cid, "") if written[cid] else "" for cid in written},
                task.bonus,
            )
        )
    return scores


def run_notes(assembly: Assembly, run: RunResult) -> list[str]:
    """What the guard put back and which limits were hit, in words, for the feedback."""
    kinds = {"answer": "your cell", "course": "the course cell", "check": "the check cell"}
    notes = []
    for result in run.steps:
        if result.changed_before:
            notes.append(
                f"Before {kinds[result.kind]} {result.cell_id} ran, {', '.join(result.changed_before)} "
                "had been changed (by code still running from an earlier cell?); the course's "
                "versions were put back."
            )
        if result.changed:
            where = (
                f"Your cell {result.cell_id} changed"
                if result.kind == "answer"
                else f"While {kinds[result.kind]} {result.cell_id} ran, your code changed"
            )
            notes.append(
                f"{where} {', '.join(result.changed)}; the course's code was put back, and the "
                "course's cells and checks ran with it."
            )
        if result.status == "timeout":
            notes.append(f"{kinds[result.kind].capitalize()} {result.cell_id}: {result.error}.")
        if result.status == "error" and re.search(
            r"MemoryError|can't allocate memory|Cannot allocate memory", result.error
        ):
            notes.append(
                f"{kinds[result.kind].capitalize()} {result.cell_id} ran out of memory (the "
                "grading limit); it failed and the run went on."
            )
        if result.status == "error" and "File too large" in result.error:
            notes.append(
                f"{kinds[result.kind].capitalize()} {result.cell_id} wrote a file past the "
                "grading limit on file size."
            )
    if run.stopped:
        first = next((r for r in run.steps if r.status == "not run"), None)
        notes.append(
            f"The run stopped: {run.stopped}."
            + (
                f" Cells from {first.cell_id} on did not run; the points of earlier checks stand."
                if first
                else ""
            )
        )
    return notes
