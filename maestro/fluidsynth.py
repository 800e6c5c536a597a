"""Render one MIDI file to dry mono audio with FluidSynth and a soundfont.

FluidSynth's own reverb stays off: rooms are added by maestro/recording.py, the same for every
timbre (maestro/augmentation.py draws them).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from maestro.soundfonts import find_soundfont
from stages.contract import InputError

# FluidSynth's default synth gain (0.2) leaves most piano renders far below full scale.
BASE_GAIN = 0.5


def fluidsynth_command(midi_path: Path, wav_path: Path, soundfont: str, sample_rate_hz: int,
                       chorus: tuple[int, float, float, float] | None = None) -> list[str]:
    executable = shutil.which("fluidsynth")
    if executable is None:
        raise RuntimeError("fluidsynth not found: install the Debian package fluidsynth (bash setup.sh does)")
    settings = {"synth.chorus.active": int(chorus is not None), "synth.reverb.active": 0}
    if chorus:
        voices, level, speed, depth = chorus
        settings.update({"synth.chorus.nr": voices, "synth.chorus.level": level,
                         "synth.chorus.speed": speed, "synth.chorus.depth": depth})
    command = [executable, "-n", "-i", "-q", "-F", str(Path(wav_path).resolve()), "-T", "wav", "-O", "float",
               "-r", str(sample_rate_hz), "-g", str(BASE_GAIN)]
    for key, value in settings.items():
        command += ["-o", f"{key}={value}"]
    # Absolute paths: a file named "-Fvictim.mid" must never read as an option.
    return command + [str(find_soundfont(soundfont).resolve()), str(Path(midi_path).resolve())]


def render_with_fluidsynth(midi_path: Path | str, soundfont: str, sample_rate_hz: int, *,
                           chorus: tuple[int, float, float, float] | None = None,
                           end_seconds: float | None = None) -> np.ndarray:
    """Mono float32 audio of a MIDI file, cut at `end_seconds` (the release tail beyond it)."""
    with tempfile.TemporaryDirectory(prefix="w2m2w-render-") as scratch:
        wav_path = Path(scratch) / "render.wav"
        command = fluidsynth_command(Path(midi_path), wav_path, soundfont, sample_rate_hz, chorus)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wav_path.exists():
            raise InputError(f"fluidsynth failed ({result.returncode}): {result.stderr.strip()[-300:]}")
        stereo, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate_hz:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {sample_rate_hz} Hz")
    audio = stereo.mean(axis=1)  # the CLI always writes stereo
    if end_seconds is not None:
        audio = audio[: int(np.ceil(end_seconds * sample_rate_hz))]
    return np.ascontiguousarray(audio, dtype=np.float32)
