"""Reading and writing through Beam's filesystems (local paths, gs://, hdfs://) for the pipelines."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


def write_json(path: str, data: dict) -> None:
    """Written under a temporary name, then renamed: readers never see half a file."""
    with FileSystems.create(path + ".partial") as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    FileSystems.rename([path + ".partial"], [path])
