"""The sustain pedal (CC 64) from audio, and notes ended at key release.

Onsets and Frames learns notes as they sound, pedal included (the MAESTRO protocol). Users who
want notation or playback with a pedal ask for the pedal itself: as Kong et al. (2021) do, a small
network of its own reads the same log-mel frames and predicts, per frame, whether the pedal is
down, and where it is pressed and released (3 outputs; heads trained with log-loss on CC 64 >= 64
from the MIDI). Decoding turns those into pedal intervals; `key_releases` then ends each note
where its key was let go, so that applying the pedal again gives back the notes as they sounded.

  PedalNet   log-mel (B, T, mel_bins) -> logits (B, T, 3): down, pressed, released
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from stages.checkpoints import companion
from stages.config import JsonConfig
from stages.io.midi import SUSTAIN_CONTROL, NoteSequence
from transcribe.config import PACKAGE
from transcribe.onsets_frames.model import AcousticModel  # the pedal network hears with the same acoustic stack

DOWN, PRESSED, RELEASED = range(3)
PEDAL_DOWN_VALUE = 64  # CC 64 at or above this holds the dampers off


@dataclasses.dataclass(frozen=True)
class PedalConfig(JsonConfig):
    name: str = "default"
    conv_channels: tuple[int, int, int] = (8, 8, 16)
    dense_units: int = 64
    lstm_units: int = 48
    dropout: float = 0.2
    learning_rate: float = 1e-3
    decay_steps: int = 5_000
    decay_rate: float = 0.9
    clip_norm: float = 3.0
    batch_size: int = 8
    crop_frames: int = 640  # ~20 s: pedal changes are slower than notes
    # Decoding: the pedal is down where the frame probability reaches `threshold`; a press or release
    # within `snap_frames` of a run's edge moves the edge to it; shorter runs and gaps are dropped.
    threshold: float = 0.5
    event_threshold: float = 0.3
    snap_frames: int = 3
    min_frames: int = 3

    @classmethod
    def default(cls) -> "PedalConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "PedalConfig":
        return cls(name="tiny", conv_channels=(2, 2, 4), dense_units=8, lstm_units=4, batch_size=2, crop_frames=64)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PedalNet(keras.Model):
    """Convolutions over the log-mel spectrogram, a BiLSTM, three logits per frame."""

    def __init__(self, config: dict | PedalConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        c = PedalConfig.from_dict(config) if isinstance(config, dict) else (config or PedalConfig())
        self.config = c
        self.acoustic = AcousticModel(c.conv_channels, c.dense_units, c.dropout, name="pedal_acoustic")
        self.lstm = layers.Bidirectional(layers.LSTM(c.lstm_units, return_sequences=True), name="pedal_lstm")
        self.out = layers.Dense(3, name="pedal_logits")

    def call(self, log_mel, training=False):
        return self.out(self.lstm(self.acoustic(log_mel, training=training)))

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}


def build_pedal_model(config: PedalConfig, mel_bins: int) -> PedalNet:
    model = PedalNet(config, name=f"pedal_{config.name}")
    model(ops.zeros((1, 8, mel_bins)))
    return model


def compile_pedal_model(model: PedalNet) -> PedalNet:
    c = model.config
    schedule = keras.optimizers.schedules.ExponentialDecay(c.learning_rate, c.decay_steps, c.decay_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=c.clip_norm),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


# -- labels ----------------------------------------------------------------------------------

def pedal_intervals(sequence: NoteSequence) -> np.ndarray:
    """(K, 2) seconds where CC 64 holds the pedal down, from the control changes."""
    intervals, down_at = [], None
    changes = sorted((c.time, c.control_value) for c in sequence.control_changes
                     if c.control_number == SUSTAIN_CONTROL)
    for time, value in changes:
        if value >= PEDAL_DOWN_VALUE and down_at is None:
            down_at = time
        elif value < PEDAL_DOWN_VALUE and down_at is not None:
            if time > down_at:
                intervals.append((down_at, time))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, max(sequence.total_time, down_at)))
    return np.array(intervals, dtype=np.float64).reshape(-1, 2)


def pedal_roll(intervals: np.ndarray, frames: int, frames_per_second: float) -> np.ndarray:
    """(frames, 3) uint8 targets: down, pressed (the frame of a press), released (of a release)."""
    roll = np.zeros((frames, 3), np.uint8)
    for down_s, up_s in intervals:
        first, last = int(round(down_s * frames_per_second)), int(round(up_s * frames_per_second))
        roll[max(first, 0):min(last, frames), DOWN] = 1
        if 0 <= first < frames and down_s > 0:  # a pedal already down when the span starts was not pressed in it
            roll[first, PRESSED] = 1
        if 0 <= last < frames:
            roll[last, RELEASED] = 1
    return roll


# -- decoding ----------------------------------------------------------------------------------

def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def decode_pedal(probs: np.ndarray, config: PedalConfig, frames_per_second: float) -> np.ndarray:
    """(T, 3) probabilities -> (K, 2) pedal intervals in seconds."""
    down = probs[:, DOWN] >= config.threshold
    for start, end in _runs(~down):  # close short gaps: one press, not two
        if 0 < start and end < down.size and end - start < config.min_frames:
            down[start:end] = True
    intervals = []
    for start, end in _runs(down):
        if end - start < config.min_frames:
            continue
        start = _snap(probs[:, PRESSED], start, config)
        end = _snap(probs[:, RELEASED], end, config)
        if end - start < config.min_frames:  # snapping can bring the edges together
            continue
        intervals.append((start / frames_per_second, end / frames_per_second))
    return np.array(intervals, dtype=np.float64).reshape(-1, 2)


def _snap(event: np.ndarray, frame: int, config: PedalConfig) -> int:
    low, high = max(frame - config.snap_frames, 0), min(frame + config.snap_frames + 1, event.size)
    if high <= low:
        return frame
    peak = low + int(np.argmax(event[low:high]))
    return peak if event[peak] >= config.event_threshold else frame


# -- notes and MIDI ----------------------------------------------------------------------------

MIN_HOLD_S = 0.1  # a key is held at least this long


def key_releases(notes: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Notes (as they sounded, pedal included) ended where their keys were let go, as far as the
    pedal tells: a note that sounds on past a pedal press made after it was struck is taken to be
    let go at that press (the pedal took it over); one struck with the pedal already down and
    sounding until its release is taken to be let go after MIN_HOLD_S. Applying the pedal again
    extends both to the release, so the notes as they sounded come back."""
    result = notes.copy()
    for note in result:
        onset, end = float(note["onset_s"]), float(note["offset_s"])
        for down_s, up_s in intervals:
            if up_s <= onset or down_s >= end:
                continue
            if down_s > onset:  # pressed while the note sounded
                note["offset_s"] = max(down_s, min(onset + MIN_HOLD_S, end))
            elif end >= up_s - 0.05:  # held by a pedal already down: the key's own length is unseen
                note["offset_s"] = min(onset + MIN_HOLD_S, end)
            break
    return result


def add_pedal(sequence: NoteSequence, intervals: np.ndarray) -> NoteSequence:
    """Write the pedal into a sequence as CC 64 events (127 down, 0 up)."""
    for down_s, up_s in intervals:
        sequence.control_changes.add(time=float(down_s), control_number=SUSTAIN_CONTROL, control_value=127,
                                     instrument=0, program=0)
        sequence.control_changes.add(time=float(up_s), control_number=SUSTAIN_CONTROL, control_value=0,
                                     instrument=0, program=0)
    if len(intervals):
        sequence.total_time = max(sequence.total_time, float(intervals[:, 1].max()))
    return sequence


def pedal_checkpoint(transcriber_checkpoint: Path | str) -> Path:
    """Where a transcriber checkpoint's pedal network lies: `<stem>.keras` -> `<stem>.pedal.keras`."""
    return Path(companion(transcriber_checkpoint, "pedal"))


class PedalTranscriber:
    """The pedal network with its decoding: log-mel frames in, pedal intervals out."""

    def __init__(self, model: PedalNet, frames_per_second: float, chunk_frames: int = 1250, overlap_frames: int = 64):
        self.model, self.frames_per_second = model, frames_per_second
        self.chunk_frames, self.overlap_frames = chunk_frames, overlap_frames

    @classmethod
    def load(cls, path: Path | str, frames_per_second: float) -> "PedalTranscriber":
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        return cls(model, frames_per_second)

    def probabilities(self, mel: np.ndarray) -> np.ndarray:
        """(T, mel_bins) -> (T, 3), in overlapping chunks stitched at their centres."""
        frames, step = mel.shape[0], self.chunk_frames - 2 * self.overlap_frames
        out = np.zeros((frames, 3), np.float32)
        for start in range(0, max(frames, 1), step):
            first = max(start - self.overlap_frames, 0)
            last = min(start + step + self.overlap_frames, frames)
            logits = self.model(mel[None, first:last].astype(np.float32), training=False)
            probs = ops.convert_to_numpy(ops.sigmoid(logits))[0]
            out[start:min(start + step, frames)] = probs[start - first:start - first + min(step, frames - start)]
        return out

    def intervals(self, mel: np.ndarray) -> np.ndarray:
        return decode_pedal(self.probabilities(mel), self.model.config, self.frames_per_second)
