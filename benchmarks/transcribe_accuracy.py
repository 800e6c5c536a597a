"""Transcription accuracy per the MAESTRO paper's protocol (mir_eval, per piece, averaged over
pieces, references with the sustain pedal applied), on the held-out test split of the rendered
ASAP dataset and on the one real MAESTRO recording in ../shared/data/maestro_clip.

    python -m benchmarks.transcribe_accuracy [--dataset data/asap-maestro] [--checkpoint ...]
        [--excerpt-seconds 30] [--no-rescorer] [--no-note-ends]

Writes benchmarks/results/transcribe_accuracy.json (means) and
benchmarks/results/transcribe_accuracy_pieces.json (every piece).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from stages.contract import content_id
from transcribe.evaluate import evaluate
from transcribe.metrics import format_metrics
from transcribe.rescorer.rescore import rescorer_path
from transcribe.transcriber import DEFAULT_CHECKPOINT, Transcriber


def rounded(metrics: dict) -> dict:
    return {k: round(v, 4) for k, v in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/asap-maestro"))
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--excerpt-seconds", type=float, help="score the first N seconds of each piece only")
    parser.add_argument("--no-rescorer", action="store_true",
                        help="decode at the onset threshold, without the checkpoint's onset rescorer")
    parser.add_argument("--no-note-ends", action="store_true",
                        help="the rescorer's onsets, but notes ended at the thresholds (not by its note-end network)")
    args = parser.parse_args()
    transcriber = Transcriber.load(args.checkpoint, rescore=not args.no_rescorer, note_ends=not args.no_note_ends)
    rescorer = rescorer_path(args.checkpoint)
    test = evaluate(transcriber, args.dataset, "test", args.excerpt_seconds)
    print(format_metrics(test.mean))
    for soundfont, metrics in test.by_soundfont.items():
        print(f"{soundfont}:", format_metrics(metrics))
    clip = evaluate(transcriber, SHARED_DATA / "maestro_clip", "train")
    print(format_metrics(clip.mean))
    record.save("transcribe_accuracy", {
        "checkpoint": args.checkpoint.name,
        "checkpoint_sha256_16": content_id(args.checkpoint),
        "rescorer": ({"file": rescorer.name, "sha256_16": content_id(rescorer),
                      "note_ends": transcriber.rescorer.note_ends} if transcriber.rescorer else None),
        "asap_test_renders": {"pieces": len(test.pieces), "audio_hours": round(test.audio_seconds / 3600, 2),
                              "excerpt_seconds": args.excerpt_seconds or "whole pieces",
                              "realtime_factor": round(test.audio_seconds / test.wall_seconds, 1),
                              **rounded(test.mean),
                              "by_soundfont": {name: {"pieces": sum(p.get("soundfont") == name for p in test.pieces),
                                                      **rounded(m)} for name, m in test.by_soundfont.items()}},
        "maestro_clip_real_recording": {"seconds": round(clip.audio_seconds, 2), **rounded(clip.mean)},
    }, notes="Test split renders: plain (no augmentation), FluidR3_GM or TimGM6mb per file.")
    pieces = Path(__file__).resolve().parent / "results" / "transcribe_accuracy_pieces.json"
    pieces.write_text(json.dumps([dataclasses.asdict(test)["pieces"], clip.pieces], indent=1) + "\n")


if __name__ == "__main__":
    main()
