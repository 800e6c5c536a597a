"""Music Transformer composition (MIDI -> new MIDI).

    from compose import Composer, compose
    midi = compose("primer.mid", seconds=20, temperature=0.9)  # a pretty_midi.PrettyMIDI

The names are imported on first use, so that `import compose.cli` does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["DEFAULT_CHECKPOINT", "Composer", "compose"]

if TYPE_CHECKING:
    from compose.composer import DEFAULT_CHECKPOINT, Composer, compose


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("compose.composer"), name)
    raise AttributeError(f"module 'compose' has no attribute {name!r}")
