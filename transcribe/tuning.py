"""Choosing the transcriber's decoding thresholds (onset, frame, offset), the offset head's frame
gate and the offset correction on validation recordings (never on test), and writing them into
the checkpoint. `w2m2w tune transcribe` drives it.

The validation split of a MAESTRO-layout folder (e.g. a `w2m2w maestro render` output) is used:
the first `seconds` of each of the first `pieces` recordings are predicted once, then decoded at
every threshold combination, ranked by note F1 + frame F1 + note-with-offset F1; then, at the
best onset and frame thresholds, each offset threshold with each frame gate (the offset head ends
a note only where the frame head is below it); then each offset correction (a fixed shift of every
note end). Applying stores the best in the checkpoint's config (the weights are unchanged) and in
its JSON record. Its onset rescorer, if it has one, is left out here (it decides onsets in place
of the onset threshold); frame and offset settings apply with it too.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from pathlib import Path

from tqdm import tqdm

from maestro.metadata import Dataset
from stages.checkpoints import companion
from stages.contract import content_id, save_model_atomic, write_text_atomic
from stages.io.audio import load_audio
from transcribe.decode import decode_notes, offset_ends
from transcribe.evaluate import reference_notes
from transcribe.features import log_mel
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.onsets_frames.model import build_model
from transcribe.transcriber import Transcriber

log = logging.getLogger(__name__)

ONSET = (0.2, 0.3, 0.4, 0.5)
FRAME = (0.1, 0.15, 0.2, 0.3, 0.5)
OFFSET = (None, 0.15, 0.2, 0.3, 0.5)  # None: the frame head alone ends notes
# Gates above 0.9 scored as well on validation renders but cut the clearly sounding notes of the
# real MAESTRO recording (frame F1 0.81 -> 0.22 at 0.95): renders decay more evenly than a piano.
GATE = (0.7, 0.8, 0.85, 0.9)
CORRECTION_S = (0.0, -0.008, -0.016, -0.024, -0.032)  # moves every note end; a frame is 32 ms


def describe(label: str, m: dict) -> str:
    return (f"{label}: note {m['note/f1']:.4f} frame {m['frame/f1']:.4f} "
            f"note+offset {m['note-with-offset/f1']:.4f} +velocity {m['note-with-offset-and-velocity/f1']:.4f}")


def tune_thresholds(checkpoint: Path, dataset: Path, pieces: int = 14, seconds: float = 60.0,
                    apply: bool = False, command: str = "") -> dict:
    """The best decoding settings on the validation split of `dataset` and what they reach;
    with `apply`, written into the checkpoint."""
    transcriber = Transcriber.load(checkpoint, rescore=False)  # onsets at the threshold tuned here
    fps = transcriber.config.frames_per_second
    opened = Dataset.open(dataset)
    records = opened.select(splits=["validation"])[:pieces]
    if not records:
        raise ValueError(f"no validation recordings in {dataset}")
    predictions = []
    for record in tqdm(records, desc="predicting", unit="piece"):
        rate = transcriber.config.sample_rate_hz
        audio = load_audio(opened.audio_path(record), rate, duration_seconds=seconds)
        reference = reference_notes(opened.midi_path(record), seconds)
        predictions.append((reference, transcriber.predict(log_mel(audio, transcriber.config))))

    def score(onset, frame, offset, gate=GATE[0], correction=0.0):
        metrics = mean_metrics([transcription_metrics(reference, decode_notes(
            p["frames"], p["onsets"], p["velocities"], fps, frame, onset,
            offset_ends(p["frames"], p["offsets"], offset, gate), correction), fps)
            for reference, p in predictions])
        return metrics["note/f1"] + metrics["frame/f1"] + metrics["note-with-offset/f1"], metrics

    results = [(*score(*setting), *setting) for setting in
               tqdm(list(itertools.product(ONSET, FRAME, OFFSET)), desc="decoding", unit="setting")]
    results.sort(key=lambda r: r[0], reverse=True)
    for _, m, onset, frame, offset in results[:8]:
        log.info(describe(f"onset {onset} frame {frame} offset {offset}", m))
    _, metrics, onset, frame, offset = results[0]
    gates = sorted(((*score(onset, frame, offset, gate), offset, gate)
                    for offset, gate in itertools.product(OFFSET[1:], GATE)), key=lambda r: r[0], reverse=True)
    for _, m, gated_offset, gate in gates[:4]:
        log.info(describe(f"  at those onset and frame thresholds, offset {gated_offset} gated at frame {gate}", m))
    gate = GATE[0]
    if gates[0][0] > results[0][0]:
        _, metrics, offset, gate = gates[0]
    corrections = sorted(((*score(onset, frame, offset, gate, c), c) for c in CORRECTION_S),
                         key=lambda r: r[0], reverse=True)
    for _, m, correction in corrections:
        log.info(describe(f"  at those settings, offset correction {correction * 1000:+.0f} ms", m))
    _, metrics, correction = corrections[0]
    chosen_on = {"dataset": str(dataset), "split": "validation", "pieces": len(predictions), "seconds_each": seconds,
                 **{k: round(v, 4) for k, v in metrics.items() if k.endswith("/f1")}}
    if apply:
        apply_settings(transcriber.model, checkpoint, onset, frame, offset, gate, correction, chosen_on, command)
    return {"onset_threshold": onset, "frame_threshold": frame, "offset_threshold": offset,
            "offset_frame_gate": gate, "offset_correction_s": correction, "thresholds_chosen_on": chosen_on}


def apply_settings(model, checkpoint: Path, onset: float, frame: float, offset: float | None, gate: float,
                   correction: float, chosen_on: dict, command: str = "") -> None:
    """Rewrite the checkpoint (`model`, the one already loaded from it) with these decoding
    settings in its config, and its JSON record (whose `trained_with` commands gain `command`, so
    that the model card's commands reproduce the checkpoint)."""
    config = dataclasses.replace(model.config, onset_threshold=onset, frame_threshold=frame, offset_threshold=offset,
                                 offset_frame_gate=gate, offset_correction_s=correction)
    rethresholded = build_model(config)
    rethresholded.set_weights(model.get_weights())
    save_model_atomic(rethresholded, checkpoint)
    record_path = companion(checkpoint, "record")
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record.update({"sha256_16": content_id(checkpoint), "onset_threshold": onset, "frame_threshold": frame,
                   "offset_threshold": offset, "offset_frame_gate": gate, "offset_correction_s": correction,
                   "thresholds_chosen_on": chosen_on})
    if command and command not in record.setdefault("trained_with", []):
        record["trained_with"].append(command)
    write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    log.info("%s: onset %s, frame %s, offset %s gated at frame %s, offset correction %s s", checkpoint, onset,
             frame, offset, gate, correction)


def tune_from(settings, command_line: str = "") -> int:
    """`w2m2w tune transcribe`: prints the chosen settings as JSON."""
    import json

    from stages.checkpoints import checkpoint_for

    chosen = tune_thresholds(checkpoint_for("transcribe", settings.checkpoint), settings.dataset, settings.pieces,
                             settings.seconds, apply=settings.apply, command=command_line)
    print(json.dumps(chosen, indent=2))
    return 0
