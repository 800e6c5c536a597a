"""Audio in and out, in one place: any common format, rate and channel count in; 16 kHz mono out."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile
import soxr

from stages.contract import InputError
from stages.quiet import native_stderr_silenced

SAMPLE_RATE_HZ = 16_000
MIN_AUDIO_SECONDS = 0.5  # the transcriber's decoder reads up to half a second of frames around each onset
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".m4a")


def load_audio(path: Path | str, sample_rate_hz: int = SAMPLE_RATE_HZ,
               offset_seconds: float = 0.0, duration_seconds: float | None = None) -> np.ndarray:
    """Read a file as float32 mono samples at `sample_rate_hz`, shape (samples,).

    Raises InputError naming the reason for empty, unreadable or non-finite audio.
    """
    return _concatenate(list(stream_audio(path, sample_rate_hz, offset_seconds, duration_seconds)))


def stream_audio(path: Path | str, sample_rate_hz: int = SAMPLE_RATE_HZ, offset_seconds: float = 0.0,
                 duration_seconds: float | None = None, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """The file as consecutive float32 mono blocks at `sample_rate_hz`, decoded and resampled
    block by block, so an hour of 48 kHz stereo never sits in memory at its native size."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such audio file: {path}")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)")
    count = 0
    try:
        for block in _decoded_blocks(path, sample_rate_hz, offset_seconds, duration_seconds, block_seconds):
            if not np.all(np.isfinite(block)):
                raise InputError("audio holds NaN or infinite samples")
            count += block.size
            yield block
    except InputError:
        raise
    except Exception as error:  # decoders raise many types; the user needs one reason
        raise InputError(f"cannot decode audio ({type(error).__name__}: {error})") from error
    if count == 0:
        raise InputError("audio has no samples")


def _decoded_blocks(path: Path, sample_rate_hz: int, offset_seconds: float, duration_seconds: float | None,
                    block_seconds: float) -> Iterator[np.ndarray]:
    try:
        with native_stderr_silenced():  # mpg123 writes "Note: Illegal Audio-MPEG-Header" on bad MP3
            sound = soundfile.SoundFile(path)
    except soundfile.LibsndfileError as error:
        reason = error.error_string
        if reason.startswith("File does not exist"):  # libsndfile's words for a file it cannot parse
            reason = "not a format it reads"
        yield resample(*_decode_otherwise(path, offset_seconds, duration_seconds, reason), sample_rate_hz)
        return
    with sound:
        rate = sound.samplerate
        sound.seek(min(int(round(offset_seconds * rate)), sound.frames))
        frames = -1 if duration_seconds is None else int(round(duration_seconds * rate))
        blocks = sound.blocks(blocksize=int(rate * block_seconds), frames=frames, dtype="float32", always_2d=True)
        if rate == sample_rate_hz:
            yield from (block.mean(axis=1) for block in blocks)
            return
        stream = soxr.ResampleStream(rate, sample_rate_hz, 1, dtype="float32", quality="HQ")
        for block in blocks:
            yield stream.resample_chunk(block.mean(axis=1))
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def _decode_otherwise(path: Path, offset_seconds: float, duration_seconds: float | None,
                      libsndfile_reason: str) -> tuple[np.ndarray, int]:
    """A format libsndfile does not know (e.g. m4a, or MP3 on an old libsndfile), through
    librosa's other decoders (audioread: ffmpeg when installed); InputError with both reasons."""
    import warnings

    import librosa

    try:
        with warnings.catch_warnings(), native_stderr_silenced():  # "PySoundFile failed...": said below
            warnings.simplefilter("ignore")
            data, rate = librosa.load(path, sr=None, mono=True, offset=offset_seconds, duration=duration_seconds,
                                      dtype=np.float32)
    except Exception as error:  # noqa: BLE001 - audioread's NoBackendError has no message
        import shutil

        other = " ".join(str(error).split()) or type(error).__name__
        if type(error).__name__ == "NoBackendError":
            other = "no other decoder reads it"
        if shutil.which("ffmpeg") is None:
            other += "; ffmpeg, which reads more formats, is not installed"
        raise InputError(f"cannot decode audio (libsndfile: {libsndfile_reason}; {other})") from error
    return data, int(rate)


def decode_audio(data: bytes, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Like load_audio, for the bytes of an audio file (e.g. read through a Beam filesystem)."""
    if not data:
        raise InputError("empty file (0 bytes)")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:  # its str() names the buffer object: keep the reason only
        raise InputError(f"cannot decode audio ({error.error_string})") from error
    except Exception as error:
        raise InputError(f"cannot decode audio ({type(error).__name__}: {error})") from error
    if samples.size == 0:
        raise InputError("audio has no samples")
    if not np.all(np.isfinite(samples)):
        raise InputError("audio holds NaN or infinite samples")
    return resample(samples.mean(axis=1), rate, sample_rate_hz)


def _concatenate(pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if from_hz == to_hz:
        return samples
    import librosa

    return librosa.resample(samples, orig_sr=from_hz, target_sr=to_hz, res_type="soxr_hq").astype(np.float32)


def audio_duration_seconds(path: Path | str) -> float:
    """Duration from the header, without decoding the samples."""
    try:
        with native_stderr_silenced():
            return float(soundfile.info(str(path)).duration)
    except soundfile.LibsndfileError:
        import warnings

        import librosa

        with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead."
            warnings.simplefilter("ignore")
            return float(librosa.get_duration(path=str(path)))


def _clipped(samples: np.ndarray) -> np.ndarray:
    # soundfile scales floats by 32768 both ways, so 16-bit audio round-trips exactly.
    return np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)


def write_wav(path: Path | str, samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """16-bit PCM WAV (the path should be a stage temporary: this write is not atomic)."""
    soundfile.write(str(path), _clipped(samples), sample_rate_hz, subtype="PCM_16", format="WAV")


def encode_wav(samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, _clipped(samples), sample_rate_hz, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)

