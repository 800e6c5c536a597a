"""The composer: a Music Transformer checkpoint with its sampling settings, and `compose()`,
the one-call API (MIDI in, MIDI with new music after it out)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import pretty_midi

from compose import conditioning
from compose.config import SamplingSettings
from compose.data import window
from compose.sample import Sampler
from compose.tokens import decode, encode
from stages import checkpoints
from stages.contract import InputError
from stages.io.interop import as_note_sequence, to_pretty_midi
from stages.io.midi import NoteSequence, apply_sustain

if TYPE_CHECKING:
    from compose.infill import Infilled

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = checkpoints.shipped_checkpoint("compose")
CONDITIONED_CHECKPOINT = checkpoints.shipped_checkpoint("compose", checkpoints.CONDITIONED)
DEFAULT = SamplingSettings()


def shipped_checkpoint(composer: str | None = None, notes_per_second: float | None = None,
                       from_nothing: bool = False) -> Path:
    """The shipped composer for the task (stages.checkpoints.checkpoint_for says which, and why)."""
    return checkpoints.checkpoint_for("compose", composer=composer, notes_per_second=notes_per_second,
                                      from_nothing=from_nothing)


class Composer:
    """A Music Transformer and its sampling settings: primer NoteSequence -> new NoteSequence.

    `composer` (ASAP's labels, e.g. "Chopin") and `notes_per_second` steer a model trained with
    conditioning tokens (compose/conditioning.py); None leaves either free. Without a `checkpoint`,
    the shipped one for the task (shipped_checkpoint). A continuation holds the new music alone,
    from time 0, unless `include_primer`."""

    def __init__(self, checkpoint: Path | str | None = None, settings: SamplingSettings = DEFAULT, **changes):
        settings = settings.replace(**changes) if changes else settings
        checkpoint = checkpoint or shipped_checkpoint(settings.composer, settings.notes_per_second)
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"composer checkpoint not found: {checkpoint}")
        self.conditioning = conditioning.prefix(settings.composer, settings.notes_per_second)  # checks the name
        self.checkpoint, self.settings = Path(checkpoint), settings
        self._sampler: Sampler | None = None

    @property
    def sampler(self) -> Sampler:
        if self._sampler is None:
            self._sampler = Sampler(keras.saving.load_model(self.checkpoint, compile=False))
        return self._sampler

    def continue_sequence(self, primer: NoteSequence | None, seed_offset: int = 0) -> NoteSequence:
        """New music after the primer (with `include_primer`, the primer followed by it)."""
        tokens = primer_tokens(primer)
        settings = dict(self.settings.sampler_arguments(), seed=self.settings.seed + seed_offset)
        new = self.sampler.generate(tokens, conditioning=self.conditioning, **settings)
        if len(new) >= settings["max_tokens"]:  # cut short by --max-tokens, not by --seconds nor the model's end
            reached = decode(new).total_time
            if reached < settings["seconds"] - 0.01:
                log.warning("the new music stopped at %.1f s of the %g s asked: --max-tokens %d events were used up "
                            "(raise it for longer music)", reached, settings["seconds"], settings["max_tokens"])
        return decode(np.concatenate([tokens, new]) if self.settings.include_primer else new)

    def infill(self, piece: NoteSequence, start_s: float, end_s: float, context_seconds: float = 10.0,
               candidates: int = 8) -> "Infilled":
        """`piece` with [start_s, end_s) rewritten to lead from the music before into the music
        after (compose/infill.py); the best of `candidates` samplings."""
        from compose.infill import infill

        sampling = {k: v for k, v in self.settings.sampler_arguments().items() if k not in ("seconds", "seed")}
        return infill(self.sampler, piece, start_s, end_s, context_seconds=context_seconds, candidates=candidates,
                      lead=self.conditioning, seed=self.settings.seed, **sampling)


def primer_tokens(primer: NoteSequence | None) -> np.ndarray:
    """The tokens a continuation starts from (none without a primer or its notes)."""
    return encode(primer, sustain=False) if primer is not None and primer.notes else np.zeros(0, np.int32)


@functools.lru_cache(maxsize=1)
def _sampler(checkpoint: Path) -> Sampler:
    return Composer(checkpoint).sampler


def compose(midi: pretty_midi.PrettyMIDI | NoteSequence | Path | str | None = None, seconds: float | None = None, *,
            primer_seconds: float = 10.0, checkpoint: Path | str | None = None, settings: SamplingSettings = DEFAULT,
            **changes) -> pretty_midi.PrettyMIDI:
    """`seconds` (default 30) of new music continuing the first `primer_seconds` of `midi` (sustain pedal
    applied), from time 0 (include_primer=True: after the primer, as one piece); new music from
    nothing when `midi` is None, as on the command line.
    `settings` (compose.config.SamplingSettings, `w2m2w compose`'s options); keyword arguments change
    single fields (include_primer, temperature, top_k, top_p, seed, max_tokens, in_grammar, composer,
    notes_per_second). The model is loaded once."""
    settings = settings.replace(**changes, **({"seconds": seconds} if seconds is not None else {}))
    checkpoint = checkpoint or shipped_checkpoint(settings.composer, settings.notes_per_second,
                                                  from_nothing=midi is None)
    composer = Composer(checkpoint, settings)
    composer._sampler = _sampler(composer.checkpoint.resolve())
    primer = None
    if midi is not None:
        piece = apply_sustain(as_note_sequence(midi))
        if not piece.notes:
            raise InputError("MIDI has no notes to continue")
        primer = window(piece, 0.0, primer_seconds)
    return to_pretty_midi(composer.continue_sequence(primer))
