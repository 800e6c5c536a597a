"""MIDI-conditioned WaveNet synthesis (MIDI -> audio).

    from synthesize import Synthesizer, synthesize
    audio, sample_rate = synthesize("piece.mid")  # (samples,) float32

The names are imported on first use, so that `import synthesize.cli` does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["DEFAULT_CHECKPOINT", "Synthesizer", "synthesize"]

if TYPE_CHECKING:
    from synthesize.synthesizer import DEFAULT_CHECKPOINT, Synthesizer, synthesize


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("synthesize.synthesizer"), name)
    raise AttributeError(f"module 'synthesize' has no attribute {name!r}")
