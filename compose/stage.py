"""`w2m2w compose IN OUT`: continue every MIDI file of a folder with the Music Transformer."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from compose.composer import DEFAULT_CHECKPOINT, Composer, primer_tokens  # noqa: F401 (re-exported)
from compose.data import window
from compose.infill import AFTER_SECONDS
from compose.tokens import decode
from stages.checkpoints import check_checkpoint, load_checkpoint, require_config
from stages.contract import InputError, Job, Stage, content_id, on_terminal, partial_path
from stages.io.midi import (
    MAX_NOTE_SECONDS,
    MIDI_SUFFIXES,
    NoteSequence,
    apply_sustain,
    notes_from_sequence,
    playable,
    read_note_sequence,
    write_midi,
)
from stages.io.plots import plot_piano_rolls

NO_NOTES = "the composer wrote no notes (an empty MIDI file is no music): nothing written"


def split_at_primer_end(composed: NoteSequence, primer_end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(primer notes, new notes) of a continuation: every primer note starts before the primer's
    last event (its last note-off), every new note at or after it."""
    notes = notes_from_sequence(composed)
    is_primer = notes["onset_s"] < primer_end_s
    return notes[is_primer], notes[~is_primer]


def plot_composition(path: Path, composed: NoteSequence, primer_end_s: float, title: str) -> Path:
    """A piano roll of a continuation: the primer's notes grey, the new ones coloured by velocity."""
    primer, new = split_at_primer_end(composed, primer_end_s)
    return plot_piano_rolls(path, primer, new, title=title,
                            caption="grey: primer, outlines: new music, colour: velocity")


class ComposeStage(Stage):
    """MIDI -> `.midi`: the first `primer_seconds` of the input, continued; with `infill` (start,
    end seconds), the whole input with that stretch rewritten, best of `candidates` samplings."""

    name = "compose"
    input_suffixes = MIDI_SUFFIXES

    def __init__(self, composer: Composer, primer_seconds: float = 10.0, plot: bool = False,
                 infill: tuple[float, float] | None = None, candidates: int = 8):
        if not primer_seconds > 0:
            raise ValueError(f"the primer must last more than 0 s, not {primer_seconds}")
        if infill is not None and not 0 <= infill[0] < infill[1]:
            raise ValueError(f"the gap to fill must start at 0 s or later and before it ends, not {infill}")
        if candidates < 1:
            raise ValueError(f"at least one candidate, not {candidates}")
        check_checkpoint(composer.checkpoint, "composer")
        self.composer, self.primer_seconds = composer, primer_seconds
        self.infill = tuple(float(t) for t in infill) if infill is not None else None
        self.candidates = candidates
        self.output_suffixes = {"midi": ".midi", **({"plot": ".png"} if plot else {})}

    def prepare(self) -> None:
        from compose.config import ComposerConfig

        sampler = load_checkpoint(lambda: self.composer.sampler, self.composer.checkpoint, "composer")
        require_config(sampler.model, ComposerConfig, self.composer.checkpoint, "composer")

    def config(self) -> dict[str, Any]:
        infilling = {"infill": list(self.infill), "candidates": self.candidates} if self.infill else {}
        return {"checkpoint_sha256": content_id(self.composer.checkpoint), "primer_seconds": self.primer_seconds,
                **dataclasses.asdict(self.composer.settings), **infilling}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        piece = apply_sustain(playable(read_note_sequence(job.source)))
        if self.infill:
            filled = self.composer.infill(piece, *self.infill, context_seconds=self.primer_seconds,
                                          candidates=self.candidates)
            write_midi(filled.piece, temporaries["midi"])
            if "plot" in temporaries:
                start, end = self.infill  # the gap and the music the model read around it
                kept = notes_from_sequence(filled.piece)
                onsets = kept["onset_s"]
                kept = kept[((onsets < start) | (onsets >= end)) & (onsets >= start - self.primer_seconds)
                            & (onsets < end + AFTER_SECONDS)]
                plot_piano_rolls(temporaries["plot"], kept, notes_from_sequence(filled.new_notes),
                                 title=job.source.stem, caption=f"grey: the input, outlines: new music "
                                                                f"{start:g}-{end:g} s, colour: velocity")
            return
        primer = window(piece, 0.0, self.primer_seconds)
        if primer.total_time > self.primer_seconds + MAX_NOTE_SECONDS:  # the pedal held for ever
            raise InputError(f"the primer's notes sound until {primer.total_time:.0f} s (the sustain pedal never "
                             f"released?): at most {MAX_NOTE_SECONDS:.0f} s past the primer is allowed")
        composed = self.composer.continue_sequence(primer)
        if not composed.notes:  # an empty MIDI file is no composition
            raise InputError(NO_NOTES)
        write_midi(composed, temporaries["midi"])
        if "plot" in temporaries:  # the primer grey, where the continuation holds it
            primer_end_s = decode(primer_tokens(primer)).total_time if self.composer.settings.include_primer else 0.0
            plot_composition(temporaries["plot"], composed, primer_end_s, title=job.source.stem)


def write_new_pieces(composer: Composer, out: Path, count: int, overwrite: bool = False,
                     plot: bool = False) -> list[Path]:
    """`count` pieces from nothing, `piece-<seed>-<index>.midi` (and a `.png` piano roll with
    `plot`), each written atomically; pieces already there are kept unless `overwrite`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in tqdm(range(count), desc="compose", unit="piece", disable=not on_terminal()):
        target = out / f"piece-{composer.settings.seed:04d}-{index:03d}.midi"
        targets = [target, target.with_suffix(".png")] if plot else [target]
        if all(t.exists() for t in targets) and not overwrite:
            continue
        temporaries = [partial_path(t) for t in targets]
        try:
            piece = composer.continue_sequence(None, seed_offset=index)
            if not piece.notes:
                raise InputError(f"{target.name}: {NO_NOTES}")
            write_midi(piece, temporaries[0])
            if plot:
                plot_composition(temporaries[1], piece, 0.0, title=target.stem)
            for temporary, final in zip(temporaries, targets):
                os.replace(temporary, final)
        finally:
            for temporary in temporaries:
                temporary.unlink(missing_ok=True)
        written.append(target)
    return written


def compose_files(files, sampling) -> int:
    """`w2m2w compose`: continue (or infill) each MIDI file under `files.inputs`, or without inputs
    write `files.count` new pieces; prints what was written, returns the exit status."""
    from compose.composer import shipped_checkpoint

    checkpoint = files.checkpoint or shipped_checkpoint(sampling.composer, sampling.notes_per_second,
                                                        from_nothing=files.inputs is None)
    composer = Composer(checkpoint, sampling)
    if files.inputs is None:
        for path in write_new_pieces(composer, files.out, files.count, overwrite=files.overwrite, plot=files.plot):
            print(path)
        return 0
    stage = ComposeStage(composer, files.primer_seconds, plot=files.plot, infill=files.infill,
                         candidates=files.candidates)
    report = stage.run(files.inputs, files.out, overwrite=files.overwrite)
    print(report.summary())
    return 0 if report.ok else 1
