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


def setting(default: Any, kind: Number | tuple | Any = None, flag: str | None = None, help: str | None = None,
            **argparse_options) -> Any:
    """A settings field: its default, its check (`kind`: a stages.options type, a tuple of choices or
    any argparse type), its flag (default `--field-name`), help, and other argparse options
    (metavar, nargs, action, required; `exclusive="NAME"` puts the flags sharing NAME in one
    mutually exclusive group). A list default is copied for each object."""
    metadata = {"kind": kind, "flag": flag, "help": help, **argparse_options}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def argument(kind: Any = None, help: str | None = None, default: Any = None, **argparse_options) -> Any:
    """A positional settings field (`w2m2w train transcribe TFRECORDS RUN_DIR`), named by the field."""
    return setting(default, kind, help=help, positional=True, **argparse_options)


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
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != default_of(f)}


def check(field: dataclasses.Field, value: Any) -> Any:
    """`value` if the field allows it, else ValueError naming the field; a field of several values
    (nargs) checks each."""
    kind = field.metadata.get("kind")
    if value is None and default_of(field) is None:
        return value
    if isinstance(field.default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{field.name} must be True or False, not {value!r}")
        return value
    several = field.metadata.get("nargs") is not None and isinstance(value, (list, tuple))
    for item in value if several else [value]:
        if isinstance(kind, Number):
            kind.check(item, field.name)
        elif isinstance(kind, tuple) and item not in kind:
            raise ValueError(f"{field.name} must be one of {', '.join(map(repr, kind))}, not {item!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """An option per field of `cls` (but those in `skip`), named, typed, defaulted and explained
    by the field; the parsed value lands under the field's name."""
    groups: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        options = {k: v for k, v in field.metadata.items() if k not in ("kind", "flag", "positional", "exclusive")}
        kind, default = field.metadata.get("kind"), default_of(field)
        if isinstance(default, bool):
            options["action"] = "store_false" if default else "store_true"
        elif isinstance(kind, tuple):
            options["choices"] = kind
        elif kind is not None:
            options["type"] = kind
        target = parser
        if field.metadata.get("exclusive"):
            name = field.metadata["exclusive"]
            target = groups[name] = groups.get(name) or parser.add_mutually_exclusive_group()
        if field.metadata.get("positional"):
            target.add_argument(field.name, default=default, **options)
        else:
            target.add_argument(flag(field), dest=field.name, default=default, **options)


def default_of(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def from_namespace(cls: type, args: argparse.Namespace, **changes):
    """The settings the parsed options (those `add_arguments` added) say, with `changes` on top."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, **changes})
