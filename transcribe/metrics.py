"""Transcription metrics of the MAESTRO paper: frame, note, note-with-offset(-and-velocity).

Metrics are computed per piece and then averaged over pieces (`mean_metrics`), as the
MAESTRO protocol does. Each family has `<family>/precision`, `/recall` and `/f1`.
`release_ghost_share` counts one kind of error apart: re-detections of a key still sounding or
just released (issue 57).
"""

from __future__ import annotations

import numpy as np
from mir_eval import transcription, transcription_velocity
from mir_eval.util import midi_to_hz

from transcribe.decode import notes_to_roll

ONSET_TOLERANCE_S = 0.05
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE_S = 0.05
VELOCITY_TOLERANCE = 0.1
# A wrong note of a key that sounded up to this long before it counts as a release ghost.
RELEASE_WINDOW_S = 0.3
FAMILIES = ("frame", "note", "note-with-offset", "note-with-offset-and-velocity")
# mir_eval rejects zero-length notes, which MIDI files can hold.
MIN_DURATION_S = 1e-6


def transcription_metrics(reference: np.ndarray, estimate: np.ndarray,
                          frames_per_second: float = 31.25) -> dict[str, float]:
    """Precision, recall and F1 of every family for one piece (NOTE_DTYPE note arrays).

    The reference should already hold the sustain pedal. Empty against empty scores 1.0,
    one side empty scores 0.0.
    """
    metrics = _frame_metrics(reference, estimate, frames_per_second)
    if len(reference) == 0 or len(estimate) == 0:
        score = 1.0 if len(reference) == len(estimate) else 0.0
        for family in FAMILIES[1:]:
            metrics.update(_named(family, score, score, score))
        return metrics

    ref_intervals, ref_hz = _mir_eval_notes(reference)
    est_intervals, est_hz = _mir_eval_notes(estimate)
    onsets_only = transcription.precision_recall_f1_overlap(
        ref_intervals, ref_hz, est_intervals, est_hz,
        onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=None)
    with_offsets = transcription.precision_recall_f1_overlap(
        ref_intervals, ref_hz, est_intervals, est_hz, onset_tolerance=ONSET_TOLERANCE_S,
        offset_ratio=OFFSET_RATIO, offset_min_tolerance=OFFSET_MIN_TOLERANCE_S)
    with_velocity = transcription_velocity.precision_recall_f1_overlap(
        ref_intervals, ref_hz, reference["velocity"].astype(float),
        est_intervals, est_hz, estimate["velocity"].astype(float),
        onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=OFFSET_RATIO,
        offset_min_tolerance=OFFSET_MIN_TOLERANCE_S, velocity_tolerance=VELOCITY_TOLERANCE)
    metrics.update(_named("note", *onsets_only[:3]))
    metrics.update(_named("note-with-offset", *with_offsets[:3]))
    metrics.update(_named("note-with-offset-and-velocity", *with_velocity[:3]))
    return metrics


def matched_pairs(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """The note metric's matching (pitch, onset within 50 ms, each note matched once) as (k, 2)
    indices: (reference note, estimated note) per match."""
    if not len(reference) or not len(estimate):
        return np.zeros((0, 2), np.int64)
    pairs = transcription.match_notes(*_mir_eval_notes(reference), *_mir_eval_notes(estimate),
                                      onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=None)
    return np.array(pairs, np.int64).reshape(-1, 2)


def matched_notes(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which reference notes were found and which estimated notes are right, by the note metric's
    matching (pitch, onset within 50 ms): two boolean arrays, to see where the errors lie."""
    found, right = np.zeros(len(reference), bool), np.zeros(len(estimate), bool)
    pairs = matched_pairs(reference, estimate)
    found[pairs[:, 0]], right[pairs[:, 1]] = True, True
    return found, right


def of_held_or_released_key(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Which estimated notes begin on a key that the reference holds at their onset, past its own
    onset's 50 ms tolerance, or released at most RELEASE_WINDOW_S before it: a boolean array over
    the estimated notes (right or wrong)."""
    if not len(reference) or not len(estimate):
        return np.zeros(len(estimate), bool)
    onsets = estimate["onset_s"].astype(float)[:, None]  # (estimated, 1) against (reference,)
    near = ((estimate["pitch"][:, None] == reference["pitch"][None, :])
            & (onsets > reference["onset_s"].astype(float) + ONSET_TOLERANCE_S)
            & (onsets <= reference["offset_s"].astype(float) + RELEASE_WINDOW_S))
    return near.any(axis=1)


def release_ghosts(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Which estimated notes are release ghosts: wrong by the note metric's matching, and of a pitch
    that the reference holds at their onset, past its own onset's 50 ms tolerance, or released at
    most RELEASE_WINDOW_S before it (`of_held_or_released_key`). On a real piano the dampers' noise
    as the keys come up reads as a new strike of every key of a chord. A boolean array over the
    estimated notes."""
    _, right = matched_notes(reference, estimate)
    return ~right & of_held_or_released_key(reference, estimate)


def release_ghost_share(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Release ghosts (`release_ghosts`) per reference note; 0 with no reference notes."""
    return float(release_ghosts(reference, estimate).sum() / len(reference)) if len(reference) else 0.0


def _mir_eval_notes(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) onset/offset intervals in seconds and (n,) pitches in Hz."""
    onsets = notes["onset_s"].astype(float)
    offsets = np.maximum(notes["offset_s"].astype(float), onsets + MIN_DURATION_S)
    return np.stack([onsets, offsets], axis=1), midi_to_hz(notes["pitch"].astype(float))


def _frame_metrics(reference: np.ndarray, estimate: np.ndarray,
                   frames_per_second: float) -> dict[str, float]:
    """Frame precision/recall/F1 over active (frame, key) cells of both piano rolls."""
    num_frames = max(_frames_needed(reference, frames_per_second),
                     _frames_needed(estimate, frames_per_second))
    reference_roll = notes_to_roll(reference, frames_per_second, num_frames)
    estimate_roll = notes_to_roll(estimate, frames_per_second, num_frames)
    true_positives = int(np.count_nonzero(reference_roll & estimate_roll))
    return _named("frame", *_precision_recall_f1(
        true_positives, int(estimate_roll.sum()), int(reference_roll.sum())))


def _frames_needed(notes: np.ndarray, frames_per_second: float) -> int:
    """Enough frames for every note's roll cells (one spare covers rounding up)."""
    if len(notes) == 0:
        return 0
    return int(np.ceil(notes["offset_s"].max() * frames_per_second)) + 2


def _precision_recall_f1(true_positives: int, num_estimated: int,
                         num_reference: int) -> tuple[float, float, float]:
    """Counts -> scores, with nothing against nothing a perfect score."""
    if num_estimated == 0 and num_reference == 0:
        return 1.0, 1.0, 1.0
    precision = true_positives / num_estimated if num_estimated else 0.0
    recall = true_positives / num_reference if num_reference else 0.0
    return precision, recall, _f1(precision, recall)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _named(family: str, precision: float, recall: float, f1: float) -> dict[str, float]:
    return {f"{family}/precision": float(precision), f"{family}/recall": float(recall),
            f"{family}/f1": float(f1)}


def mean_metrics(per_piece: list[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over pieces (keys of the first piece; all pieces must have them)."""
    if not per_piece:
        return {}
    return {key: float(np.mean([piece[key] for piece in per_piece])) for key in per_piece[0]}


def format_metrics(metrics: dict[str, float]) -> str:
    """An aligned table, one row per family, columns f1, precision, recall."""
    families = list(dict.fromkeys(key.rsplit("/", 1)[0] for key in metrics))
    width = max([len("metric")] + [len(family) for family in families])
    columns = ("f1", "precision", "recall")
    lines = [f"{'metric':<{width}}  " + "  ".join(f"{name:>9}" for name in columns)]
    for family in families:
        cells = [metrics.get(f"{family}/{name}", float("nan")) for name in columns]
        lines.append(f"{family:<{width}}  " + "  ".join(f"{value:9.4f}" for value in cells))
    return "\n".join(lines)
