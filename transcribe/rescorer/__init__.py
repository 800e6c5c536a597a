"""The onset rescorer and its note-end network, read from the Onsets and Frames heads: the
networks and their decoding (`rescore.py`, `note_ends.py`) and their training (`training.py`)."""
