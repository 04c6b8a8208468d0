"""Command-line options from dataclass configurations, so that defaults live in one place.

A configuration dataclass holds each setting once, with a ``help`` text in the field's
metadata; :func:`add_dataclass_arguments` turns its fields into ``--options`` and
:func:`dataclass_from_args` builds the dataclass back from the parsed namespace (as
transformers' ``HfArgumentParser`` does).

Options that several command lines take are added by one function each, so they are spelled
alike everywhere: the output folder (:func:`add_out_argument`) and the number of parallel
jobs (:func:`add_jobs_argument`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "add_dataclass_arguments",
    "add_jobs_argument",
    "add_out_argument",
    "dataclass_from_args",
]


def _base_type(annotation):
    """``int`` for ``int`` and ``int | None``; ``None`` for anything else."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return annotation if annotation in (int, float, str, bool) else None


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    choices: dict[str, Iterable] | None = None,
) -> None:
    """Add one ``--field-name`` option per field of dataclass ``cls``.

    Args:
        parser: the parser (or argument group) to extend.
        cls: a dataclass whose fields are ``int``, ``float``, ``str`` or ``bool`` (optionally
            ``| None``); a field's ``metadata["help"]`` becomes the option's help.
        exclude: fields to leave out (the command line sets them itself).
        choices: allowed values per field name.

    Raises:
        TypeError: a field of another type.
    """
    hints = typing.get_type_hints(cls)
    skip, choices = set(exclude), dict(choices or {})
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _base_type(hints[f.name])
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: options need int, float, str or bool fields")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        name = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                name, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        parser.add_argument(
            name,
            type=kind,
            default=default,
            choices=tuple(choices[f.name]) if f.name in choices else None,
            help=f"{help_text} (default: {default})" if help_text else f"default: {default}",
        )


def dataclass_from_args(cls: type, args: argparse.Namespace):
    """An instance of dataclass ``cls`` from the parsed options of its fields.

    Raises:
        ValueError: whatever the dataclass's own validation raises.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def add_out_argument(parser: argparse.ArgumentParser, contents: str) -> None:
    """The required ``--out FOLDER`` (a :class:`~pathlib.Path`) a command writes ``contents`` to.

    Args:
        parser: the parser (or subcommand parser) to extend.
        contents: what the folder receives, for the help text (``"results.json and plots"``).
    """
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {contents}")


def add_jobs_argument(parser: argparse.ArgumentParser, what: str, default: int = 1) -> None:
    """``--jobs N``: how many ``what`` a command runs at once.

    Args:
        parser: the parser to extend.
        what: the things run in parallel, with their verb (``"submissions graded"``).
        default: the number when the option is not given.
    """
    parser.add_argument(
        "--jobs", type=int, default=default, help=f"{what} at once (default {default})"
    )
