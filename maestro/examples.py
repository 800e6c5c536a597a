"""The `tf.train.Example` records that preprocessing writes and training reads.

Transcription example (one span of a recording, at most ~20 s):
  id (bytes), split (bytes), audio (bytes: 16-bit PCM WAV, 16 kHz mono),
  sequence (bytes: serialized NoteSequence of the span, sustain applied, times from the span's
  start; a note already sounding at the start keeps its negative onset),
  start_seconds / end_seconds (float: the span in the recording), velocity_range (int64: min, max).
Composition example (one whole performance):
  id, split, composer, title (bytes), sequence (bytes: the performance's NoteSequence as in its
  MIDI file, pedal as control changes), year (int64).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tensorflow.core.example import example_pb2

from stages.io.audio import decode_wav, encode_wav
from stages.io.midi import NoteSequence


@dataclasses.dataclass
class TranscriptionExample:
    id: str
    split: str
    audio: np.ndarray
    sample_rate_hz: int
    sequence: NoteSequence
    start_seconds: float
    end_seconds: float


@dataclasses.dataclass
class CompositionExample:
    id: str
    split: str
    composer: str
    title: str
    year: int
    sequence: NoteSequence


def _bytes(example, name: str, value: bytes) -> None:
    example.features.feature[name].bytes_list.value.append(value)


def _floats(example, name: str, *values: float) -> None:
    example.features.feature[name].float_list.value.extend(values)


def _ints(example, name: str, *values: int) -> None:
    example.features.feature[name].int64_list.value.extend(values)


def encode_transcription(item: TranscriptionExample) -> bytes:
    example = example_pb2.Example()
    _bytes(example, "id", item.id.encode())
    _bytes(example, "split", item.split.encode())
    _bytes(example, "audio", encode_wav(item.audio, item.sample_rate_hz))
    _bytes(example, "sequence", item.sequence.SerializeToString(deterministic=True))
    _floats(example, "start_seconds", item.start_seconds)
    _floats(example, "end_seconds", item.end_seconds)
    velocities = [note.velocity for note in item.sequence.notes] or [0]
    _ints(example, "velocity_range", min(velocities), max(velocities))
    return example.SerializeToString(deterministic=True)


def decode_transcription(data: bytes) -> TranscriptionExample:
    features = example_pb2.Example.FromString(data).features.feature
    audio, rate = decode_wav(features["audio"].bytes_list.value[0])
    return TranscriptionExample(
        id=features["id"].bytes_list.value[0].decode(),
        split=features["split"].bytes_list.value[0].decode(),
        audio=audio,
        sample_rate_hz=rate,
        sequence=NoteSequence.FromString(features["sequence"].bytes_list.value[0]),
        start_seconds=features["start_seconds"].float_list.value[0],
        end_seconds=features["end_seconds"].float_list.value[0],
    )


def encode_composition(item: CompositionExample) -> bytes:
    example = example_pb2.Example()
    for name in ("id", "split", "composer", "title"):
        _bytes(example, name, getattr(item, name).encode())
    _bytes(example, "sequence", item.sequence.SerializeToString(deterministic=True))
    _ints(example, "year", item.year)
    return example.SerializeToString(deterministic=True)


def decode_composition(data: bytes) -> CompositionExample:
    features = example_pb2.Example.FromString(data).features.feature
    text = {name: features[name].bytes_list.value[0].decode() for name in ("id", "split", "composer", "title")}
    return CompositionExample(
        **text,
        year=int(features["year"].int64_list.value[0]),
        sequence=NoteSequence.FromString(features["sequence"].bytes_list.value[0]),
    )
