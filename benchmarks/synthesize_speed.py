"""WaveNet generation speed on this CPU, in seconds of audio per wall-clock second, rendering a
MIDI excerpt through the real stage code (segments in one batch, compiled loop).

    python -m benchmarks.synthesize_speed [--checkpoint synthesize/checkpoints/default.keras] [--seconds 30]

Writes benchmarks/results/synthesize_speed.json. Without a checkpoint an untrained default model
is timed (speed does not depend on the weights). For scale: FluidSynth renders about 200-300x
real time here; a naive WaveNet manages a few hundred samples per second.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import record
from compose.data import window
from stages.midi import read_note_sequence
from synthesize.config import SynthesizerConfig
from synthesize.model import build_model
from synthesize.stage import Synthesizer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "midi" / "bach_prelude_bwv846_bars1-8.mid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    synthesizer = (Synthesizer.load(args.checkpoint) if args.checkpoint
                   else Synthesizer(build_model(SynthesizerConfig.default())))
    excerpt = window(read_note_sequence(EXAMPLE), 0.0, args.seconds)
    synthesizer.render(window(excerpt, 0.0, 2.0))  # compile
    start = time.perf_counter()
    audio = synthesizer.render(excerpt)
    wall = time.perf_counter() - start
    seconds = len(audio) / synthesizer.config.sample_rate_hz
    record.save("synthesize_speed", {
        "model": synthesizer.config.name,
        "parameters": synthesizer.model.count_params(),
        "receptive_field_samples": synthesizer.config.receptive_field,
        "audio_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "audio_seconds_per_second": round(seconds / wall, 2),
        "samples_per_second": round(seconds * synthesizer.config.sample_rate_hz / wall),
    }, notes="Whole render: conditioning stack, segments of 2 s in one batch, compiled (XLA) sampling loop, joins.")


if __name__ == "__main__":
    main()
