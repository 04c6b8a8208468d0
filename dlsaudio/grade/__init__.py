"""Grading for course staff: ``python -m dlsaudio.grade week_03_ssl SUBMISSIONS/ --out grades/``.

Each notebook of the submissions folder gets a score per task against the rubric beside the
solution notebook (``homework_rubric.json``, see :mod:`dlsaudio.grade.rubric`), with the message
that explains every lost point; the batch writes ``grades.csv`` (submission, task, points, max,
message), a feedback page per submission and a one-page summary with the score histogram and
the pass rate per task.

**Tamper-proof by construction**, as nbgrader's autograded cells: the notebook that runs is the
course's own student copy; only the answer cells named by the rubric (found by their stable
cell ids) take their source from the submission. Check cells, course cells and the package
come from the course, so an edited check cell, a deleted or reordered cell, or a cell added to
print "OK" changes nothing, and the feedback says what was ignored. Inside the kernel a guard
(:mod:`dlsaudio.grade.guard`) puts back, before every course cell and after every student
cell, whatever the student's code changed in ``dlsaudio`` (a redefined check, a patched
reference loss), in the modules checks compute with (``torch``, ``math``, ``numpy``,
``builtins``), in IPython's cell transformers and in the names course cells bound; a check
during which the student's code changed any of that does not count.

**Isolation of untrusted code.** Each submission runs in its own worker process and kernel
process, in a temporary folder deleted afterwards, in smoke mode (``--mode full`` for a GPU
box), and:

- time: each cell has a limit, after which it is interrupted and the run goes on if the
  kernel answers again; the whole run has a limit too. A cell that loops keeps the points
  earned before it (and after it, when the interrupt works);
- memory: ``RLIMIT_DATA`` on the kernel, so an allocation past the limit fails with
  ``MemoryError`` and the run goes on;
- disk: ``RLIMIT_FSIZE`` per file, and a watchdog that stops the kernel when its folder grows
  past the disk limit;
- network: refused inside the kernel (as in the test suite's ``conftest.py``), proxies point at
  a closed port and Hugging Face libraries run offline;
- environment: the kernel gets a minimal environment (no tokens or credentials of the grader),
  with ``HOME`` and ``TMPDIR`` in its folder, and imports the course package from a private copy
  whose files it checks by hash;
- a kernel that crashes, exits or is stopped ends only its own submission: the points of the
  checks that passed before stand, the cells after it are reported as not run, and the batch
  goes on.

**Not isolated.** The kernel runs as the grader's user on the grader's machine: it can read
every file that user can read (the solution notebooks included), write outside its folder,
see and signal that user's other processes, and reach the network through a socket it builds
below Python's ``socket`` module. The in-kernel guard shares its process with the student's
code, so code written against the guard itself can defeat it. For a cohort you do not trust,
run the grader in a container or as a user that can read only the course package (for example
``docker run --network none``), where all of this is contained.
"""

from __future__ import annotations

EXTRA_MARK = "__dlsaudio_extra_check__"


def extra_check(task: str, points: float, what: str | None = None):
    """Mark a function of a ``--extra-checks`` file as a check of ``task`` worth ``points``.

    The function runs at the end of the graded notebook; each of its parameters receives the
    notebook's variable of that name (the student's function, say). It passes when it returns
    without raising; an ``AssertionError``'s message is what the student reads.

    Example::

        from dlsaudio.grade import extra_check

        @extra_check(task="3", points=1, what="BYOL loss on a batch of one")
        def byol_loss_batch_of_one(byol_loss):
            import torch
            assert abs(float(byol_loss(torch.ones(1, 4), torch.ones(1, 4)))) < 1e-6, "..."

    Raises:
        ValueError: ``points`` is not a positive number.
    """
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise ValueError(f"points must be a positive number, got {points!r}")

    def mark(fn):
        setattr(
            fn,
            EXTRA_MARK,
            {
                "task": str(task),
                "points": float(points),
                "what": what or fn.__name__.replace("_", " "),
            },
        )
        return fn

    return mark


__all__ = ["extra_check"]
