"""Audio in and out, in one place: any common format, rate and channel count in; 16 kHz mono out."""

from __future__ import annotations

import io
import os
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
#: Below this a header's sample rate describes no recording (a WAV claiming 1 Hz would be resampled
#: to 16,000 times its size).
MIN_SAMPLE_RATE_HZ = 1000
#: Float samples beyond this (+60 dBFS) are no recording either: 1e30 overflows every spectrum.
MAX_SAMPLE = 1000.0


def native_path(path: Path | str) -> bytes:
    """A path as the bytes the file system holds: libsndfile is given bytes, so that a name that
    is not UTF-8 (Python keeps its odd bytes as surrogates) opens like any other."""
    return os.fsencode(path)


def check_samples(block: np.ndarray) -> None:
    """InputError for decoded samples that are no recording: NaN, infinite or absurdly large."""
    if not np.all(np.isfinite(block)):
        raise InputError("audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(block), initial=0.0))
    if peak > MAX_SAMPLE:
        raise InputError(f"audio samples reach {peak:.3g}, far beyond full scale (1.0): not a recording")


def check_sample_rate(rate: int) -> None:
    if rate < MIN_SAMPLE_RATE_HZ:
        raise InputError(f"the header gives a sample rate of {rate} Hz: not a recording "
                         f"(at least {MIN_SAMPLE_RATE_HZ} Hz)")


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
            check_samples(block)
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
            sound = soundfile.SoundFile(native_path(path))
    except soundfile.LibsndfileError as error:
        reason = error.error_string
        if reason.startswith("File does not exist"):  # libsndfile's words for a file it cannot parse
            reason = "not a format it reads"
        yield resample(*_decode_otherwise(path, offset_seconds, duration_seconds, reason), sample_rate_hz)
        return
    with sound:
        rate = sound.samplerate
        check_sample_rate(rate)
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
    check_sample_rate(int(rate))
    return data, int(rate)


def decode_audio(data: bytes, sample_rate_hz: int = SAMPLE_RATE_HZ, max_seconds: float | None = None) -> np.ndarray:
    """Like load_audio, for the bytes of an audio file (e.g. read through a Beam filesystem);
    `max_seconds` refuses a longer recording from its header, before decoding it."""
    if not data:
        raise InputError("empty file (0 bytes)")
    try:
        header = soundfile.info(io.BytesIO(data))  # what decoding would cost, before it is paid
        check_sample_rate(header.samplerate)
        if max_seconds is not None:
            check_duration(header.frames / header.samplerate, max_seconds, header.frames, header.samplerate)
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except InputError:
        raise
    except soundfile.LibsndfileError as error:  # its str() names the buffer object: keep the reason only
        raise InputError(f"cannot decode audio ({error.error_string})") from error
    except Exception as error:
        raise InputError(f"cannot decode audio ({type(error).__name__}: {error})") from error
    if samples.size == 0:
        raise InputError("audio has no samples")
    check_samples(samples)
    return resample(samples.mean(axis=1), rate, sample_rate_hz)


def check_duration(seconds: float, max_seconds: float, frames: int | None = None, rate: int | None = None,
                   option: str | None = "--max-seconds") -> None:
    """InputError for a recording longer than `max_seconds` (from its header, before decoding);
    `option` is the one that raises the limit."""
    if seconds > max_seconds:
        header = f" (its header: {frames:,} frames at {rate:,} Hz)" if frames is not None and rate else ""
        length = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"
        raise InputError(f"the recording lasts {length}{header}, more than the {max_seconds:g} s allowed"
                         + (f" ({option})" if option else ""))


def check_audio_header(path: Path | str, min_seconds: float = MIN_AUDIO_SECONDS,
                       max_seconds: float | None = None, option: str | None = "--max-seconds") -> None:
    """InputError for a recording that its header shows is too short, too long or not audio at
    all, before a sample is decoded; a header that cannot be read is left to the decoder, which
    names the reason."""
    try:
        with native_stderr_silenced():
            header = soundfile.info(native_path(path))
        frames, rate = header.frames, header.samplerate
    except Exception:  # noqa: BLE001 - not a format libsndfile reads: the duration from other decoders
        try:
            seconds, frames, rate = audio_duration_seconds(path), None, None
        except Exception:  # noqa: BLE001
            return
    else:
        check_sample_rate(rate)
        seconds = frames / rate
    if seconds < min_seconds:
        raise InputError(f"audio too short ({seconds:.2f} s): at least {min_seconds} s is needed")
    if max_seconds is not None:
        check_duration(seconds, max_seconds, frames, rate, option)


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
            return float(soundfile.info(native_path(path)).duration)
    except soundfile.LibsndfileError:
        import warnings

        import librosa

        with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead."
            warnings.simplefilter("ignore")
            return float(librosa.get_duration(path=str(path)))


def _clipped(samples: np.ndarray) -> np.ndarray:
    # soundfile scales floats by 32768 both ways, so 16-bit audio round-trips exactly.
    samples = np.asarray(samples, dtype=np.float32)
    if not np.all(np.isfinite(samples)):  # clipped, NaN would be written as full scale
        raise ValueError("refusing to write audio that holds NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


def checked_output(samples: np.ndarray, what: str = "the rendered audio") -> np.ndarray:
    """Audio fit to leave a stage: InputError (the file's FAILED line) when it holds NaN or
    infinite samples or is silent; a peak beyond full scale is turned down to 0.99 (a plain gain,
    said in a warning), never clipped or written at full scale."""
    samples = np.asarray(samples, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise InputError(f"{what} holds {bad:,} NaN or infinite samples of {samples.size:,}: not written")
    peak = float(np.max(np.abs(samples), initial=0.0))
    if peak == 0.0:
        raise InputError(f"{what} is silent: not written")
    if peak > 1.0:
        import logging

        logging.getLogger(__name__).warning("%s peaked at %.2f, beyond full scale: turned down %.1f dB to a peak "
                                            "of 0.99", what, peak, 20 * np.log10(peak / 0.99))
        samples = samples * np.float32(0.99 / peak)
    return samples


def write_wav(path: Path | str, samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """16-bit PCM WAV (the path should be a stage temporary: this write is not atomic)."""
    soundfile.write(native_path(path), _clipped(samples), sample_rate_hz, subtype="PCM_16", format="WAV")


def encode_wav(samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, _clipped(samples), sample_rate_hz, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)

