"""The stage contract and the shared audio/MIDI vocabulary that every stage uses."""
