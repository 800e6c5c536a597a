"""How one file is rendered: its timbre and a draw of recording-like effects.

Augmentation makes training audio less uniform than one piano in one dry room: a random timbre
(a soundfont played by FluidSynth, or the recorded Salamander grand), a whole-piece detuning
(pianos are not all at A440), a velocity curve (pianos answer the same key speed differently),
then the recording: a room, a microphone's colour, compression, a gain and background noise, and the
chain after it: a second microphone, clipping, a low source rate and a lossy codec.
Every choice keeps the labels aligned (maestro/recording.py). Each file's draw comes from a
generator seeded by the file's name, so a render is reproducible and a resumed run matches a
fresh one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from maestro import codecs, recording, salamander
from maestro.fluidsynth import render_with_fluidsynth
from stages.io.midi import read_note_sequence, write_midi

# FluidSynth's default pitch-bend range: 2 semitones either way over 8192 steps.
BEND_STEPS_PER_CENT = 8192 / 200


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One file's rendering choices. `None` (or 0, 1) turns an effect off."""

    soundfont: str  # a soundfont name or path, or "salamander"
    gain_db: float = 0.0
    chorus: tuple[int, float, float, float] | None = None  # FluidSynth only: voices, level, speed Hz, depth ms
    detune_cents: float = 0.0
    velocity_exponent: float = 1.0  # velocity v plays as 127 * (v / 127) ** exponent
    room: tuple[float, float] | None = None  # RT60 seconds, direct-to-reverberant dB
    tilt_db_per_octave: float = 0.0
    peaks: tuple[float, ...] = ()  # flattened (centre Hz, gain dB, width octaves) triples
    compression: tuple[float, float] | None = None  # threshold dB below the peak level, ratio
    noise_snr_db: float | None = None
    noise_color: str = "white"  # white, pink, brown or room
    # The recording chain after the room (maestro/codecs.py), drawn from a generator of its own.
    second_mic: tuple[float, float] | None = None  # the far microphone's delay ms and gain dB
    clip_drive_db: float | None = None  # a preamp driven this far past full scale
    source_rate_hz: int | None = None  # the recording was made at this rate
    codec: tuple[str, float] | None = None  # "mp3" or "opus", kb/s

    @classmethod
    def draw(cls, rng: np.random.Generator, soundfonts: Sequence[str], augment: bool) -> "Augmentation":
        soundfont = str(rng.choice(list(soundfonts)))
        if not augment:
            return cls(soundfont=soundfont)
        chorus = None
        if rng.random() < 0.15 and soundfont != salamander.NAME:
            chorus = (int(rng.integers(2, 6)), round(rng.uniform(0.3, 1.5), 3),
                      round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(2.0, 10.0), 2))
        room = None
        if rng.random() < 0.75:
            room = (round(float(np.exp(rng.uniform(np.log(0.2), np.log(2.0)))), 3), round(rng.uniform(-3.0, 12.0), 2))
        peaks: tuple[float, ...] = ()
        for _ in range(int(rng.integers(0, 3))):
            peaks += (round(float(np.exp(rng.uniform(np.log(80.0), np.log(6000.0)))), 1),
                      round(rng.uniform(-8.0, 6.0), 2), round(rng.uniform(0.3, 1.5), 2))
        # The chain's draws come from a spawned generator: adding them changed no earlier render's draws.
        chain = rng.spawn(1)[0]
        return cls(
            soundfont=soundfont,
            gain_db=round(rng.uniform(-12.0, 3.0), 2),
            chorus=chorus,
            detune_cents=round(rng.uniform(-30.0, 30.0), 1) if rng.random() < 0.7 else 0.0,
            velocity_exponent=round(float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))), 3)
            if rng.random() < 0.5 else 1.0,
            room=room,
            tilt_db_per_octave=round(rng.uniform(-2.5, 1.5), 2) if rng.random() < 0.6 else 0.0,
            peaks=peaks,
            compression=(round(rng.uniform(-30.0, -10.0), 1), round(rng.uniform(1.5, 6.0), 2))
            if rng.random() < 0.3 else None,
            noise_snr_db=round(rng.uniform(20, 50), 1) if rng.random() < 0.6 else None,
            noise_color=str(rng.choice(["white", "pink", "brown", "room"])),
            **_draw_chain(chain),
        )


def _draw_chain(rng: np.random.Generator) -> dict:
    """The recording chain of one augmented file: about a third go through a lossy codec at 32-128 kb/s (an
    MP3 off a phone is as common as a CD), fewer through a second microphone, a low source rate or clipping."""
    draws = rng.random(4)
    return {
        "second_mic": (round(rng.uniform(1.0, 15.0), 2), round(rng.uniform(-9.0, 0.0), 2)) if draws[0] < 0.25 else None,
        "clip_drive_db": round(rng.uniform(1.0, 8.0), 2) if draws[1] < 0.1 else None,
        "source_rate_hz": int(rng.choice([8_000, 11_025, 22_050])) if draws[2] < 0.15 else None,
        "codec": (str(rng.choice(["mp3", "opus"], p=[0.65, 0.35])),
                  round(float(np.exp(rng.uniform(np.log(32.0), np.log(128.0)))), 1)) if draws[3] < 0.35 else None,
    }


def file_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the seed and a file's name (stable across processes)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def performed(sequence: NoteSequence, augmentation: Augmentation) -> NoteSequence:
    """The sequence as the augmented piano receives it: velocities through the curve."""
    if augmentation.velocity_exponent == 1.0:
        return sequence
    changed = NoteSequence()
    changed.CopyFrom(sequence)
    for note in changed.notes:
        note.velocity = int(np.clip(round(127 * (note.velocity / 127) ** augmentation.velocity_exponent), 1, 127))
    return changed


def _render_dry(midi_path: Path, augmentation: Augmentation, sample_rate_hz: int,
                end_seconds: float | None) -> np.ndarray:
    sequence = read_note_sequence(midi_path)
    if augmentation.soundfont == salamander.NAME:
        return salamander.render_sequence(performed(sequence, augmentation), sample_rate_hz,
                                          end_seconds=end_seconds, detune_cents=augmentation.detune_cents)
    if augmentation.velocity_exponent == 1.0 and augmentation.detune_cents == 0.0:
        return render_with_fluidsynth(midi_path, augmentation.soundfont, sample_rate_hz,
                                      chorus=augmentation.chorus, end_seconds=end_seconds)
    changed = performed(sequence, augmentation)
    if augmentation.detune_cents:  # a pitch bend on every channel from the start
        bend = int(round(augmentation.detune_cents * BEND_STEPS_PER_CENT))
        for instrument, program in sorted({(n.instrument, n.program) for n in changed.notes}):
            changed.pitch_bends.add(time=0.0, bend=bend, instrument=instrument, program=program)
    with tempfile.TemporaryDirectory(prefix="w2m2w-augment-") as scratch:
        path = Path(scratch) / "performed.mid"
        write_midi(changed, path)
        return render_with_fluidsynth(path, augmentation.soundfont, sample_rate_hz,
                                      chorus=augmentation.chorus, end_seconds=end_seconds)


def render_midi(midi_path: Path | str, augmentation: Augmentation, sample_rate_hz: int,
                rng: np.random.Generator, end_seconds: float | None = None) -> np.ndarray:
    """Mono float32 audio of a MIDI file, cut at `end_seconds` (the release tail beyond it)."""
    audio = _render_dry(Path(midi_path), augmentation, sample_rate_hz, end_seconds)
    if augmentation.room is not None:
        rt60, direct_to_reverb_db = augmentation.room
        impulse = recording.room_impulse_response(rt60, direct_to_reverb_db, sample_rate_hz, rng)
        audio = recording.apply_room(audio, impulse)
    if augmentation.tilt_db_per_octave or augmentation.peaks:
        peaks = tuple(tuple(augmentation.peaks[i:i + 3]) for i in range(0, len(augmentation.peaks), 3))
        audio = recording.equalize(audio, sample_rate_hz, augmentation.tilt_db_per_octave, peaks)
    if augmentation.compression is not None:
        audio = recording.compress(audio, sample_rate_hz, *augmentation.compression)
    audio = audio * np.float32(10.0 ** (augmentation.gain_db / 20.0))
    if augmentation.noise_snr_db is not None:
        audio = recording.add_noise(audio, augmentation.noise_snr_db, augmentation.noise_color, rng, sample_rate_hz)
    return recording_chain(audio, augmentation, sample_rate_hz)


def recording_chain(audio: np.ndarray, augmentation: Augmentation, sample_rate_hz: int) -> np.ndarray:
    """Microphones, preamp, source rate and codec, in the order a recording meets them."""
    if augmentation.second_mic is not None:
        audio = codecs.second_microphone(audio, sample_rate_hz, *augmentation.second_mic)
    if augmentation.clip_drive_db is not None:
        audio = codecs.clip(audio, augmentation.clip_drive_db)
    if augmentation.source_rate_hz is not None:
        audio = codecs.band_limit(audio, sample_rate_hz, augmentation.source_rate_hz)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 0.99:  # never clip beyond what was asked: scale the whole file down instead
        audio = audio * np.float32(0.99 / peak)
    if augmentation.codec is not None:
        audio = codecs.lossy_codec(audio, sample_rate_hz, *augmentation.codec)
        audio = np.clip(audio, -1.0, 1.0)  # a decoder's overshoot past full scale
    return audio.astype(np.float32)
