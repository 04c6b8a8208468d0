"""The folder a run of ``python -m dlsaudio.ssl`` writes: a previous run in it is never
overwritten unless asked (``--overwrite``), a resumed run must share its settings
(``--resume``), and the space it needs is checked before any data is loaded."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from dlsaudio.checkpoint import check_output_dir, state_nbytes
from dlsaudio.ssl.config import TrainConfig

#: Files a run writes into its folder; one of them there means a previous run.
RUN_FILES = ("results.json", "history.json", "checkpoint.pt", "run.json")
#: Settings a resumed run must share with the run it continues.
RESUME_KEYS = (
    *("method", "data", "test_takes", "config", "encoder", "tau", "labels_per_class"),
    *("n_mels", "no_mean_norm", "align"),  # the log-mel front end and the clips' placement
    *TrainConfig.field_names(),
)
#: What a run writes besides its checkpoint (results.json, history.json and the figures come
#: to well under 1 MB on the sample; a long run's history and maps take more).
RESULT_BYTES = 16 * 2**20


def run_bytes(method) -> int:
    """About how many bytes a run of ``method`` writes: while a new checkpoint (the weights
    and AdamW's two moments of each trained parameter) is written beside the last one, two of
    them, plus the results and figures."""
    moments = 2 * sum(p.nbytes for p in method.parameters() if p.requires_grad)
    return 2 * (state_nbytes(method) + moments) + RESULT_BYTES


def prepare_out(out: Path, *, resume: bool, overwrite: bool, need_bytes: int = 0) -> None:
    """Make sure the ``--out`` folder can take this run before any data is loaded or trained
    on: ``resume`` continues the run in it, ``overwrite`` replaces it. ``need_bytes`` is what
    the run writes (:func:`run_bytes`); a checkpoint already there counts as written, since the
    new ones replace it.

    Raises:
        SystemExit: ``out`` is a file, cannot be created or written, has less free space than
            ``need_bytes``, holds a previous run and neither ``resume`` nor ``overwrite`` is
            set, or ``resume`` finds no checkpoint.
    """
    checkpoint = out / "checkpoint.pt"
    existing = checkpoint.stat().st_size if checkpoint.is_file() else 0
    try:
        check_output_dir(out, max(need_bytes - existing, 0))
    except ValueError as err:
        sys.exit(f"error: {err}")
    previous = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not checkpoint.is_file():
            sys.exit(f"error: --resume: {out} holds no checkpoint.pt to continue from")
        return
    if previous and not overwrite:
        sys.exit(
            f"error: {out} holds a previous run ({', '.join(previous)}); pass --resume to "
            "continue it, --overwrite to replace it, or another --out"
        )
    for name in previous:
        (out / name).unlink()


def run_settings(args) -> dict:
    settings = {key: getattr(args, key, None) for key in RESUME_KEYS if key in vars(args)}
    settings.update(asdict(args.train))
    return settings


def check_resume(out: Path, settings: dict) -> None:
    """A resumed run must train what the saved one trained.

    Raises:
        SystemExit: a setting differs, naming each.
    """
    path = out / "run.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        sys.exit(f"error: --resume: {path} is missing or unreadable; start afresh with --overwrite")
    changed = {
        k: (saved.get(k), settings.get(k))
        for k in RESUME_KEYS
        if k not in ("max_minutes", "epochs") and saved.get(k) != settings.get(k)
    }
    if changed:
        diff = ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in changed.items())
        sys.exit(f"error: --resume: this run differs from the one in {out} ({diff})")


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
