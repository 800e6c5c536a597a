"""WaveNet quality without listening tests, on excerpts of held-out MIDI (the first --seconds of the
first --count ASAP test pieces): round-trip note F1 (render, transcribe with the shipped
transcriber, score against the MIDI with mir_eval) and the multi-resolution log-mel distance to
FluidSynth with FluidR3_GM; the same for FluidSynth with TimGM6mb as a reference point.

    python benchmarks/synthesize_quality.py [--checkpoint synthesize/checkpoints/default.keras] [--count 12]
                                            [--split test] [--temperature T] [--level STEPS]

Writes benchmarks/results/synthesize_quality.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import record  # noqa: E402
from stages.cli import SHARED_DATA  # noqa: E402
from stages.contract import content_id  # noqa: E402
from synthesize.evaluate import evaluate  # noqa: E402
from synthesize.stage import DEFAULT_CHECKPOINT  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--split", default="test", help="test for the record; validation to choose settings")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default: the checkpoint's)")
    parser.add_argument("--level", type=float, help="rendered RMS level in 16-bit steps, 0: as sampled (default: the checkpoint's)")
    args = parser.parse_args()
    figures = evaluate(args.asap, args.split, args.asap / "asap_split.csv", args.seconds, args.count, args.checkpoint,
                       temperature=args.temperature, output_rms_lsb=args.level)
    figures["split"] = args.split
    figures["checkpoint_sha256_16"] = content_id(args.checkpoint)
    record.save("synthesize_quality" if args.split == "test" else f"synthesize_quality_{args.split}", figures, notes="Excerpts: the first seconds of the first test pieces in "
                "path order. References sustain-extended; MAESTRO-paper mir_eval settings.")


if __name__ == "__main__":
    main()
