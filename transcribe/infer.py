"""Transcribe recordings of any length: chunked inference with overlap, stitched, decoded.

The log-mel spectrogram is cut into chunks of `chunk_frames` that each see `overlap_frames` of
context on both sides; only each chunk's centre is kept. The model runs on fixed-size batches
of chunks, so memory stays bounded by one batch whatever the recording's length, and the
compiled graph is traced once.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from stages.audio import stream_audio
from stages.contract import InputError
from transcribe.config import TranscriberConfig
from transcribe.decode import decode_notes, notes_between, offset_ends
from transcribe.features import SILENCE, log_mel, log_mel_blocks
from transcribe.model import OnsetsAndFrames, probabilities
from transcribe.note_ends import decode_with_ends
from transcribe.rescore import OnsetRescorer, accepted_onsets, rescorer_path

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default.keras"
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing a piano played


def load_transcriber_model(path: Path | str = DEFAULT_CHECKPOINT) -> OnsetsAndFrames:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcriber checkpoint not found: {path}")
    return keras.saving.load_model(path, compile=False)


def load_rescorer(transcriber_checkpoint: Path | str = DEFAULT_CHECKPOINT) -> OnsetRescorer | None:
    """The onset rescorer trained for this checkpoint (beside it), or None when it has none."""
    path = rescorer_path(transcriber_checkpoint)
    return keras.saving.load_model(path, compile=False) if path.is_file() else None


def float16_rounded(probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The heads at float16 precision (as float32), the precision the Beam re-transcription ships
    them in: decoding them in-process then decides as Beam does."""
    return {name: np.asarray(values, np.float16).astype(np.float32) for name, values in probs.items()}


def decode_probabilities(probs: dict[str, np.ndarray], config: TranscriberConfig,
                         rescorer: OnsetRescorer | None = None) -> np.ndarray:
    """The heads' probabilities -> notes, at the config's thresholds; with a rescorer, notes
    start where it accepts the onset head's candidates instead of at the onset threshold, and
    end where its note-end network hears them stop, when it has one."""
    onsets, onset_threshold = probs["onsets"], config.onset_threshold
    if rescorer is not None:
        probs = float16_rounded(probs)
        onsets, onset_threshold = accepted_onsets(rescorer, probs), 0.5
        if rescorer.note_ends:
            starts = np.argwhere(onsets > 0)  # (frame, key), one per note
            ends = decode_with_ends(probs, starts, rescorer.end_logits, rescorer.sounding_threshold,
                                    rescorer.quiet_run)
            return notes_between(starts, ends, probs["velocities"], config.frames_per_second)
    return decode_notes(probs["frames"], onsets, probs["velocities"], config.frames_per_second,
                        frame_threshold=config.frame_threshold, onset_threshold=onset_threshold,
                        note_ends=offset_ends(probs["frames"], probs["offsets"], config.offset_threshold,
                                              config.offset_frame_gate),
                        offset_correction_s=config.offset_correction_s)


class Transcriber:
    def __init__(self, model: OnsetsAndFrames, batch_chunks: int = 2, rescorer: OnsetRescorer | None = None):
        self.model = model
        self.config: TranscriberConfig = model.config
        self.batch_chunks = batch_chunks
        self.rescorer = rescorer

    @classmethod
    def load(cls, path: Path | str = DEFAULT_CHECKPOINT, rescore: bool = True, note_ends: bool = True,
             **kwargs) -> "Transcriber":
        """The checkpoint's transcriber, with the rescorer beside it unless `rescore` is False;
        with `note_ends` False, its onsets only (notes then end at the config's thresholds)."""
        rescorer = load_rescorer(path) if rescore else None
        if rescorer is not None and not note_ends:
            rescorer.note_ends = False
        return cls(load_transcriber_model(path), rescorer=rescorer, **kwargs)

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
        centres = list(range(0, total, c.chunk_frames))
        for batch_start in range(0, len(centres), self.batch_chunks):
            batch = centres[batch_start: batch_start + self.batch_chunks]
            # Windows never run past the clip (the last one is shifted back to end with it), so
            # the clip's own start and end look to the model exactly as in one whole pass.
            firsts = [min(max(0, centre - c.overlap_frames), total - window) for centre in batch]
            x = np.stack([mel[first: first + window] for first in firsts]).astype(np.float32)
            if len(batch) < self.batch_chunks:  # a fixed batch shape: the graph is traced once
                x = np.concatenate([x, np.repeat(x[-1:], self.batch_chunks - len(batch), axis=0)])
            probs = probabilities(self.model.predict_on_batch(x))
            for i, (centre, first) in enumerate(zip(batch, firsts)):
                length = min(c.chunk_frames, total - centre)
                for name, values in probs.items():
                    outputs[name][centre: centre + length] = values[i, centre - first: centre - first + length]
        return outputs

    def transcribe(self, audio: np.ndarray) -> np.ndarray:
        """16 kHz mono audio -> notes (stages.midi note array)."""
        return self.notes(self.predict(log_mel(audio, self.config)))

    def transcribe_file(self, path: Path | str) -> np.ndarray:
        """Any audio file -> notes; the audio is decoded block by block, never held whole."""
        peak = 0.0

        def blocks():
            nonlocal peak
            for block in stream_audio(path, self.config.sample_rate_hz):
                peak = max(peak, float(np.abs(block).max(initial=0.0)))
                yield block

        mel = log_mel_blocks(blocks(), self.config)
        if peak < SILENCE_PEAK:
            raise InputError("audio is silent (peak below -80 dBFS): nothing to transcribe")
        probs = self.predict(mel)
        del mel  # an hour of features is 100 MB: free it before decoding
        return self.notes(probs)

    def notes(self, probs: dict[str, np.ndarray]) -> np.ndarray:
        return decode_probabilities(probs, self.config, self.rescorer)
