"""Make a dry render sound recorded: a room, a microphone's colour, compression, background noise.

Every effect keeps the labels: the output is as long as the input and the direct sound stays at
time zero (a room adds reflections after it, equalization is zero-phase), so onsets and note
frames still line up with the MIDI. Each takes its random draws from the generator it is given.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal

# Late reverberation decays faster in the treble than in the bass, as in real rooms.
BAND_EDGES_HZ = (500.0, 4000.0)
BAND_RT60_SCALE = (1.25, 1.0, 0.55)  # below 500 Hz, 500 Hz-4 kHz, above 4 kHz


def room_impulse_response(rt60_seconds: float, direct_to_reverb_db: float, sample_rate_hz: int,
                          rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: the direct sound at sample 0, a few early reflections (3-50 ms), then a
    diffuse tail decaying 60 dB in `rt60_seconds` (per band), scaled to the given
    direct-to-reverberant energy ratio."""
    rate = sample_rate_hz
    length = int(min(1.5 * rt60_seconds * max(BAND_RT60_SCALE), 4.0) * rate)
    t = np.arange(length) / rate
    reverb = np.zeros(length)
    for reflection in range(int(rng.integers(4, 12))):
        delay = int(rng.uniform(0.003, 0.05) * rate)
        reverb[delay] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.7) * np.exp(-6.9 * delay / rate / rt60_seconds)
    onset = np.clip((t - 0.01) / 0.02, 0.0, 1.0)  # the diffuse field builds up over 10-30 ms
    low, high = BAND_EDGES_HZ
    bands = [scipy.signal.butter(4, low, "lowpass", fs=rate, output="sos"),
             scipy.signal.butter(2, (low, min(high, 0.45 * rate)), "bandpass", fs=rate, output="sos"),
             scipy.signal.butter(4, min(high, 0.45 * rate), "highpass", fs=rate, output="sos")]
    for sos, scale in zip(bands, BAND_RT60_SCALE):
        noise = scipy.signal.sosfilt(sos, rng.standard_normal(length))
        reverb += 0.3 * onset * noise * np.exp(-6.9 * t / (rt60_seconds * scale))
    reverb[0] = 0.0
    energy = float(np.sum(np.square(reverb)))
    reverb *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / max(energy, 1e-12))
    reverb[0] = 1.0  # the direct sound, energy 1
    return reverb.astype(np.float32)


def apply_room(audio: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """Convolve, keeping the input's length (the direct path has no delay)."""
    if audio.size == 0:
        return audio
    return scipy.signal.oaconvolve(audio, impulse_response)[: audio.size].astype(np.float32)


def equalize(audio: np.ndarray, sample_rate_hz: int, tilt_db_per_octave: float = 0.0,
             peaks: tuple[tuple[float, float, float], ...] = ()) -> np.ndarray:
    """A microphone's and room's colour, zero-phase: a spectral tilt around 1 kHz (capped at
    +-12 dB) and bell-shaped boosts or cuts, each (centre Hz, gain dB, width in octaves)."""
    if audio.size == 0:
        return audio
    size = audio.size + sample_rate_hz  # padded: the filter's ringing must not wrap around
    spectrum = np.fft.rfft(audio.astype(np.float64), n=size)
    octaves = np.log2(np.maximum(np.fft.rfftfreq(size, 1.0 / sample_rate_hz), 20.0) / 1000.0)
    gain_db = np.clip(tilt_db_per_octave * octaves, -12.0, 12.0)
    for centre_hz, peak_db, width_octaves in peaks:
        gain_db += peak_db * np.exp(-0.5 * np.square((octaves - np.log2(centre_hz / 1000.0)) / width_octaves))
    return np.fft.irfft(spectrum * 10.0 ** (gain_db / 20.0), n=size)[: audio.size].astype(np.float32)


def compress(audio: np.ndarray, sample_rate_hz: int, threshold_db: float, ratio: float) -> np.ndarray:
    """A feed-forward compressor: the level (RMS over 20 ms) above `threshold_db` relative to the
    file's peak level is divided by `ratio`; the gain moves smoothly (5 ms attack, 100 ms release)."""
    if audio.size == 0 or ratio <= 1.0:
        return audio
    window = max(int(0.02 * sample_rate_hz), 1)
    power = scipy.ndimage.uniform_filter1d(np.square(audio.astype(np.float64)), window)
    level_db = 10.0 * np.log10(np.maximum(power, 1e-12))
    over = np.maximum(level_db - (level_db.max() + threshold_db), 0.0)
    target_db = -over * (1.0 - 1.0 / ratio)
    gain_db = np.empty_like(target_db)
    attack = np.exp(-1.0 / (0.005 * sample_rate_hz))
    release = np.exp(-1.0 / (0.1 * sample_rate_hz))
    # One-pole smoothing that reacts fast to more reduction and slowly to less: run it in blocks
    # of 1 ms so the loop stays cheap on hour-long files.
    block = max(sample_rate_hz // 1000, 1)
    current = 0.0
    for start in range(0, target_db.size, block):
        goal = float(target_db[start:start + block].min())
        coefficient = attack ** block if goal < current else release ** block
        current = coefficient * current + (1.0 - coefficient) * goal
        gain_db[start:start + block] = current
    return (audio * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def background_noise(size: int, sample_rate_hz: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: "white", "pink" (1/f), "brown" (1/f^2) or "room" (pink hiss, a low rumble
    and a faint 50 or 60 Hz mains hum with its harmonics)."""
    if size == 0:
        return np.zeros(0, np.float32)
    white = rng.standard_normal(size)
    if color == "white":
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        frequency = np.maximum(np.arange(spectrum.size), 1.0)
        exponent = {"pink": 0.5, "brown": 1.0, "room": 0.5}[color]
        noise = np.fft.irfft(spectrum / frequency ** exponent, n=size)
        noise /= np.sqrt(np.mean(np.square(noise)))
        if color == "room":
            rumble = np.fft.irfft(spectrum / frequency, n=size)
            rumble /= np.sqrt(np.mean(np.square(rumble)))
            t = np.arange(size) / sample_rate_hz
            mains = float(rng.choice([50.0, 60.0]))
            hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
            noise = noise + 0.7 * rumble + 0.3 * hum
    return (noise / np.sqrt(np.mean(np.square(noise)))).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, color: str, rng: np.random.Generator,
              sample_rate_hz: int = 16_000) -> np.ndarray:
    """Add noise `snr_db` below the signal's RMS (silent audio stays silent)."""
    signal_rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if signal_rms == 0.0:
        return audio
    noise = background_noise(audio.size, sample_rate_hz, color, rng)
    return (audio + noise * (signal_rms / 10.0 ** (snr_db / 20.0))).astype(np.float32)
