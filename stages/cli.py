"""Small helpers shared by the command-line modules."""

from __future__ import annotations

import os
from pathlib import Path

from stages import options


def cores() -> int:
    return os.cpu_count() or 1


def csv_list(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c'): argparse type for comma-separated options."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# argparse types of the options every command shares; declared in stages/options.py with the rest.
positive_float = options.POSITIVE  # a number above 0 (seconds, lengths)
time_seconds = options.TIME  # a time in seconds, 0 or later
positive_int = options.COUNT  # a whole number above 0 (counts)
non_negative_int = options.COUNT_OR_ZERO  # a whole number, 0 or more (steps)


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
