"""MIDI-conditioned WaveNet synthesis (MIDI -> audio)."""
