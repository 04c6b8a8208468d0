"""python -m dlsaudio.grade MODULE SUBMISSIONS --out GRADES: score a folder of homework notebooks.

Examples::

    python -m dlsaudio.grade week_03_ssl submissions/ --out grades/ --jobs 2
    python -m dlsaudio.grade week_11_low_resource submissions/ --out grades/ --mode full
    python -m dlsaudio.grade week_03_ssl submissions/ --out grades/ --extra-checks ~/private/w3.py
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from dlsaudio.cli import add_jobs_argument, add_out_argument
from dlsaudio.grade.batch import NETWORK_CHOICES, grade_folder
from dlsaudio.grade.sandbox import LIMITS


def _defaults(field: str) -> str:
    return ", ".join(
        f"{mode} {getattr(limits, field) or 'none'}" for mode, limits in LIMITS.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.grade",
        description="Score every .ipynb of a folder against the rubric beside the solution notebook.",
    )
    parser.add_argument("module", type=Path, help="module folder with the rubric, e.g. week_03_ssl")
    parser.add_argument(
        "submissions", type=Path, help="folder of submitted notebooks (searched recursively)"
    )
    add_out_argument(parser, "grades.csv, feedback/ and summary.md")
    parser.add_argument(
        "--mode",
        choices=sorted(LIMITS),
        default="smoke",
        help="smoke (default: bundled sample, small sizes) or full (a GPU box)",
    )
    add_jobs_argument(parser, "submissions graded")
    parser.add_argument(
        "--extra-checks",
        type=Path,
        help="a Python file of staff checks (see dlsaudio.grade.extra_check)",
    )
    parser.add_argument(
        "--network",
        choices=NETWORK_CHOICES,
        default="auto",
        help="namespace: no network at all (needs unprivileged namespaces); guard: refused inside the kernel; auto (default): namespace when available",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        help=f"seconds per cell (default: {_defaults('cell_seconds')})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help=f"seconds per submission (default: {_defaults('total_seconds')})",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        help=f"memory limit of a kernel in MB (default: {_defaults('memory_mb')})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    limits = LIMITS[args.mode]
    overrides = (
        ("--cell-timeout", "cell_seconds", args.cell_timeout),
        ("--timeout", "total_seconds", args.timeout),
        ("--memory-mb", "memory_mb", args.memory_mb),
    )
    for flag, field, value in overrides:
        if value is not None:
            if value <= 0:
                parser.error(f"{flag} must be positive, got {value}")
            limits = replace(limits, **{field: value})
    try:
        batch = grade_folder(
            args.module,
            args.submissions,
            args.out,
            mode=args.mode,
            jobs=args.jobs,
            extra_checks=args.extra_checks,
            limits=limits,
            progress=not args.quiet,
            network=args.network,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"graded {len(batch.results)} notebook(s) in {batch.seconds:.0f} s (network: {batch.network})"
    )
    print(
        f"wrote {batch.csv}, {batch.summary}, {args.out / 'feedback'}/ and the written answers "
        f"to grade by hand in {args.out / 'manual_review.md'}"
    )
    if batch.changed_package:
        print(
            f"warning: course package files changed during grading: {batch.changed_package}; "
            "restore them (git checkout) and grade again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
