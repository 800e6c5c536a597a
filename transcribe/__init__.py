"""Onsets and Frames piano transcription (audio -> MIDI)."""
