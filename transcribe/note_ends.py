"""Where notes end: a second look at the frame head after each note's onset.

Decoding ends a note where the frame head first drops below a threshold (or the offset head
fires). That costs most of the frame F1 it loses: with every matched note given its reference
end, validation frame F1 would rise from 0.87 to 0.95. The frame head's probability on a note
held by the pedal fades as its sound does, it dips and recovers, and a pedal release shows as
many offsets at once. So each note gets a segment, from its onset to the next onset on its key or
to where the frame head has stayed quiet for QUIET_FRAMES, and a small network reads every frame
of it (the frame head around it, the offset head, how long the note has sounded, how strong it
began, what the other keys do) and gives the probability that the note still sounds there. The
note ends after the last frame of its segment it believes sounding, so a dip does not cut it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

QUIET_PROBABILITY = 0.03  # the frame head below this is taken as silence on the key
QUIET_FRAMES = 16  # ~0.5 s of silence ends a note's segment
MAX_FRAMES = 625  # ~20 s: no note's segment is longer
FRAME_OFFSETS = (-4, -2, -1, 0, 1, 2, 4, 8, 16)  # where the frame head is read, relative to the frame
PAD = 32  # frames of padding: every read below stays inside
# The frame head at FRAME_OFFSETS; offset head at -1, 0, 1; onset head; time since the onset and to
# the segment's end; the note's velocity, onset and early frame head; the frame head's minimum over
# the last 8 and 32 frames and its maximum over the next 32; across keys: offsets, sounding keys,
# total frame head now and 8 frames ago, onsets; the key; its octave neighbours.
NUM_FEATURES = len(FRAME_OFFSETS) + 4 + 5 + 3 + 5 + 1 + 2
CELL_BLOCK = 250_000  # frames scored at once: bounds the memory of an hour's notes


def segment_ends(frame_probs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(N,) exclusive end frame of each note's segment; `starts` are (N, 2) rows (frame, key)."""
    num_frames = len(frame_probs)
    frames, keys = starts[:, 0], starts[:, 1]
    quiet = np.pad(np.asarray(frame_probs) < QUIET_PROBABILITY, ((0, QUIET_FRAMES), (0, 0)), constant_values=True)
    counts = np.concatenate([np.zeros((1, quiet.shape[1]), np.int64), np.cumsum(quiet, axis=0)])
    quiet_from = (counts[QUIET_FRAMES:QUIET_FRAMES + num_frames] - counts[:num_frames]) == QUIET_FRAMES
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
    """What the features read, computed once per recording: the heads padded in time and keys,
    running minima and maxima of the frame head, and per-frame summaries across keys."""

    def __init__(self, probs: dict[str, np.ndarray]):
        onsets, frames, offsets, velocities = (np.asarray(probs[name], np.float32)
                                               for name in ("onsets", "frames", "offsets", "velocities"))
        self.onsets, self.velocities = onsets, velocities  # read at the cell or the onset only
        self.offsets = np.pad(offsets, ((1, 1), (0, 0)))
        self.frames = np.pad(frames, ((PAD, PAD), (12, 12)))
        self.min8 = minimum_filter1d(frames, 8, axis=0, origin=3)
        self.min32 = minimum_filter1d(frames, 32, axis=0, origin=15)
        self.max32 = maximum_filter1d(frames, 32, axis=0, origin=-16)
        frame_sum = frames.sum(axis=1)
        self.across = np.stack([maximum_filter1d((offsets >= 0.5).sum(axis=1), 5).astype(np.float32),
                                (frames >= 0.5).sum(axis=1).astype(np.float32), frame_sum,
                                np.concatenate([np.zeros(8, np.float32), frame_sum[:-8]]),
                                maximum_filter1d((onsets >= 0.3).sum(axis=1), 5).astype(np.float32)], axis=1)

    def features(self, starts: np.ndarray, ends: np.ndarray, note: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(cells, NUM_FEATURES) float32 for the cells (note index, frame t)."""
        s, k = starts[note, 0], starts[note, 1]
        pt, pk = t + PAD, k + 12
        columns = [self.frames[pt + d, pk] for d in FRAME_OFFSETS]
        columns += [self.offsets[t, k], self.offsets[t + 1, k], self.offsets[t + 2, k], self.onsets[t, k]]
        columns += [np.log1p(t - s), np.log1p(ends[note] - t), self.velocities[s, k], self.onsets[s, k],
                    self.frames[s + PAD + 2, pk]]
        columns += [self.min8[t, k], self.min32[t, k], self.max32[t, k]]
        columns += list(self.across[t].T) + [k, self.frames[pt, pk - 12], self.frames[pt, pk + 12]]
        return np.stack(columns, axis=1).astype(np.float32)


def note_cells(probs: dict[str, np.ndarray], starts: np.ndarray):
    """(segment ends, note index, frame, features) for notes starting at `starts` (frame, key)."""
    ends = segment_ends(probs["frames"], starts)
    note, t = segment_cells(starts, ends)
    return ends, note, t, CellContext(probs).features(starts, ends, note, t)


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
    segment_end = segment_ends(probs["frames"], starts)
    note, t = segment_cells(starts, segment_end)
    context = CellContext(probs)
    logit_threshold = np.log(sounding_threshold / (1.0 - sounding_threshold))
    sounding = np.zeros(len(note), bool)
    for first in range(0, len(note), CELL_BLOCK):
        block = slice(first, first + CELL_BLOCK)
        logits = np.asarray(cell_logits(context.features(starts, segment_end, note[block], t[block])))
        sounding[block] = logits.reshape(-1) >= logit_threshold
    return end_frames(starts, segment_end, note, t, sounding, quiet_run)
