"""A MAESTRO-layout MIDI corpus from a re-transcription (MAESTRO-T, Hawthorne et al. 2019): the
source dataset's metadata, splits and MIDI file names, with each recording's transcription
(`batch.retranscribe`'s OUT/<audio path>.midi) in place of its performance MIDI.

  write_corpus(ROOT, TRANSCRIPTIONS, OUT, checkpoint)
    OUT/maestro-v*.csv|json    the source's metadata files, byte for byte (every recording
                               transcribed), or its transcribed records only (some failed)
    OUT/<midi_filename>        the transcription of <audio_filename>
    OUT/transcribed_by.json    which transcriber (content ids) made it, and what was left out

The corpus holds MIDI only: its metadata still names the audio, which stays in ROOT. Writing is
idempotent: a file whose bytes are already there is not written again, so a rerun touches nothing
and a new transcription replaces the old.
"""

from __future__ import annotations

import json
from pathlib import Path

from batch.retranscribe import output_path
from maestro.metadata import Dataset, find_metadata, resolve_under, write_metadata
from stages.contract import content_id, write_bytes_atomic

RECORD = "transcribed_by.json"


def transcriber_identity(checkpoint: Path | str) -> dict:
    """A checkpoint and the files loaded with it (`<stem>.*`: its rescorer, its record), by
    content id (`stages.contract.content_id`), and the shipped record's version fields."""
    checkpoint = Path(checkpoint)
    identity = {"checkpoint": str(checkpoint), "sha256_16": content_id(checkpoint),
                "companions": {p.name: content_id(p) for p in sorted(checkpoint.parent.glob(f"{checkpoint.stem}.*"))
                               if p.is_file() and p != checkpoint}}
    shipped = checkpoint.with_suffix(".json")
    if shipped.is_file():
        record = json.loads(shipped.read_text())
        identity.update({key: record[key] for key in ("config", "best_epoch", "validation") if key in record})
    return identity


def claim_transcriptions(folder: Path | str, checkpoint: Path | str, note_ends: bool = True) -> dict:
    """Mark a re-transcription folder as this transcriber's (FOLDER/transcriber.json), or refuse
    one that another transcriber, or the same with other decoding, began: re-transcription skips
    finished recordings whoever made them, so one folder must hold one transcriber's work."""
    folder = Path(folder)
    identity = {**transcriber_identity(checkpoint), "note_ends": note_ends}
    mark = folder / "transcriber.json"
    if mark.is_file():
        before = json.loads(mark.read_text())
        keys = ("sha256_16", "companions", "note_ends")
        if any(before.get(key) != identity[key] for key in keys):
            raise ValueError(f"{folder} holds transcriptions by another transcriber ({before.get('checkpoint')}, "
                             f"{before.get('sha256_16')}, note_ends {before.get('note_ends')}): choose another folder")
        return before
    folder.mkdir(parents=True, exist_ok=True)
    write_if_changed(mark, (json.dumps(identity, indent=2) + "\n").encode())
    return identity


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` atomically unless the file already holds it; whether it was written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return True


def write_corpus(root: Path | str, transcriptions: Path | str, out: Path | str, checkpoint: Path | str,
                 note_ends: bool = True) -> dict:
    """Write the transcribed corpus (see the module's docstring); returns its record, with the
    files written this time under `written`."""
    root, transcriptions, out = Path(root), Path(transcriptions), Path(out)
    dataset = Dataset.open(root)
    out.mkdir(parents=True, exist_ok=True)
    kept, missing, written = [], [], []
    for record in dataset.records:
        source = Path(output_path(str(transcriptions), record, ".midi"))
        if not source.is_file():
            missing.append(record.audio_filename)
            continue
        target = resolve_under(out, record.midi_filename)
        if write_if_changed(target, source.read_bytes()):
            written.append(record.midi_filename)
        kept.append(record)
    metadata = find_metadata(root)
    if missing:  # the records that have a transcription, under the source's version name
        version = metadata.stem.removeprefix("maestro-")
        metadata_files = [p.name for p in _write_metadata_if_changed(out, kept, version, written)]
    else:  # every metadata file of the source, unchanged: the same splits, the same names
        metadata_files = []
        for path in sorted(list(root.glob("maestro-v*.csv")) + list(root.glob("maestro-v*.json"))):
            if write_if_changed(out / path.name, path.read_bytes()):
                written.append(path.name)
            metadata_files.append(path.name)
    splits = {}
    for record in kept:
        splits[record.split] = splits.get(record.split, 0) + 1
    summary = {"source": str(root), "transcriptions": str(transcriptions),
               "transcriber": {**transcriber_identity(checkpoint), "note_ends": note_ends},
               "metadata": metadata_files, "records": len(kept), "splits": splits,
               "missing": sorted(missing)}
    retranscription = transcriptions / "retranscription.json"
    if retranscription.is_file():  # the transcriber's accuracy on this very dataset
        summary["transcription_accuracy"] = json.loads(retranscription.read_text()).get("mean", {})
    if write_if_changed(out / RECORD, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()):
        written.append(RECORD)
    return {**summary, "written": written}


def _write_metadata_if_changed(out: Path, records, version: str, written: list) -> list[Path]:
    """write_metadata, leaving files that would not change untouched (a rerun writes nothing)."""
    scratch = out / ".metadata.partial"
    scratch.mkdir(exist_ok=True)
    try:
        paths = []
        for path in write_metadata(scratch, records, version):
            if write_if_changed(out / path.name, path.read_bytes()):
                written.append(path.name)
            paths.append(out / path.name)
        return paths
    finally:
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
