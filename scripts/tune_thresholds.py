"""Choose the transcriber's decoding thresholds (onset, frame, offset), the offset head's frame gate
and the offset correction on validation recordings (never on test), and optionally write them
into the checkpoint.

    python scripts/tune_thresholds.py DATASET [--checkpoint transcribe/checkpoints/default.keras]
                                      [--pieces 14] [--seconds 60] [--apply]

DATASET is a MAESTRO-layout folder (e.g. a `w2m2w maestro render` output); its validation split
is used. Predicts the first --seconds of each of --pieces validation recordings once, decodes
them at every threshold combination, and prints the best ranked by note F1 + frame F1 +
note-with-offset F1; then, at the best onset and frame thresholds, tries each offset threshold
with each frame gate (the offset head ends a note only where the frame head is below it); then
each offset correction (a fixed shift of every note end). --apply stores the best in the
checkpoint's config (the weights are unchanged) and in its JSON record. Its onset rescorer, if it
has one, is left out here (it decides onsets in place of the onset threshold); frame and offset
settings apply with it too.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maestro.metadata import Dataset  # noqa: E402
from stages.contract import content_id  # noqa: E402
from transcribe.decode import decode_notes, offset_ends  # noqa: E402
from transcribe.evaluate import reference_notes  # noqa: E402
from transcribe.features import log_mel  # noqa: E402
from transcribe.infer import DEFAULT_CHECKPOINT, Transcriber  # noqa: E402
from transcribe.metrics import mean_metrics, transcription_metrics  # noqa: E402
from transcribe.model import build_model  # noqa: E402

ONSET = (0.2, 0.3, 0.4, 0.5)
FRAME = (0.1, 0.15, 0.2, 0.3, 0.5)
OFFSET = (None, 0.15, 0.2, 0.3, 0.5)  # None: the frame head alone ends notes
# Gates above 0.9 scored as well on validation renders but cut the clearly sounding notes of the
# real MAESTRO recording (frame F1 0.81 -> 0.22 at 0.95): renders decay more evenly than a piano.
GATE = (0.7, 0.8, 0.85, 0.9)
CORRECTION_S = (0.0, -0.008, -0.016, -0.024, -0.032)  # moves every note end; a frame is 32 ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--pieces", type=int, default=14)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--apply", action="store_true", help="write the best thresholds into the checkpoint")
    args = parser.parse_args()
    transcriber = Transcriber.load(args.checkpoint, rescore=False)  # onsets at the threshold tuned here
    fps = transcriber.config.frames_per_second
    dataset = Dataset.open(args.dataset)
    predictions = []
    for record in tqdm(dataset.select(splits=["validation"])[: args.pieces], desc="predicting", unit="piece"):
        audio, rate = soundfile.read(str(dataset.audio_path(record)), dtype="float32")
        if rate != transcriber.config.sample_rate_hz or audio.ndim != 1:
            raise SystemExit(f"{record.audio_filename}: expected {transcriber.config.sample_rate_hz} Hz mono")
        reference = reference_notes(dataset.midi_path(record), args.seconds)
        probs = transcriber.predict(log_mel(audio[: int(args.seconds * rate)], transcriber.config))
        predictions.append((reference, probs))

    def score(onset, frame, offset, gate=GATE[0], correction=0.0):
        metrics = mean_metrics([transcription_metrics(reference, decode_notes(
            p["frames"], p["onsets"], p["velocities"], fps, frame, onset,
            offset_ends(p["frames"], p["offsets"], offset, gate), correction), fps)
            for reference, p in predictions])
        return metrics["note/f1"] + metrics["frame/f1"] + metrics["note-with-offset/f1"], metrics

    def show(label, m):
        print(f"{label}: note {m['note/f1']:.4f} frame {m['frame/f1']:.4f} "
              f"note+offset {m['note-with-offset/f1']:.4f} +velocity {m['note-with-offset-and-velocity/f1']:.4f}")

    results = [(*score(*setting), *setting) for setting in
               tqdm(list(itertools.product(ONSET, FRAME, OFFSET)), desc="decoding", unit="setting")]
    results.sort(key=lambda r: r[0], reverse=True)
    for _, m, onset, frame, offset in results[:8]:
        show(f"onset {onset} frame {frame} offset {offset}", m)
    _, metrics, onset, frame, offset = results[0]
    gates = sorted(((*score(onset, frame, offset, gate), offset, gate)
                    for offset, gate in itertools.product(OFFSET[1:], GATE)), key=lambda r: r[0], reverse=True)
    for _, m, gated_offset, gate in gates[:4]:
        show(f"  at those onset and frame thresholds, offset {gated_offset} gated at frame {gate}", m)
    gate = GATE[0]
    if gates[0][0] > results[0][0]:
        _, metrics, offset, gate = gates[0]
    corrections = sorted(((*score(onset, frame, offset, gate, c), c) for c in CORRECTION_S),
                         key=lambda r: r[0], reverse=True)
    for _, m, correction in corrections:
        show(f"  at those settings, offset correction {correction * 1000:+.0f} ms", m)
    _, metrics, correction = corrections[0]
    if args.apply:
        apply(transcriber.model, args.checkpoint, onset, frame, offset, gate, correction, {
            "dataset": str(args.dataset), "split": "validation", "pieces": len(predictions),
            "seconds_each": args.seconds, **{k: round(v, 4) for k, v in metrics.items() if k.endswith("/f1")}})


def apply(model, checkpoint: Path, onset: float, frame: float, offset: float | None, gate: float,
          correction: float, chosen_on: dict) -> None:
    """Rewrite the checkpoint (`model`, the one already loaded from it) with these decoding
    settings in its config, and its JSON record."""
    config = dataclasses.replace(model.config, onset_threshold=onset, frame_threshold=frame, offset_threshold=offset,
                                 offset_frame_gate=gate, offset_correction_s=correction)
    rethresholded = build_model(config)
    rethresholded.set_weights(model.get_weights())
    rethresholded.save(checkpoint)
    record_path = checkpoint.with_suffix(".json")
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record.update({"sha256_16": content_id(checkpoint), "onset_threshold": onset, "frame_threshold": frame,
                   "offset_threshold": offset, "offset_frame_gate": gate, "offset_correction_s": correction,
                   "thresholds_chosen_on": chosen_on})
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{checkpoint}: onset {onset}, frame {frame}, offset {offset} gated at frame {gate}, "
          f"offset correction {correction} s")


if __name__ == "__main__":
    main()
