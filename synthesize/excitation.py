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


def release_seconds(pitch: np.ndarray) -> np.ndarray:
    """A rough damper time constant: 0.3 s at A0, halving every three octaves; keys from F#6 up
    have no dampers and ring on (1 s)."""
    return np.where(pitch >= 90, 1.0, 0.3 * 2.0 ** (-(pitch - 21) / 36.0))


def inharmonicity(pitch: np.ndarray) -> np.ndarray:
    """A rough inharmonicity coefficient B of a grand's strings (partial h at h f0 sqrt(1 + B h^2)):
    lowest, about 6e-5, near C3, rising to about 3e-4 at A0 and 1e-2 at C8."""
    low = -4.2 + 0.7 * (48 - pitch) / 27.0
    high = -4.2 + 2.2 * (pitch - 48) / 60.0
    return 10.0 ** np.where(pitch < 48, low, high)


def harmonic_excitation(notes: np.ndarray, start: int, length: int, sample_rate_hz: int, harmonics: int,
                        decays: tuple[float, ...] = (1.0,), release: bool = False,
                        stretched: bool = False) -> np.ndarray:
    """(length, 2 * harmonics * len(decays)) float32 for samples [start, start + length) of the
    notes' timeline (start may be negative). Channels: for each decay d (a multiple of
    decay_seconds), sin and cos of harmonics 1..H. `release`: each note fades with release_seconds
    after its offset instead of stopping there; `stretched`: partials at h f0 sqrt(1 + B h^2)."""
    width = 2 * harmonics
    out = np.zeros((length, width * len(decays)), np.float32)
    if harmonics == 0 or len(notes) == 0:
        return out
    onsets = np.round(notes["onset_s"] * sample_rate_hz).astype(np.int64)
    offsets = np.round(notes["offset_s"] * sample_rate_hz).astype(np.int64)
    for onset, offset, pitch, velocity in zip(onsets, offsets, notes["pitch"], notes["velocity"]):
        pitch = float(pitch)
        tail = int(5 * release_seconds(pitch) * sample_rate_hz) if release else 0
        first, last = max(onset, start), min(offset + tail, start + length)
        if first >= last:
            continue
        t = np.arange(first - onset, last - onset, dtype=np.float64) / sample_rate_hz  # since the onset
        frequency = 440.0 * 2.0 ** ((pitch - 69) / 12)
        amplitude = float(velocity) / 127.0 * np.ones_like(t)
        if release:
            held = (offset - onset) / sample_rate_hz
            amplitude *= np.exp(-np.maximum(t - held, 0.0) / release_seconds(pitch))
        envelopes = [amplitude * np.exp(-t / (d * decay_seconds(pitch))) for d in decays]
        stiffness = inharmonicity(pitch) if stretched else 0.0
        rows = slice(first - start, last - start)
        for h in range(1, harmonics + 1):
            partial_hz = h * frequency * np.sqrt(1.0 + stiffness * h * h)
            if partial_hz >= sample_rate_hz / 2:
                break
            phase = 2 * np.pi * partial_hz * t
            sin, cos = np.sin(phase), np.cos(phase)
            for k, envelope in enumerate(envelopes):
                out[rows, k * width + 2 * h - 2] += (envelope * sin).astype(np.float32)
                out[rows, k * width + 2 * h - 1] += (envelope * cos).astype(np.float32)
    return out


def config_excitation(notes: np.ndarray, start: int, length: int, config) -> np.ndarray:
    """harmonic_excitation with a SynthesizerConfig's settings."""
    return harmonic_excitation(notes, start, length, config.sample_rate_hz, config.harmonics, config.excitation_decays,
                               config.excitation_release, config.inharmonicity)
