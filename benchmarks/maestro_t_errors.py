"""What transcription errors do to the music a composer learns from (issue 61, item 3), for
benchmarks/maestro_t.py: the ground truth and its transcription paired recording by recording,
the statistics of many stretches of music pooled (`pooled_statistics`), and each statistic's
shift from the ground truth to the transcriptions taken apart by kind of error (`attribution`):
recomputed on the ground truth with only that kind put in (`transcribe.errors.with_errors`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.compose_samples import statistics
from maestro.metadata import Dataset
from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence, read_note_sequence
from transcribe.errors import KINDS, NoteErrors, note_errors, with_errors

Piece = tuple[np.ndarray, np.ndarray, NoteErrors]  # (reference, estimate, errors)


def paired_split(dataset: Path | str, corpus: Path | str, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(midi_filename, ground-truth notes, transcribed notes), both sustain-extended as the composer
    reads them (`compose.on_maestro.load_split`), for every recording of SPLIT that the corpus holds."""
    source, transcribed = Dataset.open(dataset), Dataset.open(corpus)
    kept = {record.midi_filename for record in transcribed.select(splits=[split])}
    return [(record.midi_filename, _notes(source.midi_path(record)), _notes(transcribed.midi_path(record)))
            for record in source.select(splits=[split]) if record.midi_filename in kept]


def _notes(path: Path) -> np.ndarray:
    return notes_from_sequence(apply_sustain(read_note_sequence(path)))


def classified(pairs: list[tuple[str, np.ndarray, np.ndarray]], progress: bool = True) -> list[Piece]:
    """Each pair's errors (`transcribe.errors.note_errors`)."""
    return [(reference, estimate, note_errors(reference, estimate))
            for _, reference, estimate in tqdm(pairs, desc="matching notes", unit="piece", disable=not progress)]


def pooled_statistics(stretches: list[np.ndarray], seconds: list[float]) -> dict | None:
    """`benchmarks.compose_samples.statistics` of stretches of music laid end to end, each in a slot
    as long as it lasts or as its last note sounds (no note overlaps the next stretch's; polyphony
    counts sounding frames only, so the gaps weigh nothing); notes per second over their `seconds`.
    None without a note."""
    placed, start = [], 0.0
    for notes, length in zip(stretches, seconds):
        shifted = notes.copy()
        shifted["onset_s"] += start
        shifted["offset_s"] += start
        placed.append(shifted)
        start += max(length, float(notes["offset_s"].max()) if len(notes) else 0.0) + 0.01
    notes = np.concatenate(placed) if placed else np.zeros(0, NOTE_DTYPE)
    if not len(notes):
        return None
    figures = statistics(notes, start)
    figures["notes_per_second"] = len(notes) / sum(seconds)
    return {name: round(value, 4) for name, value in figures.items()}


def attribution(pieces: list[Piece]) -> dict:
    """Per statistic (`pooled_statistics` over whole pieces, each lasting as its ground truth): the
    ground truth's, the transcriptions', the shift between them, and the shift each kind of error
    makes alone (the ground truth with only that kind put in); `largest` names the kind whose shift
    goes furthest the same way as the whole (None where nothing moves that way). Kinds interact,
    so their shifts need not add up to the whole."""
    seconds = [float(reference["offset_s"].max()) if len(reference) else 0.0 for reference, _, _ in pieces]
    ground_truth = pooled_statistics([reference for reference, _, _ in pieces], seconds)
    transcribed = pooled_statistics([estimate for _, estimate, _ in pieces], seconds)
    if ground_truth is None or transcribed is None:
        raise ValueError("no notes in the ground truth or the transcriptions of the pieces to compare")
    alone = {kind: pooled_statistics([with_errors(r, e, errors, [kind]) for r, e, errors in pieces], seconds)
             for kind in tqdm(KINDS, desc="errors put in", unit="kind")}
    figures = {}
    for name, base in ground_truth.items():
        shift = transcribed[name] - base
        by_kind = {kind: round(alone[kind][name] - base, 4) for kind in KINDS}
        same_way = {kind: value for kind, value in by_kind.items() if value * shift > 0}
        figures[name] = {"ground_truth": base, "transcribed": transcribed[name], "shift": round(shift, 4),
                         "relative_shift": round(shift / abs(base), 4) if base else None,
                         "by_kind": by_kind,
                         "largest": max(same_way, key=lambda kind: abs(same_way[kind])) if same_way else None}
    return figures


def stretches_of(pairs: list[tuple[str, np.ndarray, np.ndarray]], seconds: float) -> tuple[list, list]:
    """Every whole SECONDS-long stretch of each recording (notes that start inside it, from 0, as
    `compose.data.window` cuts), of the ground truth and of the transcription alike."""
    ground_truth, transcribed = [], []
    for _, reference, estimate in pairs:
        length = float(reference["offset_s"].max()) if len(reference) else 0.0
        for start in np.arange(0.0, length - seconds + 1e-9, seconds):
            ground_truth.append(_window(reference, start, seconds))
            transcribed.append(_window(estimate, start, seconds))
    return ground_truth, transcribed


def _window(notes: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    part = notes[(notes["onset_s"] >= start_s) & (notes["onset_s"] < start_s + seconds)].copy()
    part["onset_s"] -= start_s
    part["offset_s"] -= start_s
    return part
