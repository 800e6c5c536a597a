"""The synthesizer: the WaveNet renders a NoteSequence as segments generated side by side and
joined; and `synthesize()`, the one-call API (MIDI in, audio out)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pretty_midi

from stages.checkpoints import shipped_checkpoint
from stages.contract import InputError
from stages.io.interop import as_note_sequence
from stages.io.midi import NoteSequence, apply_sustain, notes_from_sequence
from synthesize.conditioning import performance_roll, snap_to_render_grid
from synthesize.config import RenderSettings
from synthesize.excitation import config_excitation
from synthesize.generate import Generator, ParallelGenerator, join_segments, segment_plan, set_loudness

DEFAULT_CHECKPOINT = shipped_checkpoint("synthesize")
DEFAULT = RenderSettings()


class Synthesizer:
    """NoteSequence -> audio, as segments generated side by side and joined."""

    def __init__(self, model, segment_seconds: float = 2.0, batch_segments: int = 32,
                 settings: RenderSettings = DEFAULT):
        self.model, self.config, self.settings = model, model.config, settings
        self.parallel = self.config.architecture == "parallel"
        self.generator = (ParallelGenerator(model, temperature=settings.temperature) if self.parallel
                          else Generator(model, temperature=settings.temperature))
        self.output_rms_lsb = (self.config.output_rms_lsb if settings.output_rms_lsb is None
                               else float(settings.output_rms_lsb))
        spf = self.config.samples_per_frame
        self.segment = int(segment_seconds * self.config.sample_rate_hz) // spf * spf
        # Enough lead-in to flush the start-up transient out of the receptive field, whole frames.
        self.lead_in = -(-max(2048, 2 * self.config.receptive_field) // spf) * spf
        self.crossfade = 4 * spf
        self.batch_segments, self.seed = batch_segments, settings.seed

    @classmethod
    def load(cls, path: Path | str = DEFAULT_CHECKPOINT, settings: RenderSettings = DEFAULT,
             **changes) -> "Synthesizer":
        """The checkpoint's synthesizer at these settings; keyword arguments change single fields
        (`Synthesizer.load(path, temperature=0.5)`)."""
        settings = settings.replace(**changes) if changes else settings
        if not Path(path).is_file():
            raise FileNotFoundError(f"synthesizer checkpoint not found: {path}")
        return cls(keras.saving.load_model(path, compile=False), settings=settings)

    def render(self, sequence: NoteSequence, progress: Callable[[float], None] | None = None) -> np.ndarray:
        """(samples,) float32 audio at the model's sample rate."""
        c, spf = self.config, self.config.samples_per_frame
        notes = snap_to_render_grid(notes_from_sequence(apply_sustain(sequence)), c.render_grid_samples,
                                    c.sample_rate_hz)
        roll = performance_roll(notes, c.roll_rate_hz)
        if self.parallel:  # the whole piece in one pass, segments side by side
            report = (lambda samples: progress(samples / c.sample_rate_hz)) if progress else None
            audio = self.generator.run(roll, lambda first, length: config_excitation(notes, first, length, c),
                                       seed=self.seed, progress=report)
            return set_loudness(audio, self.output_rms_lsb)
        total = len(roll) * spf
        plan = segment_plan(total, self.segment, self.lead_in, self.crossfade)
        margin = self.model.context.margin
        before = self.lead_in // spf + margin  # frames of silence before the piece
        padded = np.pad(roll, ((before, (self.segment + self.crossfade) // spf + margin), (0, 0)))
        segments = []
        for group in range(0, len(plan), self.batch_segments):
            spans = plan[group: group + self.batch_segments]
            rolls = np.stack([padded[first // spf + before - margin: last // spf + before + margin]
                              for first, last in spans])
            excitation = None
            if c.harmonics:  # from the whole piece's notes, so phases run on across segments
                excitation = np.stack([config_excitation(notes, first, last - first, c)
                                       for first, last in spans])
            conditioning = np.asarray(self.model.condition(rolls, excitation))
            count = len(rolls)
            report = (lambda samples: progress(samples * count / c.sample_rate_hz)) if progress else None
            segments.extend(self.generator.run(conditioning, seed=self.seed + group, progress=report))
        audio = join_segments(np.stack(segments), total, self.segment, self.lead_in, self.crossfade)
        return set_loudness(audio, self.output_rms_lsb)


@functools.lru_cache(maxsize=1)
def _model(checkpoint: Path):
    return Synthesizer.load(checkpoint).model


def synthesize(midi: pretty_midi.PrettyMIDI | NoteSequence | Path | str, *,
               checkpoint: Path | str = DEFAULT_CHECKPOINT, settings: RenderSettings = DEFAULT,
               **changes) -> tuple[np.ndarray, int]:
    """MIDI (sustain pedal applied) -> (audio, sample rate): audio (samples,) float32, at `settings`
    (synthesize.config.RenderSettings, as `w2m2w synthesize`'s options; keyword arguments change
    single fields: `seed`, `temperature`, `output_rms_lsb`). The model is loaded once and reused
    by later calls."""
    settings = settings.replace(**changes) if changes else settings
    sequence = as_note_sequence(midi)
    if not sequence.notes:
        raise InputError("MIDI has no notes to play")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"synthesizer checkpoint not found: {checkpoint}")
    synthesizer = Synthesizer(_model(Path(checkpoint).resolve()), settings=settings)
    return synthesizer.render(sequence), synthesizer.config.sample_rate_hz
