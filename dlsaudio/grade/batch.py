"""Grade a folder of submissions: one worker process per notebook, ``jobs`` at a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import dlsaudio
from dlsaudio.grade import EXTRA_MARK
from dlsaudio.grade.report import feedback, write_csv, write_manual_review, write_summary
from dlsaudio.grade.rubric import Check, Rubric, find_rubric, load_rubric
from dlsaudio.grade.run import GUARD
from dlsaudio.grade.sandbox import LIMITS, Limits, network_namespace, package_digests
from dlsaudio.grade.worker import KERNEL_LINE, unreadable

WORKER_MARGIN_SECONDS = 180  # beyond the run's own limit, for the worker to start and finish
NETWORK_CHOICES = ("auto", "namespace", "guard")


@dataclass
class BatchResult:
    results: list[dict]
    seconds: float
    network: str  # how the network was cut: "namespace" or "guard"
    csv: Path
    summary: Path
    changed_package: list[str]  # course files that changed while grading (should be none)


def load_extra_checks(path: str | Path) -> dict[str, list[Check]]:
    """Staff checks from a Python file: every function marked with
    :func:`dlsaudio.grade.extra_check` becomes a check of its task, run at the end of the
    notebook with the notebook's variables as arguments (by parameter name).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file defines no marked check.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"extra checks not found: {path}")
    source = path.read_text(encoding="utf-8")
    module = types.ModuleType("dlsaudio_extra_checks")
    exec(compile(source, str(path), "exec"), module.__dict__)
    checks: dict[str, list[Check]] = {}
    for name, value in vars(module).items():
        mark = getattr(value, EXTRA_MARK, None)
        if mark is not None:
            code = f"{GUARD}.run_extra_check({source!r}, {name!r})"
            checks.setdefault(mark["task"], []).append(
                Check(mark["points"], mark["what"], code=code, private=True)
            )
    if not checks:
        raise ValueError(
            f"{path}: no check found; mark each function with @dlsaudio.grade.extra_check(task=..., points=...)"
        )
    return checks


def find_submissions(folder: Path) -> list[Path]:
    """Every notebook under ``folder`` (checkpoints excluded).

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: it holds no notebook.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no submissions folder {folder}")
    found = sorted(
        p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    if not found:
        raise ValueError(f"no .ipynb file in {folder}")
    return found


def _stop(process: subprocess.Popen, log: Path) -> None:
    """Stop a worker and the kernel it started (its own process group, named on the first
    line of the worker's output)."""
    groups = [process.pid]
    try:
        first = log.read_text(errors="replace").splitlines()[:1]
        if first and first[0].startswith(KERNEL_LINE):
            groups.append(int(first[0][len(KERNEL_LINE) :]))
    except (OSError, ValueError):
        pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _grade_one(job: dict, log: Path, seconds: float, rubric: Rubric) -> dict:
    Path(job["result"]).unlink(missing_ok=True)
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dlsaudio.grade.worker", job["job"]],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [job["package_parent"], os.environ.get("PYTHONPATH")])
                ),
            },
        )
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            _stop(process, log)
            process.wait()
    _stop(process, log)  # a kernel left behind by a worker that died
    shutil.rmtree(job["folder"], ignore_errors=True)
    result_path = Path(job["result"])
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    tail = " ".join(log.read_text(errors="replace").strip().splitlines()[-3:])[-300:]
    reason = f"the grader failed on this notebook (exit {process.returncode}): {tail}"
    return {
        "submission": job["name"],
        "tasks": [t.to_dict() for t in unreadable(rubric, reason)],
        "notes": [reason],
        "run": {"stopped": reason},
    }


def grade_folder(
    module: str | Path,
    submissions: str | Path,
    out: str | Path,
    *,
    mode: str = "smoke",
    jobs: int = 1,
    extra_checks: str | Path | None = None,
    limits: Limits | None = None,
    progress: bool = True,
    network: str = "auto",
) -> BatchResult:
    """Grade every notebook under ``submissions`` against the rubric in ``module``.

    Writes ``grades.csv``, ``feedback/<submission>.md``, ``summary.md`` with its plots,
    ``executed/`` (the notebooks as they ran, for staff) and ``logs/`` into ``out``.

    Raises:
        FileNotFoundError: the module folder, its rubric, the submissions or the extra checks
            are missing.
        ValueError: the rubric or the extra checks are invalid, the mode is unknown, ``jobs``
            is below 1, or there is no notebook to grade.
    """
    if mode not in LIMITS:
        raise ValueError(f"mode must be one of {sorted(LIMITS)}, got {mode!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if network not in NETWORK_CHOICES:
        raise ValueError(f"network must be one of {NETWORK_CHOICES}, got {network!r}")
    namespace = network_namespace() if network != "guard" else ()
    if network == "namespace" and not namespace:
        raise ValueError(
            "network='namespace' needs unprivileged user and network namespaces (`unshare "
            "--user --net true` fails here); use 'guard', or grade in a container without network"
        )
    limits = limits or LIMITS[mode]
    rubric_file = find_rubric(Path(module))
    rubric = load_rubric(rubric_file)
    extra = load_extra_checks(extra_checks) if extra_checks else {}
    rubric = rubric.with_checks(extra)
    paths = find_submissions(Path(submissions))
    out = Path(out)
    for sub in ("feedback", "executed", "logs", "results"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    package = Path(dlsaudio.__file__).resolve().parent
    digests = package_digests(package)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    start = time.perf_counter()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dlsaudio-grade-") as tmp:
        tmp = Path(tmp)
        (tmp / "digests.json").write_text(json.dumps(digests))
        jobs_list = []
        for path in paths:
            name = path.relative_to(submissions).with_suffix("").as_posix()
            safe = name.replace("/", "__")
            number = len(jobs_list)
            job = {
                "rubric": str(rubric_file),
                "extra": [
                    {"task": task, **asdict(check)}
                    for task, checks in extra.items()
                    for check in checks
                ],
                "submission": str(path),
                "name": name,
                "folder": str(tmp / f"s{number}"),  # short: a Unix socket path has <= 107 bytes
                "mode": mode,
                "limits": asdict(limits),
                "package": str(package),
                "package_parent": str(package.parent),
                "digests": str(tmp / "digests.json"),
                "threads": threads,
                "namespace": list(namespace),
                "executed": str(out / "executed" / f"{safe}.ipynb"),
                "result": str(out / "results" / f"{safe}.json"),
                "job": str(tmp / f"s{number}.job.json"),
            }
            Path(job["job"]).write_text(json.dumps(job))
            jobs_list.append((job, out / "logs" / f"{safe}.log"))
        seconds = limits.total_seconds + WORKER_MARGIN_SECONDS
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_grade_one, job, log, seconds, rubric) for job, log in jobs_list]
            done = as_completed(futures)
            if progress:
                from tqdm import tqdm

                done = tqdm(done, total=len(futures), desc="grading", unit="notebook")
            for future in done:
                results.append(future.result())
        # a kernel that could not start (a loaded machine) is no fault of the submission: once more
        retry = [r["submission"] for r in results if r.get("grader_error")]
        for job, log in jobs_list:
            if job["name"] in retry:
                results = [r for r in results if r["submission"] != job["name"]]
                results.append(_grade_one(job, log, seconds, rubric))
    results.sort(key=lambda r: r["submission"])
    elapsed = time.perf_counter() - start
    for result in results:
        target = out / "feedback" / f"{result['submission'].replace('/', '__')}.md"
        target.write_text(feedback(result, rubric), encoding="utf-8")
    write_csv(results, out / "grades.csv")
    write_manual_review(results, rubric, out / "manual_review.md")
    summary = write_summary(results, rubric, out, elapsed)
    now = package_digests(package)
    changed = sorted(k for k in set(now) | set(digests) if now.get(k) != digests.get(k))
    return BatchResult(
        results,
        round(elapsed, 1),
        "namespace" if namespace else "guard",
        out / "grades.csv",
        summary,
        changed,
    )
