"""`w2m2w transcribe IN OUT`: the transcription stage over a folder of recordings."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from stages.audio import AUDIO_SUFFIXES
from stages.contract import Job, Stage, content_id
from stages.midi import sequence_from_notes, write_midi
from transcribe.infer import DEFAULT_CHECKPOINT, Transcriber
from transcribe.rescore import rescorer_path


def write_notes_csv(notes: np.ndarray, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["onset_s", "offset_s", "pitch", "velocity"])
        writer.writerows((f"{n['onset_s']:.4f}", f"{n['offset_s']:.4f}", int(n["pitch"]), int(n["velocity"]))
                         for n in notes)


class TranscribeStage(Stage):
    """Recording -> `.midi` (and on request the NoteSequence `.pb` and a `.csv` of notes)."""

    name = "transcribe"
    input_suffixes = AUDIO_SUFFIXES

    def __init__(self, checkpoint: Path | str = DEFAULT_CHECKPOINT, sequence: bool = False, notes_csv: bool = False,
                 note_ends: bool = True):
        self.checkpoint = Path(checkpoint)
        self.note_ends = note_ends
        self.checkpoint_id = content_id(self.checkpoint)
        self.output_suffixes = {"midi": ".midi"}
        if sequence:
            self.output_suffixes["sequence"] = ".pb"
        if notes_csv:
            self.output_suffixes["notes"] = ".csv"
        self._transcriber: Transcriber | None = None

    def __getstate__(self):  # worker processes load their own model
        return {**self.__dict__, "_transcriber": None}

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber.load(self.checkpoint, note_ends=self.note_ends)
        return self._transcriber

    def config(self) -> dict[str, Any]:
        rescorer = rescorer_path(self.checkpoint)
        config = {"checkpoint": self.checkpoint.name, "checkpoint_sha256": self.checkpoint_id,
                  "rescorer_sha256": content_id(rescorer) if rescorer.is_file() else None}
        if not self.note_ends:  # named only when off, so folders written before the switch still match
            config["note_ends"] = False
        return config

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        notes = self.transcriber.transcribe_file(job.source)
        sequence = sequence_from_notes(notes)
        write_midi(sequence, temporaries["midi"])
        if "sequence" in temporaries:
            temporaries["sequence"].write_bytes(sequence.SerializeToString(deterministic=True))
        if "notes" in temporaries:
            write_notes_csv(notes, temporaries["notes"])
