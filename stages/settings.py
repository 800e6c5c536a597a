"""Settings declared once: a frozen dataclass per stage whose fields carry their command-line flag,
help and check, so that the CLI, the stage, the Python API, the Prefect flow and Beam all take the
same object and refuse a bad value with the same words.

    @dataclasses.dataclass(frozen=True)
    class DecodingSettings(Settings):
        onset_threshold: float | None = setting(None, options.THRESHOLD, "--onset-threshold",
                                                "onset head probability that starts a note", metavar="P")
        rescore: bool = setting(True, flag="--no-rescorer", help="start notes at the onset threshold")

    add_arguments(parser, DecodingSettings)         # --onset-threshold P, --no-rescorer
    settings = from_namespace(DecodingSettings, args)
    DecodingSettings(onset_threshold=2)             # ValueError: onset_threshold must be at most 1, not 2

A field's `kind` is a stages.options type (argparse parses and checks the text with it, the
dataclass checks a Python value with it) or a tuple of choices; a bool field is a switch whose
flag turns it from its default to the other value (`--no-rescorer` sets `rescore` False). Adding
an option is adding a field.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from stages.options import Number


def setting(default: Any, kind: Number | tuple | None = None, flag: str | None = None, help: str = "", *,
            metavar: str | None = None) -> Any:
    """A settings field: its default, its check (`kind`), its flag (default `--field-name`) and help."""
    return dataclasses.field(default=default, metadata={"kind": kind, "flag": flag, "help": help,
                                                        "metavar": metavar})


def flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


class Settings:
    """Mixin for frozen settings dataclasses: every value checked when the object is made."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            check(field, getattr(self, field.name))

    def replace(self, **changes):
        """A copy with these fields changed (checked); an unknown name is a TypeError."""
        return dataclasses.replace(self, **changes)

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults: what a run folder records, so that folders
        written before a setting existed still match."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}


def check(field: dataclasses.Field, value: Any) -> Any:
    """`value` if the field allows it, else ValueError naming the field."""
    kind = field.metadata.get("kind")
    if value is None and field.default is None:
        return value
    if isinstance(field.default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{field.name} must be True or False, not {value!r}")
    elif isinstance(kind, Number):
        kind.check(value, field.name)
    elif isinstance(kind, tuple) and value not in kind:
        raise ValueError(f"{field.name} must be one of {', '.join(map(repr, kind))}, not {value!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """An option per field of `cls` (but those in `skip`), named, typed, defaulted and explained
    by the field; the parsed value lands under the field's name."""
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        help, kind = field.metadata.get("help", ""), field.metadata.get("kind")
        if isinstance(field.default, bool):
            parser.add_argument(flag(field), dest=field.name, default=field.default, help=help,
                                action="store_false" if field.default else "store_true")
            continue
        extra = {"choices": kind} if isinstance(kind, tuple) else {"type": kind} if kind is not None else {}
        parser.add_argument(flag(field), dest=field.name, default=field.default, metavar=field.metadata.get("metavar"),
                            help=help, **extra)


def from_namespace(cls: type, args: argparse.Namespace, **changes):
    """The settings the parsed options (those `add_arguments` added) say, with `changes` on top."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, **changes})
