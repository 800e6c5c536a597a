"""Checkpoints, in one place: which checkpoint a request uses, the files that travel with it, and
checks on a user-supplied `.keras` file, so that a wrong path or a file that is no model fails once,
before any work, with the reason (not once per input file, nor as "File not found").

A checkpoint is `<stem>.keras` with its companions beside it, named by its stem:

    default.keras            the model (its config inside)
    default.json             its record: where it came from, its figures (stages/training/ship.py)
    default.md               its model card (stages/training/model_card.py)
    default.rescorer.keras   the transcriber's onset rescorer and note-end network, and
    default.rescorer.json    its record (transcribe/rescorer/training.py)
    default.pedal.keras      the transcriber's pedal network (transcribe/pedal/training.py)

The shipped ones lie in each model package's `checkpoints/` folder. Every caller (the CLI, the
Python API, the stages, the Prefect flows, Beam, shipping and model cards) asks this module.

Keras loads `.keras` files with `safe_mode=True` by default (a Lambda layer's code is never run);
nothing here turns that off.
"""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path
from typing import Callable, TypeVar

from stages.contract import UsageError, describe_error

Loaded = TypeVar("Loaded")

DEFAULT = "default"  # each model package's shipped checkpoint
# The composer trained on with composer and note-density labels: what steering and music from nothing
# use unless told otherwise. The default stays the better composer of music that continues a primer
# (validation NLL 2.1259 against 2.1286).
CONDITIONED = "conditioned"
COMPANIONS = {"record": ".json", "card": ".md", "rescorer": ".rescorer.keras", "rescorer_record": ".rescorer.json",
              "pedal": ".pedal.keras"}


def shipped_checkpoint(package: str, name: str = DEFAULT) -> Path:
    """`<package>/checkpoints/<name>.keras` where the package is installed (the package is found,
    not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no package {package!r}")
    return Path(spec.origin).resolve().parent / "checkpoints" / f"{name}.keras"


def checkpoint_for(package: str, given: Path | str | None = None, *, composer: str | None = None,
                   notes_per_second: float | None = None, from_nothing: bool = False) -> Path | str:
    """The checkpoint a request uses: `given` (unchanged, so a remote path keeps its form), else the
    package's shipped one for the task. For the composer: the conditioned one for music steered by
    a `composer` or `notes_per_second`, and for pieces written from nothing (where the default holds
    notes too long: on 24 pieces mean polyphony 9.4 and 95th-percentile note 3.0 s against 4.1 and
    0.68 s, the pianists' 4.0 and 1.1 s); the default for continuing music left free."""
    if given:
        return given
    steered = composer is not None or notes_per_second is not None
    if package == "compose" and (steered or from_nothing):
        return shipped_checkpoint(package, CONDITIONED)
    return shipped_checkpoint(package)


def companion(checkpoint: Path | str, role: str) -> Path | str:
    """The file of `role` (a key of COMPANIONS) beside a checkpoint: `default.keras` ->
    `default.rescorer.keras`. A string stays a string, so that remote paths (gs://...) keep their
    form for Beam."""
    path = re.sub(r"(\.keras)?$", COMPANIONS[role], str(checkpoint), count=1)
    return path if isinstance(checkpoint, str) else Path(path)


def bundle_files(checkpoint: Path) -> list[Path]:
    """A checkpoint and every file beside it that shares its stem (`default.keras`:
    `default.rescorer.keras`, `default.json`, ...): what a cached result made with it depends on."""
    checkpoint = Path(checkpoint)
    return sorted(p for p in checkpoint.parent.glob(f"{checkpoint.stem}.*") if p.is_file())


def read_record(checkpoint: Path | str, role: str = "record") -> dict | None:
    """A checkpoint's JSON record (or its rescorer's, `role="rescorer_record"`), None if it has none."""
    path = Path(companion(checkpoint, role))
    return json.loads(path.read_text()) if path.is_file() else None


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
