"""What grading writes: ``grades.csv``, a feedback page per submission, a one-page summary."""

from __future__ import annotations

import csv
from pathlib import Path

from dlsaudio import notebooks
from dlsaudio.grade.rubric import Rubric

# manual_points stays empty for staff to fill in from manual_review.md; manual_points_max is
# what the task's written answers are worth.
CSV_COLUMNS = (
    "submission",
    "task",
    "points",
    "max",
    "message",
    "manual_points",
    "manual_points_max",
)
TOTAL = "total"
HOW_GRADING_WORKS = (
    "How this was graded: the course's own notebook ran, cell by cell, with your answer cells "
    "(the ones marked `# YOUR CODE HERE` / *YOUR ANSWER HERE*) taken from your submission; every "
    "other cell and every check came from the course. It ran in smoke mode (`DLSAUDIO_SMOKE=1`: "
    "the bundled sample, small sizes), without network and within time and memory limits, so "
    "your training cells ran too, on small data. To see the same messages, run the self-check "
    "cells of your notebook."
)


def _fmt(points: float) -> str:
    return f"{points:g}"


def total(result: dict) -> tuple[float, float]:
    """``(points, full marks)``: the points include a bonus task's, full marks do not."""
    return (
        sum(t["points"] for t in result["tasks"]),
        sum(t["max"] for t in result["tasks"] if not t.get("bonus")),
    )


def _title(task: dict) -> str:
    return f"{task['id']}. {task['name']}" + (" (bonus)" if task.get("bonus") else "")


def _missed(task: dict) -> bool:
    """Points to explain: short of the task's maximum, unless a bonus task was not tried."""
    skipped = task.get("bonus") and task["message"].startswith("optional bonus task")
    return task["points"] < task["max"] and not skipped


def write_csv(results: list[dict], path: Path) -> None:
    """One row per submission and task, and a ``total`` row per submission whose message
    summarises what the grader ignored or stopped."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            for task in result["tasks"]:
                writer.writerow(
                    [
                        result["submission"],
                        _title(task),
                        _fmt(task["points"]),
                        _fmt(task["max"]),
                        task["message"],
                        "",
                        _fmt(task.get("manual_max", 0.0)),
                    ]
                )
            points, most = total(result)
            notes = result.get("notes", [])
            message = f"{len(notes)} note(s) in the feedback: " + " ".join(notes) if notes else ""
            manual = sum(t.get("manual_max", 0.0) for t in result["tasks"])
            writer.writerow(
                [result["submission"], TOTAL, _fmt(points), _fmt(most), message, "", _fmt(manual)]
            )


def feedback(result: dict, rubric: Rubric) -> str:
    """The feedback page of one submission, in Markdown, for the student."""
    points, most = total(result)
    lines = [
        f"# {rubric.title}: feedback for `{result['submission']}`",
        "",
        f"**Score: {_fmt(points)} / {_fmt(most)}**",
        "",
        "| task | points | max | |",
        "|---|---:|---:|---|",
    ]
    for task in result["tasks"]:
        verdict = "full marks" if task["points"] == task["max"] else "see below"
        verdict = "not attempted" if task["points"] < task["max"] and not _missed(task) else verdict
        lines.append(
            f"| {_title(task)} | {_fmt(task['points'])} | {_fmt(task['max'])} | {verdict} |"
        )
    lost = [t for t in result["tasks"] if _missed(t)]
    if lost:
        lines += ["", "## Where points were lost"]
        for task in lost:
            lines += ["", f"### {_title(task)}", ""]
            if not task.get("checks") or task["message"].startswith("not answered"):
                lines.append(f"- {task['message']}")
                continue
            for check in task["checks"]:
                if check["reason"]:
                    lines.append(
                        f"- **{check['what']}** (-{_fmt(check['max'])}): {check['reason']}"
                    )
    written = [
        (t, cid, done) for t in result["tasks"] for cid, done in t.get("written", {}).items()
    ]
    if written:
        lines += ["", "## Written answers", ""]
        for task, cell_id, done in written:
            worth = task.get("manual_max", 0.0)
            state = (
                "received; course staff grade it by hand"
                if done
                else "missing (still the placeholder)"
            )
            points = f" ({_fmt(worth)} points, not in the score above)" if worth else ""
            lines.append(f"- Task {task['id']}, cell {cell_id}{points}: {state}.")
    if result.get("notes"):
        lines += ["", "## What the grader ignored, put back or stopped", ""]
        lines += [f"- {note}" for note in result["notes"]]
    lines += ["", "---", "", HOW_GRADING_WORKS, ""]
    return "\n".join(lines)


def write_summary(results: list[dict], rubric: Rubric, out: Path, seconds: float) -> Path:
    """``summary.md`` with the score histogram and the per-task pass rate (PNG files beside
    it), the table behind them and the submissions that need a look."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = [total(r)[0] for r in results]
    most = rubric.max_points if not results else total(results[0])[1]
    tasks = results[0]["tasks"] if results else []
    pass_rate = [
        sum(r["tasks"][i]["points"] == r["tasks"][i]["max"] for r in results) / len(results)
        for i in range(len(tasks))
    ]
    mean_share = [
        sum(r["tasks"][i]["points"] for r in results) / (len(results) * tasks[i]["max"])
        for i in range(len(tasks))
    ]

    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = [x - 0.5 for x in range(int(max([most, *totals])) + 2)]
    ax.hist(totals, bins=bins, color="#4C72B0", edgecolor="white")
    ax.set(xlabel=f"score (out of {_fmt(most)})", ylabel="submissions", title="Score histogram")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(out / "score_histogram.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * max(1, len(tasks))))
    labels = [_title(t) for t in tasks]
    ax.barh(labels, pass_rate, color="#55A868")
    ax.set(xlim=(0, 1), xlabel="share of submissions with full marks", title="Pass rate per task")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "task_pass_rate.png", dpi=120)
    plt.close(fig)

    n = len(results)
    mean = sum(totals) / n if n else 0.0
    ordered = sorted(totals)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 if n else 0.0
    lines = [
        f"# {rubric.title}: grading summary",
        "",
        f"{n} submission(s) graded in {seconds:.0f} s; score out of {_fmt(most)}: mean "
        f"{mean:.1f}, median {_fmt(median)}, full marks {sum(t >= most for t in totals)}, "
        f"zero {sum(t == 0 for t in totals)}.",
        "",
        "![score histogram](score_histogram.png)",
        "",
        "![pass rate per task](task_pass_rate.png)",
        "",
        "| task | max | pass rate | mean share of points |",
        "|---|---:|---:|---:|",
    ]
    for task, rate, share in zip(tasks, pass_rate, mean_share, strict=True):
        lines.append(f"| {_title(task)} | {_fmt(task['max'])} | {rate:.0%} | {share:.0%} |")
    flagged = [r for r in results if r.get("notes")]
    if flagged:
        lines += ["", "## Submissions to look at", ""]
        for result in flagged:
            stopped = result.get("run", {}).get("stopped")
            lines.append(
                f"- `{result['submission']}` ({_fmt(total(result)[0])}): {len(result['notes'])} "
                f"note(s){'; stopped: ' + stopped if stopped else ''}"
            )
    lines += ["", "Per task and submission: `grades.csv`; per submission: `feedback/`."]
    if rubric.manual_max:
        lines.append(
            f"Written answers ({_fmt(rubric.manual_max)} points, graded by hand): "
            "`manual_review.md`; enter the points in the `manual_points` column of `grades.csv`."
        )
    lines.append("")
    path = out / "summary.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _reference_answer(source: str) -> str:
    """The solution region of a written-answer cell (the whole cell when it has none)."""
    lines = source.split("\n")
    marks = [i for i, line in enumerate(lines) if line.strip() in (notebooks.BEGIN, notebooks.END)]
    if len(marks) >= 2:
        return "\n".join(lines[marks[0] + 1 : marks[1]]).strip()
    return source.strip()


def write_manual_review(results: list[dict], rubric: Rubric, path: Path) -> Path:
    """``manual_review.md``: per written question, what it is worth, the solution's reference
    answer, and every submission's answer, for staff to mark in ``manual_points``."""
    import nbformat

    solution = {c.id: c.source for c in nbformat.read(rubric.solution, as_version=4).cells}
    lines = [
        f"# {rubric.title}: written answers to grade by hand",
        "",
        f"{len(results)} submission(s); written answers are worth {_fmt(rubric.manual_max)} "
        "points in all. Enter each submission's points in the `manual_points` column of "
        "`grades.csv` (one row per task).",
    ]
    for task in rubric.tasks:
        for written in task.manual:
            lines += [
                "",
                f"## Task {task.id}. {task.name}: cell {written.cell} ({_fmt(written.points)} points)",
                "",
            ]
            if written.what:
                lines += [f"What is graded: {written.what}.", ""]
            lines += ["**Reference answer**", ""]
            lines += [
                "> " + line
                for line in _reference_answer(solution.get(written.cell, "")).split("\n")
            ]
            for result in results:
                scored = next((t for t in result["tasks"] if t["id"] == task.id), {})
                text = scored.get("written_text", {}).get(written.cell, "").strip()
                lines += ["", f"### `{result['submission']}`", ""]
                lines += ["> " + line for line in text.split("\n")] if text else ["*(no answer)*"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
