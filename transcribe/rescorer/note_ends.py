"""Where notes end: a second look at the frame head after each note's onset.

Decoding ends a note where the frame head first drops below a threshold (or the offset head
fires). That costs most of the frame F1 it loses: with every matched note given its reference
end, validation frame F1 would rise from 0.87 to 0.95. The frame head's probability on a note
held by the pedal fades as its sound does, it dips and recovers, and a pedal release shows as
many offsets at once. So each note gets a segment, from its onset to the next onset on its key or
to where the frame head has stayed quiet for QUIET_FRAMES, and a small network reads every frame
of it (the frame head around it, the offset head, how long the note has sounded, how strong it
began, what the other keys do) and gives the probability that the note still sounds there. The
note ends where a run of frames it judges silent begins (`quiet_run`, chosen on validation), so a
shorter dip does not cut it. The network itself lives in the rescorer (transcribe/rescorer/rescore.py).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d

QUIET_PROBABILITY = 0.03  # the frame head below this is taken as silence on the key
QUIET_FRAMES = 16  # ~0.5 s of silence ends a note's segment
MAX_FRAMES = 625  # ~20 s: no note's segment is longer
FRAME_OFFSETS = (-4, -2, -1, 0, 1, 2, 4, 8, 16)  # where the frame head is read, relative to the frame
# The frame head at FRAME_OFFSETS; offset head at -1, 0, 1; onset head; time since the onset and to
# the segment's end; the note's velocity, onset and early frame head; the frame head's minimum over
# the last 8 and 32 frames and its maximum over the next 32; across keys: offsets, sounding keys,
# total frame head now and 8 frames ago, onsets; the key; its octave neighbours.
NUM_FEATURES = len(FRAME_OFFSETS) + 4 + 5 + 3 + 5 + 1 + 2
CELL_BLOCK = 100_000  # frames scored at once: bounds the memory of an hour's notes


def segment_ends(frame_probs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(N,) exclusive end frame of each note's segment; `starts` are (N, 2) rows (frame, key)."""
    num_frames = len(frame_probs)
    frames, keys = starts[:, 0], starts[:, 1]
    # A frame begins a silence when none of it and the QUIET_FRAMES - 1 after it sounds (past the
    # end counts as silent).
    sounding = np.pad(np.asarray(frame_probs) >= QUIET_PROBABILITY, ((0, QUIET_FRAMES), (0, 0))).view(np.uint8)
    quiet_from = maximum_filter1d(sounding, QUIET_FRAMES, axis=0, origin=-(QUIET_FRAMES // 2))[:num_frames] == 0
    ends = np.minimum(frames + MAX_FRAMES, num_frames)
    for key in np.unique(keys):
        mine = np.flatnonzero(keys == key)
        mine = mine[np.argsort(frames[mine])]
        own = frames[mine]
        following = np.append(own[1:], num_frames)  # the next onset on the key ends the segment
        stops = np.flatnonzero(quiet_from[:, key])
        first_quiet = np.append(stops, num_frames)[np.searchsorted(stops, own, side="right")]
        ends[mine] = np.minimum(ends[mine], np.minimum(following, first_quiet))
    return np.maximum(ends, frames + 1)


def segment_cells(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(note index, frame) of every frame of every segment, notes in order."""
    lengths = ends - starts[:, 0]
    note = np.repeat(np.arange(len(starts)), lengths)
    first_cell = np.cumsum(lengths) - lengths
    return note, starts[note, 0] + np.arange(len(note)) - first_cell[note]


class CellContext:
    """What the features read about one recording: the heads and per-frame summaries across keys.
    Windows of the frame head are gathered per block of cells, not kept as whole (frames, 88)
    arrays: an hour of each costs 40 MB."""

    def __init__(self, probs: dict[str, np.ndarray]):
        self.onsets, self.frames, self.offsets, self.velocities = (
            np.asarray(probs[name], np.float32) for name in ("onsets", "frames", "offsets", "velocities"))
        frames, onsets = self.frames, self.onsets
        frame_sum = frames.sum(axis=1)
        self.across = np.stack([maximum_filter1d((self.offsets >= 0.5).sum(axis=1), 5).astype(np.float32),
                                (frames >= 0.5).sum(axis=1).astype(np.float32), frame_sum,
                                np.concatenate([np.zeros(8, np.float32), frame_sum[:-8]]),
                                maximum_filter1d((onsets >= 0.3).sum(axis=1), 5).astype(np.float32)], axis=1)

    def features(self, starts: np.ndarray, ends: np.ndarray, note: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(cells, NUM_FEATURES) float32 for the cells (note index, frame t)."""
        s, k = starts[note, 0], starts[note, 1]
        frames = self.frames
        columns = [_read(frames, t + d, k) for d in FRAME_OFFSETS]
        columns += [_read(self.offsets, t - 1, k), self.offsets[t, k], _read(self.offsets, t + 1, k), self.onsets[t, k]]
        columns += [np.log1p(t - s), np.log1p(ends[note] - t), self.velocities[s, k], self.onsets[s, k],
                    _read(frames, s + 2, k)]
        # Running minimum over the last 8 and 32 frames and maximum over the next 32; past the
        # recording's edges the frames are mirrored (scipy.ndimage's "reflect", as trained).
        window = lambda offsets: np.stack([frames[_reflect(t + d, len(frames)), k] for d in offsets])  # noqa: E731
        recent = window(range(-31, 1))
        columns += [recent[-8:].min(axis=0), recent.min(axis=0), window(range(32)).max(axis=0)]
        columns += list(self.across[t].T) + [k, _read(frames, t, k - 12), _read(frames, t, k + 12)]
        return np.stack(columns, axis=1).astype(np.float32)


def _reflect(t: np.ndarray, num_frames: int) -> np.ndarray:
    """Frame indices mirrored into [0, num_frames): -1 -> 0, num_frames -> num_frames - 1."""
    t = np.where(t < 0, -t - 1, t)
    return np.where(t >= num_frames, 2 * num_frames - 1 - t, t)


def _read(values: np.ndarray, t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """values[t, k] where (t, k) lies inside the (frames, keys) array, else 0."""
    inside = (t >= 0) & (t < values.shape[0]) & (k >= 0) & (k < values.shape[1])
    return np.where(inside, values[np.clip(t, 0, values.shape[0] - 1), np.clip(k, 0, values.shape[1] - 1)], 0.0)


def note_cells(probs: dict[str, np.ndarray], starts: np.ndarray):
    """(segment ends, note index, frame, features) for notes starting at `starts` (frame, key)."""
    ends, note, t, context = _segments(probs, starts)
    return ends, note, t, context.features(starts, ends, note, t)


def _segments(probs: dict[str, np.ndarray], starts: np.ndarray):
    """(segment ends, note index and frame of every cell, the recording's CellContext)."""
    ends = segment_ends(probs["frames"], starts)
    return (ends, *segment_cells(starts, ends), CellContext(probs))


def end_frames(starts: np.ndarray, segment_end: np.ndarray, note: np.ndarray, t: np.ndarray,
               sounding: np.ndarray, quiet_run: int) -> np.ndarray:
    """(N,) exclusive end frame of each note: the first frame after its onset that begins
    `quiet_run` frames judged silent (fewer where its segment ends sooner), else its segment's end.
    A shorter silence is a dip: the note goes on."""
    silent = ~np.asarray(sounding, bool)
    last_cell = np.cumsum(segment_end - starts[:, 0])[note]  # exclusive, per cell
    cell = np.arange(len(note))
    silent_before = np.concatenate([[0], np.cumsum(silent)])
    reach = np.minimum(cell + quiet_run, last_cell)
    begins_silence = silent & (silent_before[reach] - silent_before[cell] == reach - cell) & (t > starts[note, 0])
    ends = segment_end.copy()
    np.minimum.at(ends, note[begins_silence], t[begins_silence])
    return ends


def decode_with_ends(probs: dict[str, np.ndarray], starts: np.ndarray, cell_logits, sounding_threshold: float,
                     quiet_run: int) -> np.ndarray:
    """(N,) end frames of the notes starting at `starts` (frame, key), by `cell_logits` (features
    -> logits that the note sounds), scored CELL_BLOCK frames at a time."""
    segment_end, note, t, context = _segments(probs, starts)
    logit_threshold = np.log(sounding_threshold / (1.0 - sounding_threshold))
    sounding = np.zeros(len(note), bool)
    for first in range(0, len(note), CELL_BLOCK):
        block = slice(first, first + CELL_BLOCK)
        logits = np.asarray(cell_logits(context.features(starts, segment_end, note[block], t[block])))
        sounding[block] = logits.reshape(-1) >= logit_threshold
    return end_frames(starts, segment_end, note, t, sounding, quiet_run)
