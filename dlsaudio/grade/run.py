"""Run one assembled submission in its own kernel, within limits, cell by cell.

The kernel (:mod:`dlsaudio.grade.kernel`) starts in a fresh folder with a minimal environment
(smoke mode, offline, proxies pointing nowhere, ``HOME`` and ``TMPDIR`` inside the folder) and
imports the course package from a private copy whose files are hashed. Before any student cell
the guard (:mod:`dlsaudio.grade.guard`) records the package's state; the runner calls it after
every student cell and around every course cell. A watchdog stops the kernel when the folder
grows past the disk limit. A cell that runs past its time is interrupted, and the run goes on if
the kernel answers again; a kernel that dies, or does not answer, ends the run: the cells after
it are reported as not run, the results before it stand.
"""

from __future__ import annotations

import ast
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from dlsaudio.grade.sandbox import KERNEL_NAME, Limits, Watchdog, death, kill, write_kernel_spec
from dlsaudio.notebook_runner import notebook_client, use_private_sockets

GUARD = "__import__('dlsaudio.grade.guard', fromlist=['guard'])"
STARTUP_SECONDS = 300  # kernel start and guard install, on a loaded machine
GUARD_SECONDS = 120  # a guard call that takes longer means the kernel is stuck
MAX_OUTPUT_CHARS = 20_000  # per cell, in the executed notebook kept for staff


def _error_text(name: str, value: str) -> str:
    """``Name: message``, or for an error without a message what it means (MemoryError)."""
    if value:
        return f"{name}: {value}"
    if name == "MemoryError":
        return "MemoryError (the cell needed more memory than the grading limit)"
    return f"{name} (raised without a message)"


@dataclass
class Step:
    """One code cell to run: ``kind`` is "answer" (the student's), "course" or "check"."""

    index: int
    cell_id: str
    kind: str


@dataclass
class StepResult:
    cell_id: str
    kind: str
    status: str  # ok, error, timeout, not run
    error: str = ""  # "Name: message" for error, the reason for timeout and not run
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)  # state this cell's run changed (put back)
    changed_before: list[str] = field(default_factory=list)  # found changed before it ran


@dataclass
class RunResult:
    steps: list[StepResult]
    stopped: str = ""  # why the run ended early, if it did
    started: bool = False  # the kernel ran and the guard was installed, before any student code
    seconds: float = 0.0
    peak_memory_mb: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class KernelLost(RuntimeError):
    """The kernel died or stopped answering."""


class Runner:
    """Executes the steps of one assembled notebook in a fresh grading kernel."""

    def __init__(
        self,
        nb: nbformat.NotebookNode,
        folder: Path,
        limits: Limits,
        env: dict[str, str],
        *,
        namespace: tuple[str, ...] = (),
    ) -> None:
        """Args:
        nb: the assembled notebook.
        folder: this run's own folder (the kernel works in ``folder/work``).
        limits: what the run may use.
        env: the kernel's environment (:func:`kernel_env`).
        namespace: a :func:`network_namespace` prefix, or () for the in-kernel network guard
            alone. In a namespace the kernel talks to the runner over Unix sockets in
            ``folder``, since it has no TCP loopback to share.
        """
        self.nb, self.folder, self.limits, self.env = nb, folder, limits, env
        self._current: Step | None = None  # the cell running now
        self._timed_out: StepResult | None = None  # a cell past its time, being interrupted
        self.workdir = folder / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager

        specs = write_kernel_spec(folder / "kernelspec", limits, namespace)
        self.km = AsyncKernelManager(
            kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)])
        )
        # Unix sockets: no port for another run's kernel to take; in a namespace, in the run's
        # folder, which the kernel can reach without the TCP loopback
        use_private_sockets(self.km, folder if namespace else None)
        self.client = notebook_client(
            nb,
            km=self.km,
            kernel_name=KERNEL_NAME,
            timeout=limits.cell_seconds,
            allow_errors=False,
            record_timing=False,
            shell_timeout_interval=1,
            startup_timeout=STARTUP_SECONDS,
            max_output_chars=MAX_OUTPUT_CHARS,
        )

    # ------------------------------------------------------------------ kernel calls
    def _expression(self, expression: str, seconds: float, attempts: int = 3):
        """Evaluate ``expression`` in the kernel outside any cell (no input transformers) and
        return its value, which must be a JSON string."""
        from nbclient.exceptions import DeadKernelError

        kc = self.client.kc
        msg_id = kc.execute(
            "", silent=True, store_history=False, user_expressions={"r": expression}
        )
        self.client.timeout = seconds
        try:
            reply = self.client.wait_for_reply(msg_id)
        except DeadKernelError:
            raise KernelLost(death(self._process())) from None
        except Exception as error:  # nbclient's timeout
            raise KernelLost(f"the kernel did not answer within {seconds:.0f} s") from error
        if reply is None:
            raise KernelLost(f"the kernel did not answer within {seconds:.0f} s")
        content = reply["content"]
        if content.get("status") == "aborted" and attempts > 1:
            # sent while an interrupted cell still ran: the kernel drops what was queued then
            return self._expression(expression, seconds, attempts - 1)
        if content.get("status") != "ok":
            raise KernelLost(
                f"the grader's call failed: {content.get('ename')}: {content.get('evalue')}"
            )
        value = content["user_expressions"]["r"]
        if value.get("status") != "ok":
            raise KernelLost(
                f"the grader's guard failed: {value.get('ename')}: {value.get('evalue')}"
            )
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    def _guard(self, call: str, seconds: float = GUARD_SECONDS) -> list[str]:
        return self._expression(f"{GUARD}.{call}", seconds)

    def _process(self):
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "process", None)

    def _pgid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "pgid", None)

    def _run_cell(self, step: Step, seconds: float) -> StepResult:
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        cell = self.nb.cells[step.index]
        self._current = step
        self.client.timeout = seconds
        start = time.perf_counter()
        result = StepResult(step.cell_id, step.kind, "ok")
        try:
            self.client.execute_cell(cell, step.index)
        except CellExecutionError as error:
            result.status, result.error = "error", _error_text(error.ename, error.evalue)
        except CellTimeoutError:
            result.status = "timeout"
            result.error = f"stopped after {seconds:.0f} s (the time limit of a cell)"
            self._timed_out = result
            self._recover_from_timeout()
            self._timed_out = None
        except DeadKernelError:
            raise KernelLost(death(self._process())) from None
        self._current = None
        result.seconds = round(time.perf_counter() - start, 2)
        return result

    def _recover_from_timeout(self) -> None:
        """Interrupt the cell; the run goes on only if the kernel answers again."""
        from jupyter_core.utils import run_sync

        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception as error:
            raise KernelLost(f"the kernel could not be interrupted ({error})") from error
        self._expression("'[]'", self.limits.answer_seconds)

    # ------------------------------------------------------------------ the run
    def run(self, steps: list[Step], install: str, on_start=None) -> RunResult:
        """Run ``steps`` in order after ``install`` (a guard call); never raises for anything
        the submission does. ``on_start(pgid)`` is called once the kernel runs, before any of
        its code."""
        start = time.perf_counter()
        deadline = time.monotonic() + self.limits.total_seconds
        results: list[StepResult] = []
        stopped = ""
        started = False
        watchdog = None
        try:
            with self.client.setup_kernel(env=self.env, cwd=str(self.workdir)):
                watchdog = Watchdog(self.folder, self.limits, self._pgid(), self._process().pid)
                watchdog.start()
                if on_start is not None:
                    on_start(self._pgid())
                self._guard(install, STARTUP_SECONDS)
                started = True
                for step in steps:
                    left = deadline - time.monotonic()
                    if left <= 1:
                        stopped = (
                            f"the run reached its time limit ({self.limits.total_seconds:.0f} s)"
                        )
                        break
                    before = [] if step.kind == "answer" else self._guard("restore()")
                    result = self._run_cell(step, min(self.limits.cell_seconds, left))
                    results.append(result)
                    result.changed_before = before
                    trusted = all(s.kind != "answer" for s in steps[: len(results)])
                    result.changed = self._guard(
                        "restore()" if step.kind == "answer" else f"settle({trusted})"
                    )
        except KernelLost as lost:
            stopped = watchdog.reason if watchdog is not None and watchdog.reason else str(lost)
            if self._timed_out is not None:
                results.append(self._timed_out)
            elif len(results) < len(steps) and self._current is not None:
                results.append(
                    StepResult(self._current.cell_id, self._current.kind, "error", stopped)
                )
        except Exception as error:  # the kernel could not start, or nbclient failed
            stopped = f"the grader could not run the notebook: {type(error).__name__}: {error}"
        finally:
            if watchdog is not None:
                watchdog.done.set()
            self._shutdown()
        for step in steps[len(results) :]:
            results.append(StepResult(step.cell_id, step.kind, "not run", stopped))
        return RunResult(
            results,
            stopped=stopped,
            started=started,
            seconds=round(time.perf_counter() - start, 1),
            peak_memory_mb=round(watchdog.peak_mb if watchdog else 0.0, 1),
        )

    def _shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        kill(self._pgid())
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:
            pass
