"""Infilling: new music for a gap between two given stretches, with a composer that only continues.

The Music Transformer reads left to right, so it cannot condition on what follows a gap. It can
score it, though: several candidate gaps are sampled after the music before the gap (each ending
exactly at the gap's end with every key released), and the one under which the music after the
gap is likeliest is kept, argmax_k log p(after | before, gap_k). No training is needed; the cost
is `candidates` samplings and one batched scoring pass.

The model hears the music before the gap as if every key were released at the gap's start (the
output keeps those notes whole, so they may ring into the gap).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from compose.data import window
from compose.evaluate import log_softmax
from compose.sample import Sampler, _shift_seconds, ended_at
from compose.tokens import MAX_SHIFT_STEPS, STEPS_PER_SECOND, decode, encode
from compose.vocabulary import PAD, TIME_SHIFT
from stages.contract import InputError
from stages.io.midi import NoteSequence

AFTER_SECONDS = 5.0  # of music after the gap scored, and at most a quarter of the model's window:
AFTER_SHARE = 4


@dataclasses.dataclass
class Infilled:
    piece: NoteSequence  # the whole piece, the gap rewritten
    new_notes: NoteSequence  # the gap's notes alone, at their times in the piece
    scores: list[float]  # log p(after | before, candidate) of each candidate, nats
    chosen: int


def shift_tokens(steps: int) -> list[int]:
    """Time-shift tokens advancing `steps` 10 ms steps (at most 1 s per token)."""
    tokens = []
    while steps > 0:
        step = min(steps, MAX_SHIFT_STEPS)
        tokens.append(TIME_SHIFT + step - 1)
        steps -= step
    return tokens


def steps_of(tokens) -> int:
    return int(round(sum(_shift_seconds(int(t)) for t in tokens) * STEPS_PER_SECOND))


def clipped(sequence: NoteSequence, end_s: float) -> NoteSequence:
    """The notes released by `end_s` at the latest."""
    part = NoteSequence()
    part.CopyFrom(sequence)
    for note in part.notes:
        note.end_time = min(note.end_time, end_s)
    part.total_time = min(part.total_time, end_s)
    return part


def context_tokens(piece: NoteSequence, start_s: float, context_seconds: float) -> np.ndarray:
    """The `context_seconds` before `start_s` as tokens lasting exactly up to `start_s`."""
    first = max(0.0, start_s - context_seconds)
    duration = start_s - first
    tokens = list(encode(clipped(window(piece, first, start_s), duration), sustain=False))
    tokens += shift_tokens(int(round(duration * STEPS_PER_SECOND)) - steps_of(tokens))
    return np.array(tokens, np.int32)


def completed(gap: np.ndarray, seconds: float, context: np.ndarray) -> np.ndarray:
    """A sampled gap lasting exactly `seconds` with every key released at its end (a sampling cut
    short by its token budget is padded with silence first)."""
    missing = int(round(seconds * STEPS_PER_SECOND)) - steps_of(gap)
    if missing > 0:
        gap = np.concatenate([gap, shift_tokens(missing)]).astype(np.int32)
    return ended_at(gap, seconds, context)


def suffix_log_likelihoods(sampler: Sampler, lead: np.ndarray, context: np.ndarray, gaps: list[np.ndarray],
                           after: np.ndarray) -> list[float]:
    """log p(after | lead, context, gap) for each gap, in nats: one batch through the model, each
    row cut from the left of the context to fit the model's training length."""
    length = sampler.model.config.sequence_length
    after = after[: length // AFTER_SHARE]
    rows = np.full((len(gaps), length), PAD, np.int32)
    spans = []
    for i, gap in enumerate(gaps):
        room = length - len(lead) - len(gap) - len(after)
        kept = context[len(context) - max(room, 0):] if room > 0 else context[:0]
        row = np.concatenate([lead, kept, gap, after]).astype(np.int32)[-length:]
        rows[i, : len(row)] = row
        spans.append((len(row) - len(after), len(row)))
    if not len(after):
        return [0.0] * len(gaps)
    logits = np.asarray(sampler._full(rows), np.float64)
    scores = []
    for i, (first, end) in enumerate(spans):
        log_probs = log_softmax(logits[i, first - 1: end - 1])
        scores.append(float(log_probs[np.arange(end - first), rows[i, first:end]].sum()))
    return scores


def infill(sampler: Sampler, piece: NoteSequence, start_s: float, end_s: float, *, context_seconds: float = 10.0,
           after_seconds: float = AFTER_SECONDS, candidates: int = 8, lead: np.ndarray | None = None, seed: int = 0,
           **sampling) -> Infilled:
    """`piece` (sustain already applied) with the notes starting in [start_s, end_s) replaced by
    new music that leads from the `context_seconds` before into the `after_seconds` after.
    `sampling`: Sampler.generate's temperature, top_k, top_p, max_tokens, in_grammar."""
    if not 0 <= start_s < end_s:
        raise InputError(f"the gap must start before it ends and at 0 s or later, not {start_s}-{end_s} s")
    if not piece.notes or start_s >= max(n.start_time for n in piece.notes):
        raise InputError(f"nothing to lead into: no note starts after the gap's start ({start_s} s)")
    lead = np.zeros(0, np.int32) if lead is None else np.asarray(lead, np.int32)
    context = context_tokens(piece, start_s, context_seconds)
    after = encode(window(piece, end_s, end_s + after_seconds), sustain=False)
    seconds = end_s - start_s
    gaps = [completed(sampler.generate(context, seconds=seconds, seed=seed + k, stop_at_end=False,
                                       conditioning=lead if len(lead) else None, **sampling), seconds, context)
            for k in range(candidates)]
    scores = suffix_log_likelihoods(sampler, lead, context, gaps, after)
    chosen = int(np.argmax(scores))
    new = decode(gaps[chosen])
    filled = NoteSequence()
    filled.CopyFrom(piece)
    del filled.notes[:]
    filled.notes.extend(n for n in piece.notes if n.start_time < start_s or n.start_time >= end_s)
    new_notes = NoteSequence()
    for note in new.notes:
        copy = new_notes.notes.add()
        copy.CopyFrom(note)
        copy.start_time += start_s
        copy.end_time = min(copy.end_time + start_s, end_s)
    filled.notes.extend(new_notes.notes)
    filled.notes.sort(key=lambda n: (n.start_time, n.pitch))
    filled.total_time = max((n.end_time for n in filled.notes), default=0.0)
    new_notes.total_time = max((n.end_time for n in new_notes.notes), default=0.0)
    return Infilled(filled, new_notes, scores, chosen)
