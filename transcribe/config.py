"""Sizes and settings of the Onsets and Frames transcriber, as a frozen dataclass.

`paper()` is the MAESTRO-paper model (Hawthorne et al. 2019, ~26M parameters); `default()` is
what we ship, sized to train on a 2-core CPU and transcribe many times faster than real time;
`tiny()` is for tests.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stages import options
from stages.config import JsonConfig
from stages.settings import Settings, setting

# The package every transcription network's Keras objects are registered under: checkpoints
# store it ("wave2midi2wave.transcribe>OnsetsAndFrames"), and the registered name is what loading
# looks up, so the modules may move between sub-packages but this string must never change.
PACKAGE = "wave2midi2wave.transcribe"


@dataclasses.dataclass(frozen=True)
class TranscriberConfig(JsonConfig):
    name: str = "default"
    # Front end: log-mel spectrogram (16 kHz, 229 bins, hop 512 = 32 ms frames, 30 Hz up).
    sample_rate_hz: int = 16_000
    hop_length: int = 512
    fft_size: int = 2048
    mel_bins: int = 229
    fmin_hz: float = 30.0
    fmax_hz: float = 8_000.0
    # Acoustic model: three 3x3 convolutions with frequency pooling, then a dense layer.
    conv_channels: tuple[int, int, int] = (16, 16, 32)
    dense_units: int = 192
    # Bidirectional LSTM units per direction (onset, offset and frame stacks).
    lstm_units: int = 96
    dropout: float = 0.25
    # Training.
    learning_rate: float = 6e-4
    decay_steps: int = 10_000
    decay_rate: float = 0.98
    clip_norm: float = 3.0
    batch_size: int = 8
    crop_frames: int = 320  # ~10 s
    # The onset and frame losses on keys below `low_register_below` (MIDI; 48 is C3) weigh this many
    # times the others': a recorded grand's bass, weak in fundamentals, is what the model hears worst.
    low_register_weight: float = 1.0
    low_register_below: int = 48
    # Inference: chunks of audio with overlap, stitched at their centres.
    chunk_frames: int = 625  # 20 s
    overlap_frames: int = 64  # ~2 s of context on each side
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5
    offset_threshold: float | None = None  # None: the frame head alone ends notes (the paper's decoding)
    # The offset head ends a note only where the frame head is less sure than this.
    offset_frame_gate: float = 0.7
    # Added to every decoded note end (negative: earlier), chosen on validation with the thresholds:
    # at a low frame threshold the frame head's fading tail holds notes about a frame too long.
    offset_correction_s: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate_hz / self.hop_length

    @classmethod
    def paper(cls) -> "TranscriberConfig":
        return cls(name="paper", conv_channels=(48, 48, 96), dense_units=768, lstm_units=256,
                   batch_size=8, crop_frames=625)

    @classmethod
    def default(cls) -> "TranscriberConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "TranscriberConfig":
        return cls(name="tiny", conv_channels=(4, 4, 8), dense_units=16, lstm_units=8,
                   batch_size=2, crop_frames=64, chunk_frames=96, overlap_frames=16)


@dataclasses.dataclass(frozen=True)
class DecodingSettings(Settings):
    """How the heads' probabilities become notes and MIDI, declared once: `w2m2w transcribe`,
    `maestro retranscribe` and `full` derive their options from these fields, and the stage, the
    `Transcriber`, `transcribe()`, the Prefect flows and the Beam re-transcription take the object
    itself. None for a threshold: the checkpoint's tuned value."""

    onset_threshold: float | None = setting(
        None, options.THRESHOLD, metavar="P",
        help="onset head probability that starts a note (default: the checkpoint's); only without the rescorer, "
             "which decides onsets in its place: give --no-rescorer")
    frame_threshold: float | None = setting(
        None, options.THRESHOLD, metavar="P",
        help="frame head probability that holds a note (default: the checkpoint's); only where the rescorer's "
             "note-end network does not end notes: give --no-note-ends or --no-rescorer")
    min_note_ms: float = setting(0.0, options.MIN_NOTE_MS, metavar="MS",
                                 help="drop notes shorter than this (default: 0, keep all)")
    rescore: bool = setting(
        True, flag="--no-rescorer",
        help="start notes at the onset threshold, without the onset rescorer that lies beside the checkpoint "
             "(CHECKPOINT.rescorer.keras)")
    note_ends: bool = setting(
        True, flag="--no-note-ends",
        help="end notes at the frame and offset thresholds, not where the rescorer's note-end network hears them "
             "stop (it learned on FluidSynth renders; on audio unlike them the thresholds may end notes better)")
    midi_tempo: float = setting(
        120.0, options.MIDI_TEMPO, metavar="BPM",
        help="the tempo the MIDI files state (default: 120; note times are in seconds whatever it is, it sets "
             "where they fall on beats in a score editor)")

    def applied_to(self, config: TranscriberConfig) -> TranscriberConfig:
        """The checkpoint's config with these thresholds in place of its tuned ones."""
        thresholds = {name: value for name, value in (("onset_threshold", self.onset_threshold),
                                                      ("frame_threshold", self.frame_threshold)) if value is not None}
        return dataclasses.replace(config, **thresholds) if thresholds else config

    def check_for(self, checkpoint: Path | str) -> None:
        """ValueError for a threshold the rescorer beside a (local) checkpoint would leave unused."""
        from stages.checkpoints import companion, read_record

        if not self.rescore or "://" in str(checkpoint) or not Path(companion(checkpoint, "rescorer")).is_file():
            return
        if self.onset_threshold is not None:
            raise ValueError("--onset-threshold is not used with the onset rescorer (it decides where notes start); "
                             "add --no-rescorer to start notes at the threshold")
        record = read_record(checkpoint, "rescorer_record")
        if self.frame_threshold is not None and self.note_ends and (record is None or "note_ends" in record):
            raise ValueError("--frame-threshold is not used with the rescorer's note-end network (it decides where "
                             "notes stop); add --no-note-ends or --no-rescorer")
