"""What a transcription gets wrong, note by note, and the reference with chosen errors put in.

Against its reference (both NOTE_DTYPE arrays, sustain-extended), by the note metric's matching
(`transcribe.metrics.matched_pairs`: pitch, onset within 50 ms, each note matched once):

  missed     reference notes with no match
  ghosts     estimated notes with no match, each of the first kind that fits:
    restrike   a key the reference holds, past its onset's tolerance, or released at most 0.3 s
               before (`transcribe.metrics.of_held_or_released_key`: the release ghosts of issue 57)
    octave     an octave, a twelfth or two octaves (+-12, +-19, +-24) from a reference note that
               sounds at its onset: a harmonic read as a note
    other      any other wrong note
  matched notes: their onset error, note-length ratio and velocity error

`with_errors(reference, estimate, errors, kinds)` is the reference with the chosen kinds of error
put in (missed notes dropped, ghosts of a kind added, matched notes' onsets, offsets or velocities
taken from the estimate); with every kind it is the estimate itself. Recomputing a statistic on it
says how much of the transcription's shift that kind of error makes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from transcribe.metrics import ONSET_TOLERANCE_S, matched_pairs, of_held_or_released_key

GHOST_KINDS = ("restrike", "octave", "other")
MATCHED_KINDS = ("onsets", "offsets", "velocity")
KINDS = ("missed", *GHOST_KINDS, *MATCHED_KINDS)
HARMONIC_SEMITONES = (12, 19, 24)
RIGHT = ""  # the ghost kind of a matched estimated note


@dataclasses.dataclass(frozen=True)
class NoteErrors:
    """One piece's errors. `pairs` (matched, 2): (reference index, estimated index) per match;
    `missed` (reference,) bool; `ghost_kind` (estimated,) one of GHOST_KINDS, RIGHT if matched."""

    pairs: np.ndarray
    missed: np.ndarray
    ghost_kind: np.ndarray

    @property
    def reference_notes(self) -> int:
        return len(self.missed)


def harmonic_of_sounding_note(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Which estimated notes lie +-12, +-19 or +-24 semitones from a reference note sounding at
    their onset (from its onset's 50 ms tolerance before to its offset): (estimated,) bool."""
    if not len(reference) or not len(estimate):
        return np.zeros(len(estimate), bool)
    onsets = estimate["onset_s"].astype(float)[:, None]  # (estimated, 1) against (reference,)
    sounding = ((onsets >= reference["onset_s"].astype(float) - ONSET_TOLERANCE_S)
                & (onsets <= reference["offset_s"].astype(float)))
    apart = np.abs(estimate["pitch"].astype(int)[:, None] - reference["pitch"].astype(int)[None, :])
    return (sounding & np.isin(apart, HARMONIC_SEMITONES)).any(axis=1)


def note_errors(reference: np.ndarray, estimate: np.ndarray) -> NoteErrors:
    """Match the estimate against the reference and classify every error (module docstring)."""
    pairs = matched_pairs(reference, estimate)
    missed = np.ones(len(reference), bool)
    missed[pairs[:, 0]] = False
    wrong = np.ones(len(estimate), bool)
    wrong[pairs[:, 1]] = False
    kind = np.full(len(estimate), RIGHT, dtype="<U8")
    if wrong.any():
        ghosts = estimate[wrong]
        restrike = of_held_or_released_key(reference, ghosts)
        octave = ~restrike & harmonic_of_sounding_note(reference, ghosts)
        kind[wrong] = np.where(restrike, "restrike", np.where(octave, "octave", "other"))
    return NoteErrors(pairs, missed, kind)


def onset_errors_s(reference: np.ndarray, estimate: np.ndarray, errors: NoteErrors) -> np.ndarray:
    """Estimated minus reference onset of each matched note, seconds: (matched,)."""
    return estimate["onset_s"][errors.pairs[:, 1]] - reference["onset_s"][errors.pairs[:, 0]]


def length_ratios(reference: np.ndarray, estimate: np.ndarray, errors: NoteErrors) -> np.ndarray:
    """Estimated over reference note length of each matched note: (matched,)."""
    ref, est = reference[errors.pairs[:, 0]], estimate[errors.pairs[:, 1]]
    return (est["offset_s"] - est["onset_s"]) / np.maximum(ref["offset_s"] - ref["onset_s"], 1e-3)


def velocity_errors(reference: np.ndarray, estimate: np.ndarray, errors: NoteErrors) -> np.ndarray:
    """Estimated minus reference MIDI velocity of each matched note: (matched,)."""
    return (estimate["velocity"][errors.pairs[:, 1]].astype(int)
            - reference["velocity"][errors.pairs[:, 0]].astype(int))


def with_errors(reference: np.ndarray, estimate: np.ndarray, errors: NoteErrors, kinds) -> np.ndarray:
    """The reference with the chosen KINDS of error put in, sorted by onset then pitch: `missed`
    drops the missed notes, a ghost kind adds those ghosts, `onsets`/`offsets`/`velocity` take the
    matched notes' values from the estimate (an offset never before its onset). With every kind:
    the estimate; with none: the reference."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of error {sorted(unknown)}: choose among {KINDS}")
    notes = reference.copy()
    ref, est = errors.pairs[:, 0], errors.pairs[:, 1]
    for kind, field in (("onsets", "onset_s"), ("offsets", "offset_s"), ("velocity", "velocity")):
        if kind in kinds:
            notes[field][ref] = estimate[field][est]
    notes["offset_s"] = np.maximum(notes["offset_s"], notes["onset_s"])
    if "missed" in kinds:
        notes = notes[~errors.missed]
    added = estimate[np.isin(errors.ghost_kind, [k for k in GHOST_KINDS if k in kinds])]
    return np.sort(np.concatenate([notes, added]), order=["onset_s", "pitch"])


def error_summary(pieces: list[tuple[np.ndarray, np.ndarray, NoteErrors]]) -> dict:
    """The errors of many (reference, estimate, errors) pieces pooled: counts as shares of the
    reference notes, onset errors in ms, note-length ratios and velocity errors of matched notes."""
    reference_notes = sum(e.reference_notes for _, _, e in pieces)
    per_note = max(reference_notes, 1)
    kinds = np.concatenate([e.ghost_kind for _, _, e in pieces]) if pieces else np.zeros(0, "<U8")
    onset_ms = 1000 * np.concatenate([onset_errors_s(*p) for p in pieces] or [np.zeros(0)])
    ratios = np.concatenate([length_ratios(*p) for p in pieces] or [np.zeros(0)])
    velocity = np.concatenate([velocity_errors(*p) for p in pieces] or [np.zeros(0)])
    matched = len(onset_ms)

    def percentile(values, q):
        return float(np.percentile(values, q)) if len(values) else float("nan")

    return {"pieces": len(pieces), "reference_notes": reference_notes, "estimated_notes": len(kinds),
            "matched_notes": matched,
            "missed_share": sum(int(e.missed.sum()) for _, _, e in pieces) / per_note,
            "ghost_share": float((kinds != RIGHT).sum() / per_note),
            **{f"ghost_{kind}_share": float((kinds == kind).sum() / per_note) for kind in GHOST_KINDS},
            "onset_error_median_abs_ms": percentile(np.abs(onset_ms), 50),
            "onset_error_p95_abs_ms": percentile(np.abs(onset_ms), 95),
            "onset_error_mean_ms": float(onset_ms.mean()) if matched else float("nan"),
            "length_ratio_median": percentile(ratios, 50),
            "length_ratio_p10": percentile(ratios, 10), "length_ratio_p90": percentile(ratios, 90),
            "velocity_error_mean_abs": float(np.abs(velocity).mean()) if matched else float("nan"),
            "velocity_error_mean": float(velocity.mean()) if matched else float("nan")}
