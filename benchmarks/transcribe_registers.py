"""Where the transcriber misses notes, by register: the excerpts of benchmarks/synthesize_quality.py
rendered by the Salamander grand, by FluidSynth and by any WaveNet given, transcribed, and every
reference note scored found or missed (pitch and onset within 50 ms, as note F1 counts them).

The synthesizer's round-trip target (note F1 >= 0.90 by our transcriber) is bounded by how well the
transcriber hears the reference grand itself; this shows where that bound comes from: per register
and per excerpt recall and precision, and the notes struck in the last 0.1 s, which a cut excerpt
leaves no time to hear.

    python -m benchmarks.transcribe_registers [--wavenet NAME=CHECKPOINT ...]

Writes benchmarks/results/transcribe_registers.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from benchmarks.synthesize_quality import RATE, excerpts, fit

# C1 (and the A0-B0 below it), C2, C3, ..., C7 and up: a register is an octave from its C.
REGISTER_STARTS = (21, 36, 48, 60, 72, 84, 96)
# Semitones from a fundamental to its 2nd-8th partials.
OVERTONE_INTERVALS = (12, 19, 24, 28, 31, 34, 36)


def register_names() -> list[str]:
    return ["A0-B1", *[f"C{start // 12 - 1}-B{start // 12 - 1}" for start in REGISTER_STARTS[1:-1]], "C7-C8"]


def by_register(pitches: np.ndarray, hits: np.ndarray) -> dict[str, dict]:
    registers = np.searchsorted(REGISTER_STARTS, pitches, side="right") - 1
    return {name: {"notes": int(np.sum(registers == r)),
                   "share_found": round(float(hits[registers == r].mean()), 3) if np.any(registers == r) else None}
            for r, name in enumerate(register_names())}


def ghost_kinds(reference: np.ndarray, wrong: np.ndarray) -> dict[str, int]:
    """What each wrong note is to the reference notes sounding when it starts: a re-strike of a held
    key, an overtone of one (an octave, a twelfth, two octaves, ... above), or anything else."""
    kinds = {"re-strike of a sounding key": 0, "overtone of a sounding note": 0, "other": 0}
    for note in wrong:
        held = (reference["onset_s"] <= note["onset_s"]) & (reference["offset_s"] > note["onset_s"])
        sounding = reference["pitch"][held]
        if note["pitch"] in sounding:
            kinds["re-strike of a sounding key"] += 1
        elif np.isin(note["pitch"] - sounding, OVERTONE_INTERVALS).any():
            kinds["overtone of a sounding note"] += 1
        else:
            kinds["other"] += 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--split", default="test")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wavenet", action="append", default=[], metavar="NAME=CHECKPOINT")
    args = parser.parse_args()

    from maestro import salamander
    from stages.io.midi import notes_from_sequence
    from synthesize.evaluate import fluidsynth_render
    from synthesize.synthesizer import Synthesizer
    from transcribe.metrics import matched_notes
    from transcribe.transcriber import Transcriber

    sequences, names = excerpts(args.asap, args.split, args.count, args.seconds)
    renderers = {"salamander": lambda s: salamander.render_sequence(s, RATE, end_seconds=args.seconds),
                 "fluidsynth_fluidr3_gm": lambda s: fluidsynth_render(s, "FluidR3_GM"),
                 "fluidsynth_timgm6mb": lambda s: fluidsynth_render(s, "TimGM6mb")}
    for item in args.wavenet:
        name, checkpoint = item.split("=", 1)
        renderers[name] = Synthesizer.load(checkpoint).render
    transcriber = Transcriber.load()
    references = [notes_from_sequence(sequence) for sequence in sequences]
    all_reference = np.concatenate(references)
    figures = {}
    for name, render in renderers.items():
        found, right, pieces, ghosts = [], [], {}, []
        for piece, sequence, reference in zip(names, sequences, references):
            estimate = transcriber.transcribe(fit(render(sequence), int(args.seconds * RATE)))
            piece_found, piece_right = matched_notes(reference, estimate)
            ghosts.append(ghost_kinds(reference, estimate[~piece_right]))
            found.append(piece_found)
            right.append(piece_right)
            pieces[piece] = {"recall": round(float(piece_found.mean()), 3),
                             "precision": round(float(piece_right.mean()), 3) if len(piece_right) else None}
        found = np.concatenate(found)
        late = all_reference["onset_s"] > args.seconds - 0.1
        figures[name] = {"recall": round(float(found.mean()), 3),
                         "precision": round(float(np.concatenate(right).mean()), 3),
                         "by_register": by_register(all_reference["pitch"], found),
                         "wrong_notes": {kind: sum(g[kind] for g in ghosts) for kind in ghosts[0]},
                         "struck_in_last_0.1_s": {"notes": int(late.sum()), "found": int(found[late].sum())},
                         "pieces": pieces}
        print(name, {key: value for key, value in figures[name].items() if key != "pieces"}, flush=True)
    record.save("transcribe_registers", {"renderers": figures, "excerpts": names, "seconds": args.seconds},
                notes="Reference notes (sustain applied) found by the shipped transcriber, pooled over the excerpts "
                      "(recall and precision here are over all notes, not averaged per piece as note F1 is).")


if __name__ == "__main__":
    main()
