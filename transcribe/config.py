"""Sizes and settings of the Onsets and Frames transcriber, as a frozen dataclass.

`paper()` is the MAESTRO-paper model (Hawthorne et al. 2019, ~26M parameters); `default()` is
what we ship, sized to train on a 2-core CPU and transcribe many times faster than real time;
`tiny()` is for tests.
"""

from __future__ import annotations

import dataclasses

from stages.config import JsonConfig

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
