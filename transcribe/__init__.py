"""Onsets and Frames piano transcription (audio -> MIDI).

    from transcribe import Transcriber, transcribe
    midi = transcribe("recording.wav")          # a pretty_midi.PrettyMIDI
    notes = Transcriber.load().transcribe_file("recording.wav")  # a note array (stages.io.midi)

The names are imported on first use, so that `import transcribe.cli` does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["DEFAULT_CHECKPOINT", "Transcriber", "transcribe"]

if TYPE_CHECKING:
    from transcribe.transcriber import DEFAULT_CHECKPOINT, Transcriber, transcribe


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("transcribe.transcriber"), name)
    raise AttributeError(f"module 'transcribe' has no attribute {name!r}")
