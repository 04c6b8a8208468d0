"""The sandbox one submission runs in: limits, environment, network, folder and package copy.

See the package docstring of :mod:`dlsaudio.grade` for what this isolates and what it does not.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "dlsaudio-grade"
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_HOME")
_NOWHERE = "http://127.0.0.1:9"  # the discard port: a proxy that refuses at once


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    cell_seconds: float  # one cell, before it is interrupted
    total_seconds: float  # the whole run, kernel start included
    memory_mb: int | None  # RLIMIT_DATA of the kernel; None: no limit
    disk_mb: int  # everything written into its folder
    file_mb: int  # any one file (RLIMIT_FSIZE)
    # after a cell past its time is interrupted, how long the kernel has to answer again before
    # the run ends (a cell that ignores the interrupt never answers)
    answer_seconds: float = 15.0


LIMITS = {
    "smoke": Limits(cell_seconds=120, total_seconds=600, memory_mb=4096, disk_mb=512, file_mb=256),
    "full": Limits(
        cell_seconds=3 * 3600, total_seconds=8 * 3600, memory_mb=None, disk_mb=8192, file_mb=4096
    ),
}


def kernel_env(workdir: Path, package_parent: Path, mode: str) -> dict[str, str]:
    """The environment of a grading kernel: nothing of the grader's own beyond what Python,
    CUDA and the course's data settings need (no tokens, no credentials)."""
    env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
    env.update({key: value for key, value in os.environ.items() if key.startswith("DLSAUDIO_")})
    env.update(
        {
            "PYTHONPATH": str(package_parent),
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "MPLCONFIGDIR": str(workdir / ".matplotlib"),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "DLSAUDIO_SMOKE": "1" if mode == "smoke" else "0",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    for key in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
        env[key] = env[key.upper()] = _NOWHERE
    if mode == "full":  # models the staff have cached (loaded offline), e.g. Whisper
        hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        env["HF_HOME"] = hf_home
    return env


_UNSHARE = (
    ["unshare", "--user", "--map-current-user", "--net"],
    ["unshare", "--user", "--map-root-user", "--net"],
)


@functools.cache
def network_namespace() -> tuple[str, ...]:
    """The command prefix that runs a program in a network namespace of its own (no network
    at all, not even the machine's loopback), or () where unprivileged namespaces are not
    available (many containers)."""
    for prefix in _UNSHARE:
        if shutil.which(prefix[0]) is None:
            return ()
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return tuple(prefix)
    return ()


def write_kernel_spec(folder: Path, limits: Limits, prefix: tuple[str, ...]) -> Path:
    spec = folder / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "dlsaudio.grade.kernel",
        "--file-mb",
        str(limits.file_mb),
    ]
    if limits.memory_mb:
        argv += ["--memory-mb", str(limits.memory_mb)]
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [*argv, "-f", "{connection_file}"],
                "display_name": "dlsaudio grading",
                "language": "python",
                "interrupt_mode": "signal",
            }
        )
    )
    return folder


def _folder_mb(folder: Path, stop_at_mb: float) -> float:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
        if total > stop_at_mb * 2**20:
            break
    return total / 2**20


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Watchdog(threading.Thread):
    """Stops the kernel's process group when its folder grows past the disk limit; records
    the kernel's peak resident memory."""

    def __init__(self, folder: Path, limits: Limits, pgid: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.folder, self.limits, self.pgid, self.pid = folder, limits, pgid, pid
        self.reason = ""
        self.peak_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak_mb = max(self.peak_mb, _peak_rss_mb(self.pid))
            if _folder_mb(self.folder, self.limits.disk_mb) > self.limits.disk_mb:
                self.reason = (
                    f"it wrote more than {self.limits.disk_mb} MB into its folder (the disk limit)"
                )
                kill(self.pgid)
                return


def kill(pgid: int | None) -> None:
    """SIGKILL a process group (the kernel and whatever it started), if it is still there."""
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def death(process) -> str:
    """Why a kernel process ended, in words for the feedback."""
    code = process.poll() if process is not None else None
    if code is None:
        return "the kernel stopped answering"
    if code < 0:
        name = signal.Signals(-code).name
        hint = {
            "SIGKILL": " (killed: out of memory, or stopped by the grader)",
            "SIGSEGV": " (crashed)",
            "SIGABRT": " (aborted)",
        }.get(name, "")
        return f"the kernel died with {name}{hint}"
    return (
        f"the kernel exited with code {code} (exit(), quit(), sys.exit or os._exit in your code?)"
    )


def package_digests(folder: Path) -> dict[str, str]:
    """The sha256 of every Python file of the package in ``folder``, keyed by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def copy_package(source: Path, target: Path, digests: dict[str, str]) -> dict[str, str]:
    """Copy the course package from ``source`` to ``target`` and return ``digests`` keyed by
    the copy's absolute paths, for the kernel's guard.

    Raises:
        RuntimeError: a file of ``source`` no longer has the digest recorded when grading
            started (something changed the course package; restore it before grading more).
    """
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    changed = [rel for rel, digest in package_digests(target).items() if digests.get(rel) != digest]
    changed += [rel for rel in digests if not (target / rel).is_file()]
    if changed:
        raise RuntimeError(
            f"the course package at {source} changed while grading ({', '.join(sorted(changed)[:5])}); "
            "restore it (git checkout) and grade again"
        )
    return {str(target / rel): digest for rel, digest in digests.items()}
