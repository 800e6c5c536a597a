"""Write the bundled example: the first eight bars of J. S. Bach's Prelude in C major, BWV 846
(public domain), as a performance MIDI with human timing, dynamics and sustain pedal.

    python examples/make_example.py   # -> examples/midi/bach_prelude_bwv846_bars1-8.mid
"""

from pathlib import Path

import numpy as np
import pretty_midi

# Each bar: five chord tones (MIDI numbers), played twice as n1 n2 n3 n4 n5 n3 n4 n5 in 16ths.
BARS = [
    (60, 64, 67, 72, 76), (60, 62, 69, 74, 77), (59, 62, 67, 74, 77), (60, 64, 67, 72, 76),
    (60, 64, 69, 76, 81), (60, 62, 66, 69, 74), (59, 62, 67, 74, 79), (59, 60, 64, 67, 72),
]
SIXTEENTH_SECONDS = 60.0 / 66.0 / 4.0  # crotchet = 66
OUT = Path(__file__).resolve().parent / "midi" / "bach_prelude_bwv846_bars1-8.mid"


def perform(seed: int = 846) -> pretty_midi.PrettyMIDI:
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=66.0)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    time = 0.5
    for bar_index, chord in enumerate(BARS):
        loudness = 58 + 14 * np.sin(np.pi * bar_index / (len(BARS) - 1))  # swell and return
        for half in range(2):
            half_start = time
            pattern = [0, 1, 2, 3, 4, 2, 3, 4]
            for step, tone in enumerate(pattern):
                onset = time + rng.normal(0, 0.008)
                velocity = int(np.clip(loudness + (6 if step == 0 else 0) + rng.normal(0, 4), 30, 110))
                # The two lowest tones are held through the half bar, as the score writes them.
                held = {0: 8, 1: 7}.get(step, 1)
                duration = held * SIXTEENTH_SECONDS * rng.uniform(0.85, 0.97)
                piano.notes.append(pretty_midi.Note(velocity, chord[tone], onset, onset + duration))
                time += SIXTEENTH_SECONDS * rng.uniform(0.97, 1.03)
            # Pedal: down just after the half bar starts, up just before the next one.
            piano.control_changes.append(pretty_midi.ControlChange(64, 100, half_start + 0.05))
            piano.control_changes.append(pretty_midi.ControlChange(64, 0, time - 0.04))
    midi.instruments.append(piano)
    return midi


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    perform().write(str(OUT))
    print(OUT)
