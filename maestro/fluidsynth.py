"""Render one MIDI file to mono audio with FluidSynth, with optional augmentation.

Augmentation makes renders less uniform than one soundfont in one room: a random soundfont,
gain, reverb and chorus settings, and added noise. Each file's draw comes from a generator
seeded by the file's name, so a render is reproducible and a resumed run matches a fresh one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from maestro.soundfonts import find_soundfont
from stages.contract import InputError

# FluidSynth's default synth gain (0.2) leaves most piano renders far below full scale.
BASE_GAIN = 0.5


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One file's rendering choices. `None` turns an effect off."""

    soundfont: str
    gain_db: float = 0.0
    reverb: tuple[float, float, float, float] | None = None  # room size, damping, width, level
    chorus: tuple[int, float, float, float] | None = None  # voices, level, speed Hz, depth ms
    noise_snr_db: float | None = None
    noise_color: str = "white"  # or "pink"

    @classmethod
    def draw(cls, rng: np.random.Generator, soundfonts: Sequence[str], augment: bool) -> "Augmentation":
        soundfont = str(rng.choice(list(soundfonts)))
        if not augment:
            return cls(soundfont=soundfont)
        reverb = None
        if rng.random() < 0.75:
            reverb = (round(rng.uniform(0.1, 0.9), 3), round(rng.uniform(0.0, 0.8), 3),
                      round(rng.uniform(10, 100), 1), round(rng.uniform(0.1, 0.8), 3))
        chorus = None
        if rng.random() < 0.25:
            chorus = (int(rng.integers(2, 6)), round(rng.uniform(0.3, 1.5), 3),
                      round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(2.0, 10.0), 2))
        noise_snr_db = round(rng.uniform(20, 50), 1) if rng.random() < 0.5 else None
        return cls(
            soundfont=soundfont,
            gain_db=round(rng.uniform(-12.0, 3.0), 2),
            reverb=reverb,
            chorus=chorus,
            noise_snr_db=noise_snr_db,
            noise_color=str(rng.choice(["white", "pink"])),
        )


def file_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the seed and a file's name (stable across processes)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def fluidsynth_command(midi_path: Path, wav_path: Path, augmentation: Augmentation,
                       sample_rate_hz: int) -> list[str]:
    executable = shutil.which("fluidsynth")
    if executable is None:
        raise RuntimeError("fluidsynth not found: install the Debian package fluidsynth (bash setup.sh does)")
    settings = {"synth.chorus.active": int(augmentation.chorus is not None),
                "synth.reverb.active": int(augmentation.reverb is not None)}
    if augmentation.reverb:
        room, damp, width, level = augmentation.reverb
        settings.update({"synth.reverb.room-size": room, "synth.reverb.damp": damp,
                         "synth.reverb.width": width, "synth.reverb.level": level})
    if augmentation.chorus:
        voices, level, speed, depth = augmentation.chorus
        settings.update({"synth.chorus.nr": voices, "synth.chorus.level": level,
                         "synth.chorus.speed": speed, "synth.chorus.depth": depth})
    command = [executable, "-n", "-i", "-q", "-F", str(wav_path), "-T", "wav", "-O", "float",
               "-r", str(sample_rate_hz), "-g", str(BASE_GAIN)]
    for key, value in settings.items():
        command += ["-o", f"{key}={value}"]
    return command + [str(find_soundfont(augmentation.soundfont)), str(midi_path)]


def render_midi(midi_path: Path | str, augmentation: Augmentation, sample_rate_hz: int,
                rng: np.random.Generator, end_seconds: float | None = None) -> np.ndarray:
    """Mono float32 audio of a MIDI file, cut at `end_seconds` (the release tail beyond it)."""
    with tempfile.TemporaryDirectory(prefix="w2m2w-render-") as scratch:
        wav_path = Path(scratch) / "render.wav"
        command = fluidsynth_command(Path(midi_path), wav_path, augmentation, sample_rate_hz)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wav_path.exists():
            raise InputError(f"fluidsynth failed ({result.returncode}): {result.stderr.strip()[-300:]}")
        stereo, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate_hz:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {sample_rate_hz} Hz")
    audio = stereo.mean(axis=1)  # the CLI always writes stereo
    if end_seconds is not None:
        audio = audio[: int(np.ceil(end_seconds * sample_rate_hz))]
    audio *= np.float32(10.0 ** (augmentation.gain_db / 20.0))
    if augmentation.noise_snr_db is not None:
        audio = add_noise(audio, augmentation.noise_snr_db, augmentation.noise_color, rng)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 0.99:  # never clip: scale the whole file down instead
        audio *= np.float32(0.99 / peak)
    return audio.astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, color: str, rng: np.random.Generator) -> np.ndarray:
    """Add white or pink noise `snr_db` below the signal's RMS."""
    signal_rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if signal_rms == 0.0:
        return audio
    noise = rng.standard_normal(audio.size)
    if color == "pink":  # shape white noise to a 1/f power spectrum
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1.0))
        noise = np.fft.irfft(spectrum, n=audio.size)
    noise_rms = float(np.sqrt(np.mean(np.square(noise))))
    noise *= signal_rms / (10.0 ** (snr_db / 20.0)) / max(noise_rms, 1e-12)
    return (audio + noise).astype(np.float32)
