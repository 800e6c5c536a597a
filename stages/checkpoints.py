"""Checks on a user-supplied `.keras` checkpoint, so that a wrong path or a file that is no model
fails once, before any work, with the reason (not once per input file, nor as "File not found").

Keras loads `.keras` files with `safe_mode=True` by default (a Lambda layer's code is never run);
nothing here turns that off.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, TypeVar

from stages.contract import UsageError, describe_error

Loaded = TypeVar("Loaded")


def check_checkpoint(path: Path | str, kind: str) -> Path:
    """`path` if it can be a `.keras` checkpoint (an existing zip archive), else UsageError."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{kind} checkpoint not found: {path}")
    if path.is_dir():
        raise UsageError(f"{kind} checkpoint is a folder, not a .keras file: {path}")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{kind} checkpoint is not a .keras file (not a zip archive; truncated, or another "
                         f"kind of file?): {path}")
    return path


def load_checkpoint(load: Callable[[], Loaded], path: Path | str, kind: str) -> Loaded:
    """`load()`, with any failure turned into one UsageError naming the checkpoint."""
    check_checkpoint(path, kind)
    try:
        return load()
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - Keras raises many types on a bad file
        raise UsageError(f"cannot load the {kind} checkpoint {path}: {describe_error(error)[:300]}") from error


def require_config(model, config_type: type, path: Path | str, kind: str) -> None:
    """Refuse a model of another kind (e.g. a composer given as the transcriber)."""
    if not isinstance(getattr(model, "config", None), config_type):
        raise UsageError(f"{path} is not a {kind} checkpoint (it holds a {type(model).__name__})")
