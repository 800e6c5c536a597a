"""Small helpers shared by the command-line modules."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def cores() -> int:
    return os.cpu_count() or 1


def csv_list(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c'): argparse type for comma-separated options."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def positive_float(text: str) -> float:
    """argparse type: a number above 0 (seconds, lengths)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def time_seconds(text: str) -> float:
    """argparse type: a time in seconds, 0 or later."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a time of 0 s or later, not {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number above 0 (counts)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number, 0 or more (steps)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


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
