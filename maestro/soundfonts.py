"""The timbres we render with: soundfonts found by name or path, and the sampled Salamander grand."""

from __future__ import annotations

import os
from pathlib import Path

# The only timbres used for training and tuning: keep others out, so that accuracy on an
# unseen piano sound stays an honest measure of generalisation. "salamander" is the recorded
# Yamaha C5 played by maestro/salamander.py; the others are soundfonts played by FluidSynth.
TRAINING_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb", "salamander")

_SEARCH_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts", "/usr/local/share/soundfonts")


def _search_dirs() -> list[Path]:
    dirs = [Path(d) for d in os.environ.get("W2M2W_SOUNDFONT_PATH", "").split(os.pathsep) if d]
    dirs += [Path(d) for d in _SEARCH_DIRS]
    try:  # pretty_midi ships TimGM6mb.sf2 inside its package
        import pretty_midi

        dirs.append(Path(pretty_midi.__file__).parent)
    except ImportError:
        pass
    return dirs


def find_soundfont(name_or_path: str) -> Path:
    """The .sf2 file for a name such as "FluidR3_GM" (or an existing path)."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".sf2" and path.is_file():
        return path
    stem = path.stem if path.suffix.lower() == ".sf2" else path.name
    for directory in _search_dirs():
        candidate = directory / f"{stem}.sf2"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"soundfont {name_or_path!r} not found in {', '.join(map(str, _search_dirs()))}; "
        "install the Debian packages fluid-soundfont-gm and timgm6mb-soundfont (bash setup.sh does)")


def check_timbre(name_or_path: str) -> None:
    """Fail now, with the fix in the message, if a timbre cannot be played here."""
    from maestro import salamander

    if name_or_path == salamander.NAME:
        salamander.require()
    else:
        find_soundfont(name_or_path)
