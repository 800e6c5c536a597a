"""MAESTRO metadata of every released version, and safe paths under a dataset root.

Formats: v1.0.0 and v2.0.0 JSON (a list of records), v2.0.0 and v3.0.0 CSV, and v3.0.0 JSON
(column-oriented: `{"canonical_composer": {"0": ...}, ...}`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import posixpath
import re
from pathlib import Path
from typing import Iterable, Sequence

from stages.contract import InputError, write_text_atomic

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
FIELDS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename",
          "audio_filename", "duration")


@dataclasses.dataclass(frozen=True)
class Record:
    """One performance: a MIDI file and its recording, paths relative to the dataset root."""

    canonical_composer: str
    canonical_title: str
    split: str
    year: int
    midi_filename: str
    audio_filename: str
    duration: float

    @classmethod
    def from_mapping(cls, row: dict) -> "Record":
        missing = [name for name in FIELDS if name not in row]
        if missing:
            raise ValueError(f"metadata record lacks {', '.join(missing)}")
        return cls(
            canonical_composer=str(row["canonical_composer"]),
            canonical_title=str(row["canonical_title"]),
            split=str(row["split"]),
            year=int(row["year"]),
            midi_filename=str(row["midi_filename"]),
            audio_filename=str(row["audio_filename"]),
            duration=float(row["duration"]),
        )


def read_metadata(path: Path | str, problems: list | None = None, unique: bool = False) -> list[Record]:
    """Records from a MAESTRO metadata file (.json or .csv, any version), read as Excel and pandas
    write them: a UTF-8 byte-order mark is skipped; with `unique`, a recording listed again is kept
    once (with a warning naming both rows), as the batch tools need.

    A row with a value that is not one (a year "unknown") is a ValueError naming the row, or, given
    `problems`, appended to it as [its audio path or "row N", reason] while the other rows are read."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [(f"row {number}", row) for number, row in enumerate(csv.DictReader(handle), start=2)]
    else:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        if isinstance(data, list):  # v1, v2: a list of records
            rows = [(f"record {number}", row) for number, row in enumerate(data, start=1)]
        elif isinstance(data, dict) and "midi_filename" in data:  # v3: one mapping per column, keyed by row index
            indices = sorted(data["midi_filename"], key=int)
            rows = [(f"row {i}", {name: data[name][i] for name in FIELDS if i in data.get(name, {})})
                    for i in indices]
        else:
            raise ValueError(f"{path}: not MAESTRO metadata")
    records: list[Record] = []
    first_row: dict[str, str] = {}
    for where, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{path}: not MAESTRO metadata ({where} is not a record)")
        missing = [name for name in FIELDS if name not in row]
        if missing:  # the file's columns: nothing can be read
            raise ValueError(f"metadata record lacks {', '.join(missing)} ({path.name}, {where})")
        try:
            record = Record.from_mapping(row)
        except (TypeError, ValueError) as error:
            reason = f"{path.name}, {where}: {_bad_value(row, error)}"
            if problems is None:
                raise ValueError(reason) from error
            problems.append([str(row.get("audio_filename") or where), reason])
            continue
        if unique and record.audio_filename in first_row:
            log.warning("%s lists %s twice (%s and %s): the repeat is ignored", path.name, record.audio_filename,
                        first_row[record.audio_filename], where)
            continue
        first_row[record.audio_filename] = where
        records.append(record)
    return records


def _bad_value(row: dict, error: Exception) -> str:
    """Which value of a metadata row could not be read, and what it is."""
    for name, kind in (("year", int), ("duration", float)):
        try:
            kind(row[name])
        except (TypeError, ValueError):
            needed = "a whole number" if kind is int else "a number"
            return f"{name} is not {needed}: {row[name]!r}"
    return " ".join(str(error).split())


def find_metadata(root: Path | str) -> Path:
    """The metadata file of a dataset root: the newest version, CSV before JSON."""
    root = Path(root)
    candidates = list(root.glob("maestro-v*.csv")) + list(root.glob("maestro-v*.json"))
    if not candidates:
        raise FileNotFoundError(f"no maestro-v*.csv or maestro-v*.json in {root}")
    return Path(newest_metadata(str(path) for path in candidates))


def newest_metadata(paths: Iterable[str]) -> str:
    """The newest version's metadata file among paths; CSV before JSON of the same version."""

    def version(path: str) -> tuple:
        name = posixpath.basename(path)
        return tuple(int(n) for n in re.findall(r"\d+", name)) + (name.endswith(".csv"),)

    return max(paths, key=version)


def select(records: Iterable[Record], splits: Sequence[str] | None = None,
           years: Sequence[int] | None = None, composers: Sequence[str] | None = None) -> list[Record]:
    """Records in any of the splits and years whose composer contains any of the names
    (case-insensitive, so "chopin" finds "Frédéric Chopin")."""
    wanted_composers = [name.casefold() for name in composers or ()]
    chosen = []
    for record in records:
        if splits and record.split not in splits:
            continue
        if years and record.year not in years:
            continue
        if wanted_composers and not any(n in record.canonical_composer.casefold() for n in wanted_composers):
            continue
        chosen.append(record)
    return chosen


def resolve_under(root: Path | str, relative: str) -> Path:
    """`root/relative`, refusing any path that escapes the root (absolute, `..`, symlinks)."""
    root = Path(root).resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise InputError(f"absolute path in metadata: {relative}")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise InputError(f"path escapes the dataset root: {relative}")
    return resolved


def join_under(root: str, relative: str) -> str:
    """Like resolve_under, for a root that may be a URL (gs://bucket/maestro) as Beam reads them."""
    if "://" not in root:
        return str(resolve_under(root, relative))
    normalized = posixpath.normpath(relative)
    if relative.startswith("/") or normalized == ".." or normalized.startswith("../"):
        raise InputError(f"path escapes the dataset root: {relative}")
    return root.rstrip("/") + "/" + normalized


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A MAESTRO-layout folder: its root and its records."""

    root: Path
    records: tuple[Record, ...]

    @classmethod
    def open(cls, root: Path | str, metadata: Path | str | None = None) -> "Dataset":
        root = Path(root)
        return cls(root=root, records=tuple(read_metadata(metadata or find_metadata(root))))

    def select(self, **filters) -> list[Record]:
        return select(self.records, **filters)

    def audio_path(self, record: Record) -> Path:
        return resolve_under(self.root, record.audio_filename)

    def midi_path(self, record: Record) -> Path:
        return resolve_under(self.root, record.midi_filename)


def write_metadata(root: Path | str, records: Sequence[Record], version: str = "v3.0.0") -> list[Path]:
    """Write `maestro-<version>.csv` and the column-oriented `maestro-<version>.json`."""
    root = Path(root)
    rows = [dataclasses.asdict(record) for record in records]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    columns = {name: {str(i): row[name] for i, row in enumerate(rows)} for name in FIELDS}
    csv_path, json_path = root / f"maestro-{version}.csv", root / f"maestro-{version}.json"
    write_text_atomic(csv_path, buffer.getvalue())
    write_text_atomic(json_path, json.dumps(columns, indent=1, ensure_ascii=False) + "\n")
    return [csv_path, json_path]
