"""`w2m2w compose IN OUT`: continue every MIDI file of a folder with the Music Transformer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from compose.data import window
from compose.sample import Sampler
from compose.tokens import decode, encode
from stages.contract import InputError, Job, Stage, content_id, partial_path
from stages.midi import MIDI_SUFFIXES, NoteSequence, apply_sustain, read_note_sequence, write_midi

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default.keras"


class Composer:
    """A Music Transformer and its sampling settings: primer NoteSequence -> new NoteSequence."""

    def __init__(self, checkpoint: Path | str = DEFAULT_CHECKPOINT, seconds: float = 30.0, max_tokens: int = 4096,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 0.95, seed: int = 0):
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"composer checkpoint not found: {checkpoint}")
        self.checkpoint = Path(checkpoint)
        self.settings = dict(seconds=seconds, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                             top_p=top_p, seed=seed)
        self._sampler: Sampler | None = None

    @property
    def sampler(self) -> Sampler:
        if self._sampler is None:
            self._sampler = Sampler(keras.saving.load_model(self.checkpoint, compile=False))
        return self._sampler

    def continue_sequence(self, primer: NoteSequence | None, seed_offset: int = 0) -> NoteSequence:
        """The primer followed by new music (or new music alone when there is no primer)."""
        primer_tokens = encode(primer, sustain=False) if primer is not None and primer.notes else np.zeros(0, np.int32)
        settings = dict(self.settings, seed=self.settings["seed"] + seed_offset)
        new = self.sampler.generate(primer_tokens, **settings)
        return decode(np.concatenate([primer_tokens, new]))


class ComposeStage(Stage):
    """MIDI -> `.midi`: the first `primer_seconds` of the input, continued."""

    name = "compose"
    input_suffixes = MIDI_SUFFIXES
    output_suffixes = {"midi": ".midi"}

    def __init__(self, composer: Composer, primer_seconds: float = 10.0):
        self.composer, self.primer_seconds = composer, primer_seconds

    def config(self) -> dict[str, Any]:
        return {"checkpoint_sha256": content_id(self.composer.checkpoint), "primer_seconds": self.primer_seconds,
                **self.composer.settings}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        piece = apply_sustain(read_note_sequence(job.source))
        if not piece.notes:
            raise InputError("MIDI file has no notes to continue")
        primer = window(piece, 0.0, self.primer_seconds)
        write_midi(self.composer.continue_sequence(primer), temporaries["midi"])


def write_new_pieces(composer: Composer, out: Path, count: int, overwrite: bool = False) -> list[Path]:
    """`count` pieces from nothing, `piece-<seed>-<index>.midi`, each written atomically;
    pieces already there are kept unless `overwrite`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in tqdm(range(count), desc="compose", unit="piece"):
        target = out / f"piece-{composer.settings['seed']:04d}-{index:03d}.midi"
        if target.exists() and not overwrite:
            continue
        temporary = partial_path(target)
        try:
            write_midi(composer.continue_sequence(None, seed_offset=index), temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        written.append(target)
    return written
