"""A harmonic excitation: the MIDI as decaying sinusoids at each note's harmonics, at the audio rate.

The paper's WaveNet learns pitch from the piano roll alone, which takes far more training than a
CPU gives (our roll-only model, after 1,000 steps, scored 0.006 round-trip note F1). Handing the
network oscillators at the right frequencies turns "invent a periodic waveform" into "shape a
given one", which a small WaveNet learns in hours. Channels: sin and cos of harmonics 1..H of every
sounding note, summed over notes, each with phase zero at its onset and an amplitude of
velocity / 127 times a rough piano decay (the network corrects the timbre; it only needs the
periodicity). Harmonics above Nyquist are left out. Notes must have the sustain pedal applied.
"""

from __future__ import annotations

import numpy as np


def decay_seconds(pitch: np.ndarray) -> np.ndarray:
    """A rough piano decay time: about 4 s at A0, halving every two octaves."""
    return 4.0 * 2.0 ** (-(pitch - 21) / 24.0)


def harmonic_excitation(notes: np.ndarray, start: int, length: int, sample_rate_hz: int, harmonics: int) -> np.ndarray:
    """(length, 2 * harmonics) float32 for samples [start, start + length) of the notes' timeline."""
    out = np.zeros((length, 2 * harmonics), np.float32)
    if harmonics == 0 or len(notes) == 0:
        return out
    onsets = np.round(notes["onset_s"] * sample_rate_hz).astype(np.int64)
    offsets = np.round(notes["offset_s"] * sample_rate_hz).astype(np.int64)
    for onset, offset, pitch, velocity in zip(onsets, offsets, notes["pitch"], notes["velocity"]):
        first, last = max(onset, start), min(offset, start + length)
        if first >= last:
            continue
        t = np.arange(first - onset, last - onset, dtype=np.float64) / sample_rate_hz  # since the onset
        frequency = 440.0 * 2.0 ** ((float(pitch) - 69) / 12)
        amplitude = float(velocity) / 127.0 * np.exp(-t / decay_seconds(float(pitch)))
        for h in range(1, harmonics + 1):
            if h * frequency >= sample_rate_hz / 2:
                break
            phase = 2 * np.pi * h * frequency * t
            out[first - start: last - start, 2 * h - 2] += (amplitude * np.sin(phase)).astype(np.float32)
            out[first - start: last - start, 2 * h - 1] += (amplitude * np.cos(phase)).astype(np.float32)
    return out
