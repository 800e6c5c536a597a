"""Training the onset rescorer (transcribe/rescorer/rescore.py) of a transcriber checkpoint: on the
checkpoint's own predictions on training renders, its acceptance threshold chosen on validation
renders (never on test); optionally also its note-end network (transcribe/rescorer/note_ends.py).
`w2m2w train rescorer` drives it.

Both datasets are MAESTRO-layout folders (`w2m2w maestro render` outputs); the train split of the
first and the validation split of the second are used, whole recordings. Every candidate onset
(a run above the candidate threshold) is labelled a note when a reference note of its pitch
starts within 50 ms of its peak (mir_eval's matching). A cache folder keeps each recording's
predictions (float16 .npz) for reruns. The note-end network learns, for every frame of every
accepted note's segment, whether the reference piano roll (sustain pedal applied) has the key
sounding there; its sounding threshold and quiet run are chosen on validation. Validation note /
frame / note-with-offset F1 are logged without the rescorer and at each threshold; with `apply`
the rescorer is written beside the checkpoint (`default.rescorer.keras`) with its record
(`default.rescorer.json`).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import keras
import numpy as np
from mir_eval.transcription import match_notes
from mir_eval.util import midi_to_hz
from tqdm import tqdm

from maestro.metadata import Dataset
from stages.checkpoints import companion
from stages.contract import content_id, save_model_atomic, write_bytes_atomic, write_text_atomic
from stages.io.audio import load_audio
from stages.io.midi import PIANO_LOWEST_PITCH
from transcribe.decode import notes_to_roll
from transcribe.evaluate import reference_notes
from transcribe.features import log_mel
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.rescorer.note_ends import note_cells
from transcribe.rescorer.rescore import accepted_onsets, build_rescorer, candidate_features, candidates, rescorer_path
from transcribe.transcriber import Transcriber, decode_probabilities

log = logging.getLogger(__name__)

ACCEPT = (0.3, 0.4, 0.5, 0.6, 0.7)
END_RULES = ((0.4, 3), (0.5, 3), (0.6, 3), (0.5, 2), (0.5, 5))  # (sounding threshold, quiet run)
END_CELL_SHARE = 0.5  # of the training cells, a random half (neighbouring frames say much the same)
ONSET_TOLERANCE_S = 0.05  # the note metric's: a candidate is a note when it would score as one


def predictions(transcriber: Transcriber, root: Path, split: str, cache: Path | None, limit: int | None = None):
    """[(reference notes, probabilities)] for every recording of a split (the first `limit`)."""
    dataset = Dataset.open(root)
    result = []
    for record in tqdm(dataset.select(splits=[split])[:limit], desc=f"predicting {root.name} {split}", unit="piece"):
        cached = cache / root.name / Path(record.audio_filename).with_suffix(".npz") if cache else None
        if cached and cached.exists():
            with np.load(cached) as stored:
                probs = {k: stored[k].astype(np.float32) for k in stored if k != "seconds"}
                seconds = float(stored["seconds"])
        else:
            audio = load_audio(dataset.audio_path(record), transcriber.config.sample_rate_hz)
            seconds = len(audio) / transcriber.config.sample_rate_hz
            probs = transcriber.predict(log_mel(audio, transcriber.config))
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                stored = io.BytesIO()
                np.savez(stored, seconds=seconds, **{k: v.astype(np.float16) for k, v in probs.items()})
                write_bytes_atomic(cached, stored.getvalue())
        result.append((reference_notes(dataset.midi_path(record), seconds), probs))
    return result


def labelled_candidates(reference: np.ndarray, probs: dict, candidate_threshold: float, fps: float):
    """(features, labels): each candidate run of one recording, 1 where it matches a reference note."""
    runs = candidates(probs["onsets"], candidate_threshold)
    times = runs[:, 3] / fps
    labels = np.zeros(len(runs), np.float32)
    if len(runs) and len(reference):
        ref_intervals = np.stack([reference["onset_s"],
                                  np.maximum(reference["offset_s"], reference["onset_s"] + 1e-3)], 1)
        est_intervals = np.stack([times, times + 0.1], 1)
        matches = match_notes(ref_intervals, midi_to_hz(reference["pitch"].astype(float)), est_intervals,
                              midi_to_hz((runs[:, 0] + PIANO_LOWEST_PITCH).astype(float)),
                              onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=None)
        labels[[j for _, j in matches]] = 1.0
    return candidate_features(probs, runs), labels


def labelled_cells(reference: np.ndarray, probs: dict, rescorer, fps: float, rng: np.random.Generator):
    """(features, labels) of a share of the cells of the notes the rescorer starts in one
    recording: 1 where the reference roll sounds the note's key."""
    starts = np.argwhere(accepted_onsets(rescorer, probs) > 0)
    _, note, t, features = note_cells(probs, starts)
    labels = notes_to_roll(reference, fps, len(probs["frames"]))[t, starts[note, 1]].astype(np.float32)
    keep = rng.random(len(labels)) < END_CELL_SHARE
    return features[keep], labels[keep]


def validation_score(validation, config, rescorer) -> tuple[float, dict]:
    """(note F1 + frame F1 + note-with-offset F1, all metrics) on the validation recordings."""
    metrics = mean_metrics([transcription_metrics(ref, decode_probabilities(probs, config, rescorer),
                                                  config.frames_per_second) for ref, probs in validation])
    return metrics["note/f1"] + metrics["frame/f1"] + metrics["note-with-offset/f1"], metrics


def describe(label: str, m: dict) -> str:
    return (f"{label}: note {m['note/f1']:.4f} (P {m['note/precision']:.4f} R {m['note/recall']:.4f}) "
            f"frame {m['frame/f1']:.4f} note+offset {m['note-with-offset/f1']:.4f}")


def copy_onset_layers(trained, fresh) -> None:
    """The onset network's weights of one rescorer into another (which adds a note-end network)."""
    for source, target in zip([trained.normalize, *trained.hidden, trained.logit],
                              [fresh.normalize, *fresh.hidden, fresh.logit]):
        target.set_weights(source.get_weights())


def train_rescorer(checkpoint: Path, train_dataset: Path, validation_dataset: Path, cache: Path | None = None,
                   train_pieces: int | None = None, candidate_threshold: float = 0.05, epochs: int = 8,
                   seed: int = 0, note_ends: bool = False, end_epochs: int = 4, apply: bool = False,
                   command: str = "") -> dict:
    """Train, choose the thresholds on validation, and with `apply` write the rescorer beside the
    checkpoint; returns its record (what `<name>.rescorer.json` holds)."""
    transcriber = Transcriber.load(checkpoint, rescore=False)
    fps = transcriber.config.frames_per_second
    train = predictions(transcriber, train_dataset, "train", cache, train_pieces)
    validation = predictions(transcriber, validation_dataset, "validation", cache)
    if not train or not validation:
        raise ValueError(f"no recordings in the train split of {train_dataset} or the validation split of "
                         f"{validation_dataset}")

    pairs = [labelled_candidates(ref, probs, candidate_threshold, fps) for ref, probs in train]
    features, labels = np.concatenate([f for f, _ in pairs]), np.concatenate([y for _, y in pairs])
    log.info("%d candidates from %d recordings, %.1f%% of them notes", len(labels), len(train), 100 * labels.mean())
    keras.utils.set_random_seed(seed)
    rescorer = build_rescorer(features, candidate_threshold)
    rescorer.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rescorer.fit(features, labels, batch_size=256, epochs=epochs, shuffle=True, verbose=2)

    _, without = validation_score(validation, transcriber.config, None)
    log.info(describe("validation without the rescorer", without))
    results = []
    for accept in ACCEPT:
        rescorer.accept_threshold = accept
        total, metrics = validation_score(validation, transcriber.config, rescorer)
        log.info(describe(f"  accepting at {accept}", metrics))
        results.append((total, accept, metrics))
    _, accept, metrics = max(results, key=lambda r: r[0])
    rescorer.accept_threshold = accept
    end_rule = None
    if note_ends:
        rng = np.random.default_rng(seed)
        cells = [labelled_cells(ref, probs, rescorer, fps, rng) for ref, probs in tqdm(train, desc="note-end cells")]
        end_features, end_labels = np.concatenate([f for f, _ in cells]), np.concatenate([y for _, y in cells])
        del cells
        log.info("%d note-end cells, %.1f%% of them sounding", len(end_labels), 100 * end_labels.mean())
        onsets_only = rescorer
        rescorer = build_rescorer(features, candidate_threshold, end_features)
        copy_onset_layers(onsets_only, rescorer)
        rescorer.accept_threshold = accept
        end_network = keras.Sequential([rescorer.end_normalize, *rescorer.end_hidden, rescorer.end_logit])
        end_network.compile(optimizer=keras.optimizers.Adam(1e-3),
                            loss=keras.losses.BinaryCrossentropy(from_logits=True))
        end_network.fit(end_features, end_labels, batch_size=1024, epochs=end_epochs, shuffle=True, verbose=2)
        del end_features, end_labels
        results = []
        for sounding, quiet_run in END_RULES:
            rescorer.sounding_threshold, rescorer.quiet_run = sounding, quiet_run
            total, end_metrics = validation_score(validation, transcriber.config, rescorer)
            log.info(describe(f"  note ends: sounding at {sounding}, quiet for {quiet_run} frames", end_metrics))
            results.append((total, (sounding, quiet_run), end_metrics))
        _, end_rule, metrics = max(results, key=lambda r: r[0])
        rescorer.sounding_threshold, rescorer.quiet_run = end_rule
    path = rescorer_path(checkpoint)
    record = {"rescorer": path.name, "sha256_16": None, "for_checkpoint": checkpoint.name,
              "for_checkpoint_sha256_16": content_id(checkpoint), "command": command,
              "candidate_threshold": candidate_threshold, "accept_threshold": accept,
              **({"note_ends": {"sounding_threshold": end_rule[0], "quiet_run": end_rule[1]}} if end_rule else {}),
              "training_candidates": int(len(labels)), "training_recordings": len(train), "epochs": epochs,
              "validation": {"dataset": str(validation_dataset), "pieces": len(validation),
                             "without_rescorer": {k: round(v, 4) for k, v in without.items() if k.endswith("/f1")},
                             "with_rescorer": {k: round(v, 4) for k, v in metrics.items() if k.endswith("/f1")}}}
    if apply:
        save_model_atomic(rescorer, path)
        record["sha256_16"] = content_id(path)
        write_text_atomic(companion(checkpoint, "rescorer_record"), json.dumps(record, indent=2) + "\n")
        log.info("%s: accept threshold %s", path, accept)
    return record


def train_rescorer_from(settings, command_line: str = "") -> int:
    """`w2m2w train rescorer`: prints the rescorer's record as JSON."""
    from stages.checkpoints import checkpoint_for

    s = settings
    record = train_rescorer(checkpoint_for("transcribe", s.checkpoint), s.train_dataset, s.validation_dataset,
                            cache=s.cache, train_pieces=s.train_pieces, candidate_threshold=s.candidate_threshold,
                            epochs=s.epochs, seed=s.seed, note_ends=s.note_ends, end_epochs=s.end_epochs,
                            apply=s.apply, command=command_line)
    print(json.dumps(record, indent=2))
    return 0
