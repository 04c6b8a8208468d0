"""Grade one submission, in a process of its own: ``python -m dlsaudio.grade.worker JOB.json``.

The batch starts one worker per submission, so that nothing a submission does to the process
driving its kernel reaches the others. The job file says what to grade and where to write the
result (a JSON file read by :mod:`dlsaudio.grade.batch`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

# nbformat imports jsonschema, which imports rfc3987_syntax when it is installed (JupyterLab
# brings it) to check IRI formats, compiling a grammar for 1.4 s; nbformat's schemas check no
# format, and a batch starts one worker per submission. An import of None fails at once.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

from dlsaudio.grade.assemble import assemble  # noqa: E402
from dlsaudio.grade.rubric import Check, load_rubric  # noqa: E402
from dlsaudio.grade.run import Runner  # noqa: E402
from dlsaudio.grade.sandbox import Limits, copy_package, kernel_env  # noqa: E402
from dlsaudio.grade.score import TaskScore, run_notes, score  # noqa: E402


def unreadable(rubric, reason: str) -> list[TaskScore]:
    """Zero for every task, with the reason the notebook could not be graded."""
    return [
        TaskScore(t.id, t.name, 0.0, t.max_points, reason, manual_max=t.manual_max, bonus=t.bonus)
        for t in rubric.tasks
    ]


KERNEL_LINE = "kernel process group "


def _announce(pgid: int | None) -> None:
    """Tell the batch (first line of this process's output, written before any student code
    runs) which process group to stop if this worker has to be stopped."""
    print(f"{KERNEL_LINE}{pgid}", flush=True)


def grade_submission(job: dict) -> dict:
    """Grade the notebook ``job["submission"]``; return the result written for the batch."""
    extra: dict[str, list[Check]] = {}
    for item in job.get("extra", []):
        extra.setdefault(item["task"], []).append(
            Check(item["points"], item["what"], code=item["code"], private=True)
        )
    rubric = load_rubric(job["rubric"]).with_checks(extra)
    folder = Path(job["folder"])
    result = {"submission": job["name"], "notes": [], "run": {}}
    try:
        submission = nbformat.reads(
            Path(job["submission"]).read_text(encoding="utf-8"), as_version=4
        )
        if not isinstance(submission.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as error:
        reason = f"your notebook could not be read ({type(error).__name__}: {str(error)[:200]})"
        result["tasks"] = [t.to_dict() for t in unreadable(rubric, reason)]
        return result
    assembly = assemble(rubric, rubric.template(), submission)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        package = folder / "package" / "dlsaudio"
        digests = json.loads(Path(job["digests"]).read_text())
        (folder / "digests.json").write_text(
            json.dumps(copy_package(Path(job["package"]), package, digests))
        )
        env = kernel_env(folder / "work", package.parent, job["mode"])
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[key] = str(job["threads"])
        runner = Runner(
            assembly.nb,
            folder,
            Limits(**job["limits"]),
            env,
            namespace=tuple(job.get("namespace", ())),
        )
        install = f"install({str(folder / 'digests.json')!r})"
        run = runner.run(assembly.steps, install, on_start=_announce)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not run.started:  # nothing of the submission ran: the grader's failure, not the student's
        result["grader_error"] = run.stopped
    result["tasks"] = [t.to_dict() for t in score(rubric, assembly, run)]
    result["notes"] = assembly.notes + run_notes(assembly, run)
    result["run"] = {
        "stopped": run.stopped,
        "seconds": run.seconds,
        "peak_memory_mb": run.peak_memory_mb,
        "cells": [asdict(r) for r in run.steps],
    }
    if job.get("executed"):
        Path(job["executed"]).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(assembly.nb, job["executed"])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    result = grade_submission(job)
    target = Path(job["result"])
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(result, indent=1), encoding="utf-8")
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
