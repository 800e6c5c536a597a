"""Music Transformer composition (MIDI -> new MIDI)."""
