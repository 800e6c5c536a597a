"""Render speed of each training timbre: the Salamander sampler (maestro/salamander.py) against
FluidSynth playing the two soundfonts, dry and with a typical recording-like augmentation.

    python -m benchmarks.timbre_render_speed [--pieces 4] [--seconds 60] [--sample-rate 16000]

Renders the first --seconds of an even spread of ASAP test performances once per timbre and
setting, one process, and writes benchmarks/results/timbre_render_speed.json (seconds of audio
rendered per wall-clock second; the best of --repeats runs, as the machine is shared).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from benchmarks.transcribe_robustness import test_excerpts
from maestro.augmentation import Augmentation, file_rng, render_midi
from maestro.soundfonts import TRAINING_SOUNDFONTS, check_timbre
from stages.io.midi import crop, read_note_sequence, write_midi

# One draw's worth of effects, fixed so that every timbre pays the same.
AUGMENTED = dict(detune_cents=12.0, velocity_exponent=1.2, room=(1.0, 3.0), tilt_db_per_octave=-1.0,
                 peaks=(2500.0, 3.0, 0.7), compression=(-20.0, 3.0), noise_snr_db=35.0, noise_color="pink")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-rate", type=int, default=16_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--midi-dir", type=Path, default=SHARED_DATA / "asap")
    args = parser.parse_args()
    for timbre in TRAINING_SOUNDFONTS:
        check_timbre(timbre)
    excerpts = test_excerpts(args.midi_dir / "asap_split.csv", args.midi_dir, args.pieces)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="w2m2w-timbre-speed-") as scratch:
        paths = []
        for name, midi in excerpts:
            paths.append(Path(scratch) / f"{name}.mid")
            write_midi(crop(read_note_sequence(midi), 0.0, args.seconds), paths[-1])
        for timbre in TRAINING_SOUNDFONTS:
            for setting, effects in (("dry", {}), ("augmented", AUGMENTED)):
                augmentation = Augmentation(soundfont=timbre, **effects)
                render_midi(paths[0], augmentation, args.sample_rate, file_rng(0, "warm-up"), end_seconds=1.0)
                best = float("inf")
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for path in paths:
                        render_midi(path, augmentation, args.sample_rate, file_rng(0, path.name),
                                    end_seconds=args.seconds)
                    best = min(best, time.perf_counter() - start)
                speed = round(args.seconds * len(paths) / best, 1)
                figures.setdefault(timbre, {})[f"{setting}_audio_seconds_per_second"] = speed
                print(f"{timbre} {setting}: {speed} s of audio per second")
    record.save("timbre_render_speed", {"pieces": len(excerpts), "seconds_each": args.seconds,
                                        "sample_rate_hz": args.sample_rate, "augmented_with": AUGMENTED,
                                        **figures},
                notes="One process, mono output; FluidSynth runs as a subprocess (its start-up included).")


if __name__ == "__main__":
    main()
