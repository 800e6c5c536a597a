"""Reading and writing through Beam's filesystems (local paths, gs://, hdfs://) for the pipelines."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from apache_beam.io.filesystems import FileSystems


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


def partial_path(path: str) -> str:
    """A temporary name beside `path` that no other writer uses: when an engine runs the same
    work twice at once (a worker it thought lost still running), neither truncates the other's
    file, and the last rename leaves a whole one. A killed run's `*.partial` files are removed by
    the next."""
    return f"{path}.{uuid.uuid4().hex[:12]}.partial"


def remove_partials(out: str) -> None:
    """Delete what a killed run left half-written (`*.partial`) in a local OUT; remote ones stay."""
    if "://" in out or not Path(out).is_dir():
        return
    for path in Path(out).rglob("*.partial"):
        path.unlink(missing_ok=True)


def write_json(path: str, data: dict) -> None:
    """Written under a temporary name, then renamed: readers never see half a file."""
    partial = partial_path(path)
    with FileSystems.create(partial) as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    FileSystems.rename([partial], [path])
