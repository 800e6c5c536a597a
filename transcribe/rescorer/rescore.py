"""A second look at the onset head's candidates: which of them are notes.

Decoding starts a note where the onset head crosses a threshold, one key at a time. Most of its
mistakes can be seen in context: a spurious onset an octave or a twelfth above a real one struck
at the same moment (the key's partials sound), or a real note in a dense chord whose onset
probability stayed low. The rescorer is a small network over every candidate (a run of frames
where the onset probability exceeds a low `candidate_threshold`), reading the run itself, the
frame head on that key around it, and both heads on the harmonically related keys; it gives the
probability that the candidate is a note, and notes start at the peaks of the candidates it
accepts (`accept_threshold`). It is trained on the transcriber's own predictions on training
renders (scripts/train_rescorer.py), its threshold chosen on validation renders.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers
from scipy.ndimage import maximum_filter1d
from scipy.special import expit

from stages.checkpoints import companion
from transcribe.config import PACKAGE
from transcribe.rescorer.note_ends import NUM_FEATURES as NUM_END_FEATURES

# Keys whose partials coincide with the candidate's, or with whose partials it coincides
# (octaves, twelfths, fifths, fourths, double octaves), and the neighbouring semitones.
RELATED_KEYS = (-24, -19, -12, -7, -5, -1, 1, 5, 7, 12, 19, 24)
FRAME_OFFSETS = (-8, -4, -2, -1, 0, 1, 2, 4, 8)  # where the frame head is read, relative to the peak
CHORD_THRESHOLD = 0.3  # an onset counted as struck in the candidate's chord
LOOKBACK_FRAMES = 10  # how far back an earlier onset on the same key is looked for
# Of the run: peak, length, sum, offset head's peak, velocity, key, chord size, an earlier onset on
# the key, the onset head just before and after the peak, the strongest onset of the moment.
RUN_FEATURES = 11
NUM_FEATURES = RUN_FEATURES + len(FRAME_OFFSETS) + 2 * len(RELATED_KEYS)


def rescorer_path(transcriber_checkpoint: Path | str) -> Path | str:
    """Where a transcriber checkpoint's rescorer lies: `<stem>.keras` -> `<stem>.rescorer.keras`.
    A string stays a string, so that remote paths (gs://...) keep their form for Beam."""
    return companion(transcriber_checkpoint, "rescorer")


def candidates(onset_probs: np.ndarray, threshold: float) -> np.ndarray:
    """(frames, 88) onset probabilities -> (N, 4) int64 rows (key, first frame, end frame, peak
    frame), one per run of frames at or above `threshold`, sorted by key then time."""
    above = np.asarray(onset_probs) >= threshold
    edges = np.diff(np.pad(above.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    rows = []
    for key in range(above.shape[1]):
        firsts, ends = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        for first, end in zip(firsts, ends):
            rows.append((key, first, end, first + int(np.argmax(onset_probs[first:end, key]))))
    return np.array(rows, np.int64).reshape(-1, 4)


def candidate_features(probs: dict[str, np.ndarray], runs: np.ndarray) -> np.ndarray:
    """(N, NUM_FEATURES) float32: what the rescorer reads about each candidate run."""
    onsets, frames, offsets, velocities = (np.asarray(probs[name], np.float32)
                                           for name in ("onsets", "frames", "offsets", "velocities"))
    num_frames = len(onsets)
    if not len(runs):
        return np.zeros((0, NUM_FEATURES), np.float32)
    keys, firsts, ends, peaks = runs.T
    reach = max(abs(k) for k in RELATED_KEYS)
    # Frames and keys padded, so that every offset below stays inside.
    padded_frames = np.pad(frames, ((8, 8), (reach, reach)))
    # The strongest onset within two frames of each frame, per key (a related key's onset is
    # rarely in the very same frame); and the strongest in the LOOKBACK_FRAMES before it.
    nearby_onsets = np.pad(maximum_filter1d(onsets, 5, axis=0, mode="constant"), ((0, 0), (reach, reach)))
    delayed = np.pad(onsets, ((LOOKBACK_FRAMES, 0), (0, 0)))[:num_frames]
    earlier_onsets = maximum_filter1d(delayed, LOOKBACK_FRAMES, axis=0, mode="constant", origin=-(LOOKBACK_FRAMES // 2))
    struck = np.pad(onsets >= CHORD_THRESHOLD, ((1, 1), (0, 0)))
    chord_size = (struck[:-2] | struck[1:-1] | struck[2:]).sum(axis=1).astype(np.float32)

    def over_runs(reduce, values):
        """`reduce` (a ufunc) of `values` over each run: runs are segments of the key-major array."""
        flat = values.T.ravel()
        bounds = np.stack([keys * num_frames + firsts, keys * num_frames + ends], 1).ravel()
        return reduce.reduceat(flat, bounds[:-1] if bounds[-1] == len(flat) else bounds)[0::2]

    wide = keys + reach
    padded_onsets = np.pad(onsets, ((1, 1), (0, 0)))  # frames peak - 1 and peak + 1 at peak and peak + 2
    columns = [over_runs(np.maximum, onsets), ends - firsts, over_runs(np.add, onsets), over_runs(np.maximum, offsets),
               velocities[peaks, keys], keys, chord_size[peaks], earlier_onsets[firsts, keys],
               padded_onsets[peaks, keys], padded_onsets[peaks + 2, keys], nearby_onsets[peaks].max(axis=1)]
    columns += [padded_frames[peaks + 8 + d, wide] for d in FRAME_OFFSETS]
    columns += [nearby_onsets[peaks, wide + k] for k in RELATED_KEYS]
    columns += [padded_frames[peaks + 8 + 1, wide + k] for k in RELATED_KEYS]
    return np.stack(columns, axis=1).astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class OnsetRescorer(keras.Model):
    """(N, NUM_FEATURES) candidate features -> (N, 1) logits that each candidate is a note.

    With `note_ends`, it also holds a second network of the same shape, over the features of
    transcribe/rescorer/note_ends.py: the logit that a note still sounds at a frame (`end_logits`), which
    then decides where notes end. Its thresholds travel inside the saved `.keras` file."""

    def __init__(self, candidate_threshold: float = 0.05, accept_threshold: float = 0.5, units: int = 64,
                 note_ends: bool = False, sounding_threshold: float = 0.5, quiet_run: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.candidate_threshold, self.accept_threshold, self.units = candidate_threshold, accept_threshold, units
        self.note_ends, self.sounding_threshold, self.quiet_run = note_ends, sounding_threshold, quiet_run
        self.normalize = layers.Normalization(name="normalize")
        self.hidden = [layers.Dense(units, activation="relu", name=f"hidden_{i}") for i in range(2)]
        self.logit = layers.Dense(1, name="logit")
        if note_ends:
            self.end_normalize = layers.Normalization(name="end_normalize")
            self.end_hidden = [layers.Dense(units, activation="relu", name=f"end_hidden_{i}") for i in range(2)]
            self.end_logit = layers.Dense(1, name="end_logit")

    def build(self, input_shape=None):
        # Both networks, so that a loaded file finds every weight it saved (call uses one).
        _build([self.normalize, *self.hidden, self.logit], NUM_FEATURES)
        if self.note_ends:
            _build([self.end_normalize, *self.end_hidden, self.end_logit], NUM_END_FEATURES)
        self.built = True

    def call(self, features):
        return _run(self.normalize, self.hidden, self.logit, features)

    def end_logits(self, features) -> np.ndarray:
        """(cells, NUM_END_FEATURES) -> (cells,) logits that the note sounds at each cell."""
        return keras.ops.convert_to_numpy(_run(self.end_normalize, self.end_hidden, self.end_logit, features))[:, 0]

    def get_config(self):
        return {**super().get_config(), "candidate_threshold": self.candidate_threshold,
                "accept_threshold": self.accept_threshold, "units": self.units, "note_ends": self.note_ends,
                "sounding_threshold": self.sounding_threshold, "quiet_run": self.quiet_run}


def _build(network: list, num_features: int) -> None:
    """Build a network's layers, in order, for (batch, num_features) inputs."""
    shape = (None, num_features)
    for layer in network:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)


def _run(normalize, hidden, logit, x):
    """One network (normalization, hidden layers, logit) on features `x`."""
    x = normalize(x)
    for layer in hidden:
        x = layer(x)
    return logit(x)


def build_rescorer(training_features: np.ndarray, candidate_threshold: float = 0.05,
                   end_features: np.ndarray | None = None) -> OnsetRescorer:
    """A new rescorer whose input normalization is fitted to `training_features` (and, with
    `end_features`, a note-end network fitted to those)."""
    rescorer = OnsetRescorer(candidate_threshold, note_ends=end_features is not None, name="onset_rescorer")
    rescorer.normalize.adapt(training_features)
    if end_features is not None:
        rescorer.end_normalize.adapt(end_features)
    rescorer.build()
    return rescorer


def note_probabilities(rescorer: OnsetRescorer, probs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(candidate runs (N, 4), the probability that each is a note (N,))."""
    runs = candidates(probs["onsets"], rescorer.candidate_threshold)
    if not len(runs):
        return runs, np.zeros(0, np.float32)
    logits = rescorer.predict_on_batch(candidate_features(probs, runs))
    return runs, expit(np.asarray(logits, np.float64)[:, 0])  # no overflow for logits far below 0


def accepted_onsets(rescorer: OnsetRescorer, probs: dict[str, np.ndarray],
                    accept_threshold: float | None = None) -> np.ndarray:
    """(frames, 88) float32: 1 at the peak frame of every candidate the rescorer accepts, else 0
    (decoded as onset probabilities at any threshold in (0, 1])."""
    runs, note_probs = note_probabilities(rescorer, probs)
    threshold = rescorer.accept_threshold if accept_threshold is None else accept_threshold
    onsets = np.zeros(np.shape(probs["onsets"]), np.float32)
    kept = runs[note_probs >= threshold]
    onsets[kept[:, 3], kept[:, 0]] = 1.0
    return onsets
