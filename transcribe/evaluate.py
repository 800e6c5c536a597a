"""Score a transcriber on a MAESTRO-layout split, per the MAESTRO paper's protocol: metrics per
piece against the sustain-extended reference MIDI (cut to the audio), then averaged over pieces.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from maestro.metadata import Dataset
from maestro.render import read_soundfonts
from stages.io.audio import load_audio
from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence, read_note_sequence
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.transcriber import Transcriber


def reference_notes(midi_path: Path, end_seconds: float | None) -> np.ndarray:
    """Sustain-extended notes that begin before `end_seconds` (the audio's end), offsets cut
    there; all of them when `end_seconds` is None."""
    notes = notes_from_sequence(apply_sustain(read_note_sequence(midi_path)))
    if end_seconds is None:
        return notes
    notes = notes[notes["onset_s"] < end_seconds].copy()
    notes["offset_s"] = np.minimum(notes["offset_s"], end_seconds)
    return notes[notes["offset_s"] > notes["onset_s"]].astype(NOTE_DTYPE)


@dataclasses.dataclass
class Evaluation:
    mean: dict[str, float]
    pieces: list[dict]
    audio_seconds: float
    wall_seconds: float
    # Means over the pieces rendered with each soundfont (a rendered dataset's renders.csv).
    by_soundfont: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def evaluate(transcriber: Transcriber, root: Path | str, split: str = "test",
             excerpt_seconds: float | None = None, limit: int | None = None, progress: bool = True) -> Evaluation:
    """Transcribe every recording of a split (or its first `excerpt_seconds`) and score it."""
    dataset = Dataset.open(root)
    soundfonts = read_soundfonts(root)
    records = dataset.select(splits=[split])[:limit]
    if not records:
        raise ValueError(f"no {split} records in {root}")
    pieces, audio_seconds, start = [], 0.0, time.perf_counter()
    for record in tqdm(records, desc=f"evaluate {split}", unit="piece", disable=not progress):
        audio = load_audio(dataset.audio_path(record), transcriber.config.sample_rate_hz,
                           duration_seconds=excerpt_seconds)
        seconds = len(audio) / transcriber.config.sample_rate_hz
        estimate = transcriber.transcribe(audio)
        reference = reference_notes(dataset.midi_path(record), seconds)
        metrics = transcription_metrics(reference, estimate, transcriber.config.frames_per_second)
        soundfont = {"soundfont": soundfonts[record.audio_filename]} if record.audio_filename in soundfonts else {}
        pieces.append({"audio_filename": record.audio_filename, "composer": record.canonical_composer,
                       "title": record.canonical_title, "seconds": round(seconds, 3), **soundfont, **metrics})
        audio_seconds += seconds
    metric_keys = [k for k in pieces[0] if "/" in k]

    def mean_of(selected):
        return mean_metrics([{k: p[k] for k in metric_keys} for p in selected])

    by_soundfont = {name: mean_of([p for p in pieces if p.get("soundfont") == name])
                    for name in sorted({p["soundfont"] for p in pieces if "soundfont" in p})}
    return Evaluation(mean_of(pieces), pieces, audio_seconds, time.perf_counter() - start, by_soundfont)
