"""Audio and MIDI in and out, and the music vocabulary between them: audio, MIDI and note
arrays, piano rolls, the public API's MIDI objects, the normalize stage, plots."""
