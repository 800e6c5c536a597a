"""The transcriber: recordings of any length -> notes, by chunked inference with overlap,
stitched, then decoded.

The log-mel spectrogram is cut into chunks of `chunk_frames` that each see `overlap_frames` of
context on both sides; only each chunk's centre is kept. The model runs on fixed-size batches
of chunks, so memory stays bounded by one batch whatever the recording's length, and the
compiled graph is traced once.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import keras
import numpy as np
import pretty_midi

from stages.checkpoints import shipped_checkpoint
from stages.contract import InputError
from stages.io.audio import stream_audio
from stages.io.interop import to_pretty_midi
from stages.io.midi import NoteSequence, sequence_from_notes
from transcribe.config import DecodingSettings, TranscriberConfig
from transcribe.decode import decode_notes, notes_between, offset_ends
from transcribe.features import SILENCE, log_mel, log_mel_blocks
from transcribe.onsets_frames.model import OnsetsAndFrames, probabilities
from transcribe.rescorer.note_ends import decode_with_ends
from transcribe.rescorer.rescore import OnsetRescorer, accepted_onsets, rescorer_path

DEFAULT_CHECKPOINT = shipped_checkpoint("transcribe")
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing a piano played
DEFAULT = DecodingSettings()


def load_transcriber_model(path: Path | str = DEFAULT_CHECKPOINT) -> OnsetsAndFrames:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcriber checkpoint not found: {path}")
    return keras.saving.load_model(path, compile=False)


def load_rescorer(transcriber_checkpoint: Path | str = DEFAULT_CHECKPOINT) -> OnsetRescorer | None:
    """The onset rescorer trained for this checkpoint (beside it), or None when it has none."""
    path = rescorer_path(transcriber_checkpoint)
    return keras.saving.load_model(path, compile=False) if Path(path).is_file() else None


def decode_probabilities(probs: dict[str, np.ndarray], config: TranscriberConfig,
                         rescorer: OnsetRescorer | None = None, settings: DecodingSettings = DEFAULT) -> np.ndarray:
    """The heads' probabilities -> notes, at the config's thresholds unless `settings` replace them:
    the stage's one decoding (`Transcriber.notes` and the Beam re-transcription, batch/retranscribe.py,
    both call it).

    With a rescorer, notes start where it accepts the onset head's candidates instead of at the
    onset threshold, and end where its note-end network hears them stop, when it has one. Notes
    shorter than `settings.min_note_ms` are dropped.
    """
    config, min_note_s = settings.applied_to(config), settings.min_note_ms / 1000.0
    onsets, onset_threshold = probs["onsets"], config.onset_threshold
    if rescorer is not None:
        onsets, onset_threshold = accepted_onsets(rescorer, probs), 0.5
        if rescorer.note_ends:
            starts = np.argwhere(onsets > 0)  # (frame, key), one per note
            ends = decode_with_ends(probs, starts, rescorer.end_logits, rescorer.sounding_threshold,
                                    rescorer.quiet_run)
            return drop_short_notes(notes_between(starts, ends, probs["velocities"], config.frames_per_second),
                                    min_note_s)
    notes = decode_notes(probs["frames"], onsets, probs["velocities"], config.frames_per_second,
                         frame_threshold=config.frame_threshold, onset_threshold=onset_threshold,
                         note_ends=offset_ends(probs["frames"], probs["offsets"], config.offset_threshold,
                                               config.offset_frame_gate),
                         offset_correction_s=config.offset_correction_s)
    return drop_short_notes(notes, min_note_s)


def drop_short_notes(notes: np.ndarray, min_note_s: float) -> np.ndarray:
    """The notes that last at least `min_note_s` seconds."""
    return notes[notes["offset_s"] - notes["onset_s"] >= min_note_s] if min_note_s > 0 else notes


@dataclasses.dataclass(frozen=True)
class Window:
    """Where a window lies in its recording: the `index`th of `count` windows, its centre (the
    frames it is kept for) `start` to `start + length` of the recording's `total_frames`, at
    `offset` frames into the window."""

    index: int
    count: int
    start: int
    offset: int
    length: int
    total_frames: int

    @property
    def first(self) -> int:
        """The recording's frame the window begins at."""
        return self.start - self.offset


def windows(total_frames: int, config: TranscriberConfig) -> list[Window]:
    """The windows of a recording of `total_frames` (padded to one window when shorter): a centre
    every `chunk_frames`, seen with `overlap_frames` of context each side. Windows never run past
    the clip (the last one is shifted back to end with it), so that the clip's own start and end
    look to the model exactly as in one whole pass. `Transcriber.predict` and the Beam
    re-transcription both lay recordings out with it."""
    size = config.chunk_frames + 2 * config.overlap_frames
    starts = list(range(0, total_frames, config.chunk_frames))
    found = []
    for index, start in enumerate(starts):
        first = min(max(0, start - config.overlap_frames), max(total_frames - size, 0))
        found.append(Window(index, len(starts), start, start - first, min(config.chunk_frames, total_frames - start),
                            total_frames))
    return found


class Transcriber:
    """Onsets and Frames with its decoding settings (transcribe.config.DecodingSettings): audio ->
    note array (stages.io.midi). The settings' thresholds replace the checkpoint's tuned values; the
    onset threshold only counts without a rescorer (the rescorer decides onsets in its place) and
    the frame threshold only where notes are not ended by the rescorer's note-end network.
    """

    def __init__(self, model: OnsetsAndFrames, batch_chunks: int = 2, rescorer: OnsetRescorer | None = None,
                 settings: DecodingSettings = DEFAULT):
        self.model = model
        self.settings = settings
        self.config: TranscriberConfig = settings.applied_to(model.config)
        self.batch_chunks = batch_chunks
        self.rescorer = rescorer

    @classmethod
    def load(cls, path: Path | str = DEFAULT_CHECKPOINT, settings: DecodingSettings = DEFAULT,
             **changes) -> "Transcriber":
        """The checkpoint's transcriber at these settings (keyword arguments change single
        fields: `Transcriber.load(path, rescore=False)`): with the rescorer beside it unless
        `rescore` is False; with `note_ends` False, its onsets only (notes then end at the thresholds)."""
        settings = settings.replace(**changes) if changes else settings
        rescorer = load_rescorer(path) if settings.rescore else None
        if rescorer is not None and not settings.note_ends:
            rescorer.note_ends = False
        return cls(load_transcriber_model(path), rescorer=rescorer, settings=settings)

    def predict(self, mel: np.ndarray) -> dict[str, np.ndarray]:
        """(frames, mel_bins) -> {onsets, offsets, frames, velocities}: (frames, 88) each."""
        c = self.config
        total = len(mel)
        window = c.chunk_frames + 2 * c.overlap_frames
        if total < window:  # one window, padded with silence at the end (one traced shape)
            padded = np.full((window, c.mel_bins), SILENCE, np.float32)
            padded[:total] = mel
            probs = probabilities(self.model.predict_on_batch(padded[None]))
            return {name: values[0, :total] for name, values in probs.items()}
        outputs = {name: np.zeros((total, 88), np.float32) for name in ("onsets", "offsets", "frames", "velocities")}
        layout = windows(total, c)
        for batch_start in range(0, len(layout), self.batch_chunks):
            batch = layout[batch_start: batch_start + self.batch_chunks]
            x = np.stack([mel[w.first: w.first + window] for w in batch]).astype(np.float32)
            if len(batch) < self.batch_chunks:  # a fixed batch shape: the graph is traced once
                x = np.concatenate([x, np.repeat(x[-1:], self.batch_chunks - len(batch), axis=0)])
            probs = probabilities(self.model.predict_on_batch(x))
            for i, w in enumerate(batch):
                for name, values in probs.items():
                    outputs[name][w.start: w.start + w.length] = values[i, w.offset: w.offset + w.length]
        return outputs

    def transcribe(self, audio: np.ndarray) -> np.ndarray:
        """16 kHz mono audio -> notes (stages.io.midi note array)."""
        return self.notes(self.predict(log_mel(audio, self.config)))

    def transcribe_file(self, path: Path | str) -> np.ndarray:
        """Any audio file -> notes; the audio is decoded block by block, never held whole."""
        return self.notes(self.predict_file(path))

    def predict_file(self, path: Path | str) -> dict[str, np.ndarray]:
        """Any audio file -> the heads' probabilities, (frames, 88) each."""
        return self.predict(self.features_file(path))  # an hour of features is 100 MB: freed before decoding

    def features_file(self, path: Path | str) -> np.ndarray:
        """Any audio file -> its log-mel frames, (frames, mel_bins); InputError if it is silent."""
        peak = 0.0

        def blocks():
            nonlocal peak
            for block in stream_audio(path, self.config.sample_rate_hz):
                peak = max(peak, float(np.abs(block).max(initial=0.0)))
                yield block

        mel = log_mel_blocks(blocks(), self.config)
        if peak < SILENCE_PEAK:
            raise InputError("audio is silent (peak below -80 dBFS): nothing to transcribe")
        return mel

    def notes(self, probs: dict[str, np.ndarray]) -> np.ndarray:
        """The heads' probabilities -> notes, at this transcriber's settings."""
        return decode_probabilities(probs, self.config, self.rescorer, self.settings)


def sequence_at_tempo(notes: np.ndarray, midi_tempo_qpm: float = 120.0) -> NoteSequence:
    """A note array as a NoteSequence whose MIDI file states this tempo (the notes' times in
    seconds stay as they are; the tempo only sets how they fall on beats in a MIDI editor)."""
    if not midi_tempo_qpm > 0:
        raise ValueError(f"the MIDI tempo must be positive, not {midi_tempo_qpm}")
    sequence = sequence_from_notes(notes)
    sequence.tempos[0].qpm = midi_tempo_qpm
    return sequence


@functools.lru_cache(maxsize=2)
def _loaded(checkpoint: Path, settings: DecodingSettings) -> Transcriber:
    return Transcriber.load(checkpoint, settings)


def transcribe(path: Path | str, *, checkpoint: Path | str = DEFAULT_CHECKPOINT, settings: DecodingSettings = DEFAULT,
               **changes) -> pretty_midi.PrettyMIDI:
    """A recording (any format, sample rate and channel count) -> its notes as MIDI.

    `settings` are those of `w2m2w transcribe` (transcribe.config.DecodingSettings); keyword
    arguments change single fields (`transcribe(path, min_note_ms=50)`). The model is loaded once
    and reused by later calls with the same settings.
    """
    settings = settings.replace(**changes) if changes else settings
    transcriber = _loaded(Path(checkpoint).resolve(), settings)
    return to_pretty_midi(sequence_at_tempo(transcriber.transcribe_file(path), settings.midi_tempo))
