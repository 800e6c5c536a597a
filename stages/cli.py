"""Small helpers shared by the command-line modules: a command is a settings dataclass (its fields
are the options, its docstring the description) and the library function that runs on it."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
from pathlib import Path

from stages.settings import add_arguments, from_namespace


def cores() -> int:
    return os.cpu_count() or 1


def csv_list(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c'): argparse type for comma-separated options."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_command(commands, name: str, help: str, settings: type, job: str, *more, skip: tuple[str, ...] = (),
                after: str | None = None, beam: bool = False):
    """A subcommand whose options are the fields of `settings` and of `more` (classes, or (class,
    group title, group description) to show them apart), described by the docstring of `settings`;
    `more` is listed after the field `after` (default: the last). It runs `job`, "module:function"
    imported only then (`--help` stays fast), on the settings objects; the function returns the exit
    status. `beam`: other arguments are Beam options."""
    parser = commands.add_parser(name, help=help, description=" ".join(settings.__doc__.split()).replace("%", "%%"))
    names = [field.name for field in dataclasses.fields(settings)]
    first = names[:names.index(after) + 1] if after else names
    add_arguments(parser, settings, skip=(*skip, *names[len(first):]))
    for item in more:
        cls, *group = item if isinstance(item, tuple) else (item,)
        add_arguments(parser.add_argument_group(*group) if group else parser, cls, skip)
    add_arguments(parser, settings, skip=(*skip, *first))
    classes = [settings, *(item[0] if isinstance(item, tuple) else item for item in more)]
    parser.set_defaults(run=functools.partial(run_job, job, classes), takes_beam_options=beam)
    return parser


def run_job(job: str, classes: list[type], args) -> int:
    """Build the settings from the parsed options, make their quick checks (`preflight`, which
    sees the other settings too: inputs exist, before TensorFlow loads), then run the job, with the
    invocation's context where its function takes it (beam_args, command_line, verbose)."""
    settings = [from_namespace(cls, args) for cls in classes]
    if hasattr(settings[0], "preflight"):
        settings[0].preflight(*settings[1:])
    module, name = job.split(":")
    function = getattr(importlib.import_module(module), name)
    taken = inspect.signature(function).parameters
    context = {key: getattr(args, key) for key in ("beam_args", "command_line", "verbose")
               if key in taken and hasattr(args, key)}
    return function(*settings, **context)


def check_paths(inputs: Path | str | list | tuple | None, out: Path | str | None,
                checkpoints: dict[str, Path | str | None] | None = None) -> None:
    """The checks a command can make before it loads TensorFlow (seconds): its inputs exist, its
    output can be a folder, its checkpoints are `.keras` files. Remote paths (gs://) pass."""
    from stages.checkpoints import check_checkpoint
    from stages.contract import check_output_dir

    for path in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if path is not None and "://" not in str(path) and not Path(path).exists():
            raise FileNotFoundError(f"input not found: {path}")
    if out is not None and "://" not in str(out):
        check_output_dir(Path(out))
    for kind, path in (checkpoints or {}).items():
        if path is not None and "://" not in str(path):
            check_checkpoint(path, kind)
