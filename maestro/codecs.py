"""The recording chain after the room: what happens to a recording on its way to a user.

A second microphone at another distance, a preamp driven into clipping, a source made at a lower
sample rate, and a lossy codec (MP3 or Opus at a given bit rate, as a phone or a streaming site
delivers it). Like maestro/recording.py, every effect keeps the labels: the output has the input's
length and sample rate, and its sound starts where the input's does (a codec's delay is measured and
removed). None draws random numbers: an effect's parameters are its whole description.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile
import soxr

# libsndfile sets an encoder's bit rate by a "compression level" in [0, 1]: measured here (CBR MP3 at
# 44.1 kHz, VBR Opus at 48 kHz, on noise), the kb/s each level gives.
MP3_LEVELS_KBPS = ((0.0, 320), (0.2, 256), (0.3, 224), (0.4, 192), (0.5, 160), (0.7, 112), (0.8, 96),
                   (0.82, 80), (0.86, 64), (0.9, 56), (0.94, 48), (0.96, 40))
OPUS_LEVELS_KBPS = tuple((level / 10, kbps) for level, kbps in
                         enumerate((239, 216, 193, 170, 147, 124, 101, 77, 54, 27, 6)))
CODECS = {  # name: (libsndfile format, subtype, the rate it encodes at, level table, bit-rate mode)
    "mp3": ("MP3", "MPEG_LAYER_III", 44_100, MP3_LEVELS_KBPS, "CONSTANT"),
    "opus": ("OGG", "OPUS", 48_000, OPUS_LEVELS_KBPS, None),
}
MAX_CODEC_DELAY_SAMPLES = 4_096  # an encoder's priming delay is about 1,100 samples (LAME) or less


def _fit(audio: np.ndarray, size: int) -> np.ndarray:
    """Cut or zero-pad to `size` samples."""
    out = np.zeros(size, np.float32)
    out[: min(size, audio.size)] = audio[:size]
    return out


def _resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    return audio if from_hz == to_hz else soxr.resample(audio, from_hz, to_hz).astype(np.float32)


def _delay(decoded: np.ndarray, original: np.ndarray) -> int:
    """The lag (samples) at which `decoded` best matches `original`, by cross-correlation of their
    first seconds."""
    span = min(original.size, decoded.size, 10 * 48_000)
    if span <= MAX_CODEC_DELAY_SAMPLES:
        return 0
    a, b = decoded[:span].astype(np.float64), original[:span].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * span)))
    correlation = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return int(np.argmax(correlation[: MAX_CODEC_DELAY_SAMPLES + 1]))


def lossy_codec(audio: np.ndarray, sample_rate_hz: int, codec: str, kbps: float) -> np.ndarray:
    """Encode and decode as `codec` ("mp3" or "opus") at about `kbps`, at the codec's usual rate."""
    if audio.size == 0:
        return audio
    file_format, subtype, codec_rate, levels, mode = CODECS[codec]
    level = float(np.interp(-kbps, [-k for _, k in levels], [lvl for lvl, _ in levels]))
    signal = _resample(audio.astype(np.float32), sample_rate_hz, codec_rate)
    encoded = io.BytesIO()
    options = {"bitrate_mode": mode} if mode else {}
    soundfile.write(encoded, np.clip(signal, -1.0, 1.0), codec_rate, format=file_format, subtype=subtype,
                    compression_level=min(level, 0.96), **options)
    encoded.seek(0)
    decoded, _ = soundfile.read(encoded, dtype="float32")
    decoded = decoded[_delay(decoded, signal):]
    return _fit(_resample(_fit(decoded, signal.size), codec_rate, sample_rate_hz), audio.size)


def band_limit(audio: np.ndarray, sample_rate_hz: int, source_rate_hz: int) -> np.ndarray:
    """A recording made at `source_rate_hz` (nothing above its Nyquist frequency), at our rate."""
    if source_rate_hz >= sample_rate_hz or audio.size == 0:
        return audio
    low = _resample(audio.astype(np.float32), sample_rate_hz, source_rate_hz)
    return _fit(_resample(low, source_rate_hz, sample_rate_hz), audio.size)


def second_microphone(audio: np.ndarray, sample_rate_hz: int, delay_ms: float, gain_db: float) -> np.ndarray:
    """Two microphones at different distances mixed to mono: the far one hears the sound `delay_ms`
    later and `gain_db` quieter, which combs the spectrum. The near one keeps time zero."""
    delay = int(round(delay_ms * sample_rate_hz / 1000.0))
    if audio.size == 0 or delay <= 0:
        return audio
    out = audio.astype(np.float32).copy()
    out[delay:] += np.float32(10.0 ** (gain_db / 20.0)) * audio[:-delay]
    return out / np.float32(1.0 + 10.0 ** (gain_db / 20.0))


def clip(audio: np.ndarray, drive_db: float) -> np.ndarray:
    """A preamp driven `drive_db` past full scale by the file's peak, clipped hard, at the input's level."""
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0.0 or drive_db <= 0.0:
        return audio
    scale = np.float32(10.0 ** (drive_db / 20.0) / peak)
    return (np.clip(audio * scale, -1.0, 1.0) / scale).astype(np.float32)
