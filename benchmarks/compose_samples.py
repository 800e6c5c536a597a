"""What the shipped Music Transformer writes, against what the pianists played: the first 10 s of
ASAP test pieces are continued for 20 s, and the new music is compared with the same pieces' real
next 20 s (notes per second, note lengths, polyphony, pitch, velocity, how much one pitch
dominates), together with how often the sampled events break the grammar of encoded music
(a note-on of a key already sounding, a note-off of a silent one, a note never released).

    python -m benchmarks.compose_samples [--pieces 12] [--temperature 1.0] [--top-p 0.95] [--seed 0] [--no-grammar]
                                         [--checkpoint C] [--from-nothing]

Writes benchmarks/results/compose_samples.json and compose_samples.png (with --no-grammar:
compose_samples_no_grammar.*; with --from-nothing, pieces written without a primer,
compose_samples_from_nothing_<checkpoint>.*) (histograms, real against sampled). NLL
(`compose_nll.py`) measures the model; this shows what its samples sound like in numbers, and
changes with the sampling settings.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
from note_seq.performance_lib import PerformanceEvent
from tqdm.auto import tqdm

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from compose.data import load_pieces, window
from compose.stage import DEFAULT_CHECKPOINT, Composer, primer_tokens
from compose.tokens import ENCODING, SPECIAL_TOKENS, decode
from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence

PRIMER_S, NEW_S = 10.0, 20.0


def grammar_breaks(tokens: np.ndarray, start: int = 0) -> collections.Counter:
    """Note-ons and velocities, and the events that encoded music never holds: re-strikes of a
    sounding key, note-offs of a silent one, notes left sounding at the end, velocities repeating
    the one in force; counted from `start` on (the tokens before it set the scene: a primer)."""
    sounding: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    velocity = None
    for index, token in enumerate(tokens):
        if token < SPECIAL_TOKENS:
            continue
        counted = index >= start
        event = ENCODING.decode_event(int(token) - SPECIAL_TOKENS)
        if event.event_type == PerformanceEvent.NOTE_ON:
            counts["note_ons"] += counted
            counts["restrikes"] += counted and bool(sounding[event.event_value])
            sounding[event.event_value] += 1
        elif event.event_type == PerformanceEvent.NOTE_OFF:
            if sounding[event.event_value]:
                sounding[event.event_value] -= 1
            else:
                counts["silent_note_offs"] += counted
        elif event.event_type == PerformanceEvent.VELOCITY:
            counts["velocities"] += counted
            counts["repeated_velocities"] += counted and event.event_value == velocity
            velocity = event.event_value
    counts["never_released"] += sum(sounding.values())
    return counts


def statistics(notes: np.ndarray, seconds: float) -> dict:
    durations = notes["offset_s"] - notes["onset_s"]
    frames = np.zeros(int(seconds * 100) + 1)
    for onset, offset in zip(notes["onset_s"], np.minimum(notes["offset_s"], seconds)):
        frames[int(onset * 100): max(int(offset * 100), int(onset * 100) + 1)] += 1
    pitches = np.bincount(notes["pitch"], minlength=128)
    return {"notes_per_second": len(notes) / seconds,
            "median_note_s": float(np.median(durations)),
            "p95_note_s": float(np.percentile(durations, 95)),
            "share_over_5_s": float(np.mean(durations > 5.0)),
            "mean_polyphony": float(frames[frames > 0].mean()) if frames.any() else 0.0,
            "pitch_mean": float(notes["pitch"].mean()), "pitch_std": float(notes["pitch"].std()),
            "velocity_mean": float(notes["velocity"].mean()),
            "share_of_commonest_pitch": float(pitches.max() / len(notes))}


def plot(path: Path, real: np.ndarray, sampled: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("note length (s)", lambda n: np.log10(np.maximum(n["offset_s"] - n["onset_s"], 0.01)),
               np.linspace(-2, 1.8, 39)),
              ("pitch (MIDI)", lambda n: n["pitch"], np.arange(20.5, 109.5, 2)),
              ("velocity", lambda n: n["velocity"], np.arange(0, 129, 8))]
    for axis, (label, value, bins) in zip(axes, panels):
        axis.hist(value(real), bins=bins, density=True, alpha=0.5, color="grey", label="pianists")
        axis.hist(value(sampled), bins=bins, density=True, histtype="step", lw=1.8, color="C3", label="sampled")
        axis.set_xlabel(label)
    axes[0].set_xticks([-2, -1, 0, 1], ["0.01", "0.1", "1", "10"])
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--pieces", type=int, default=12, help="test pieces, evenly spread over the split")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-grammar", dest="in_grammar", action="store_false",
                        help="sample from the model as it is, not renormalized over the grammar's events")
    parser.add_argument("--from-nothing", action="store_true",
                        help="write each piece from nothing instead of continuing its primer (the pianists' stretches "
                             "stay those after the primers)")
    args = parser.parse_args()

    pieces = [apply_sustain(p) for p in load_pieces(args.asap, "test", args.asap / "asap_split.csv")]
    pieces = [p for p in pieces if p.total_time >= PRIMER_S + NEW_S]
    pieces = pieces[:: max(1, len(pieces) // args.pieces)][: args.pieces]
    composer = Composer(args.checkpoint, seconds=NEW_S, max_tokens=4096, temperature=args.temperature,
                        top_p=args.top_p, seed=args.seed, in_grammar=args.in_grammar)
    real, sampled, breaks = [], [], collections.Counter()
    for index, piece in enumerate(tqdm(pieces, desc="continue", unit="piece")):
        primer = np.zeros(0, np.int32) if args.from_nothing else primer_tokens(window(piece, 0.0, PRIMER_S))
        start = decode(primer).total_time  # new music starts after the primer's last event
        new = composer.sampler.generate(primer, seed=args.seed + index, **{
            k: v for k, v in composer.settings.sampler_arguments().items() if k != "seed"})
        breaks += grammar_breaks(np.concatenate([primer, new]), start=len(primer))
        composed = notes_from_sequence(decode(np.concatenate([primer, new])))
        added = composed[composed["onset_s"] >= start]
        added["onset_s"] -= start
        added["offset_s"] -= start
        sampled.append(added)
        real.append(notes_from_sequence(window(piece, PRIMER_S, PRIMER_S + NEW_S)))
    seconds = NEW_S * len(pieces)
    real_notes, sampled_notes = (np.concatenate(n) if n else np.zeros(0, NOTE_DTYPE) for n in (real, sampled))
    # Statistics over the pieces' 20 s stretches laid end to end (polyphony per stretch is what matters).
    figures = {"pieces": len(pieces), "primer_s": 0.0 if args.from_nothing else PRIMER_S, "new_s": NEW_S,
               "checkpoint": args.checkpoint.name,
               "temperature": args.temperature, "top_p": args.top_p, "in_grammar": args.in_grammar,
               "pianists": _rounded(_pooled(real, NEW_S)), "sampled": _rounded(_pooled(sampled, NEW_S)),
               "sampled_events": {"note_ons": breaks["note_ons"],
                                  "restrikes_per_note_on": round(breaks["restrikes"] / max(breaks["note_ons"], 1), 3),
                                  "silent_note_offs_per_note_on":
                                      round(breaks["silent_note_offs"] / max(breaks["note_ons"], 1), 3),
                                  "never_released_per_note_on":
                                      round(breaks["never_released"] / max(breaks["note_ons"], 1), 3),
                                  "repeated_velocities_per_velocity":
                                      round(breaks["repeated_velocities"] / max(breaks["velocities"], 1), 3)}}
    name = "compose_samples" if args.in_grammar else "compose_samples_no_grammar"
    if args.from_nothing:
        name += f"_from_nothing_{args.checkpoint.stem}"
    chart = record.RESULTS / f"{name}.png"
    record.RESULTS.mkdir(parents=True, exist_ok=True)
    plot(chart, real_notes, sampled_notes, f"{len(pieces)} ASAP test pieces: the real {NEW_S:.0f} s after "
         f"{PRIMER_S:.0f} s, and the Music Transformer's (temperature {args.temperature}, top-p {args.top_p}"
         f"{'' if args.in_grammar else ', outside the grammar too'})")
    record.save(name, figures, notes=f"{seconds:.0f} s of music each. Sampled notes decoded as "
                "`compose/tokens.py` does (a re-struck key ends its note; a note never released ends with the "
                "piece, at most 5 s after it began). Histograms: " + chart.name)


def _pooled(stretches: list[np.ndarray], seconds: float) -> dict:
    """The statistics of every stretch, weighted by its notes (polyphony and note counts add up)."""
    stats = [statistics(s, seconds) for s in stretches if len(s)]
    notes = np.concatenate([s for s in stretches if len(s)])
    pooled = statistics(notes, seconds)  # length, pitch and velocity figures of all notes together
    pooled["notes_per_second"] = len(notes) / (seconds * len(stretches))
    pooled["mean_polyphony"] = float(np.mean([s["mean_polyphony"] for s in stats]))
    pooled["share_of_commonest_pitch"] = float(np.mean([s["share_of_commonest_pitch"] for s in stats]))
    return pooled


def _rounded(figures: dict) -> dict:
    return {k: round(v, 3) for k, v in figures.items()}


if __name__ == "__main__":
    main()
