"""Shared audio and MIDI I/O: formats in, 16 kHz mono out; MIDI round trips; pedal; crops."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from stages.contract import InputError
from stages.io.audio import decode_wav, encode_wav, load_audio
from stages.io.midi import (
    apply_sustain,
    crop,
    notes_from_sequence,
    read_note_sequence,
    sequence_from_notes,
    sounding_intervals,
    write_midi,
)
from tests.conftest import make_midi


def tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype,suffix", [("WAV", "PCM_24", ".wav"), ("FLAC", "PCM_16", ".flac"),
                                                 ("MP3", "MPEG_LAYER_III", ".mp3")])
def test_any_rate_channels_and_format_load_as_16k_mono(tmp_path, fmt, subtype, suffix):
    left, right = tone(44100, 1.5, 440.0), tone(44100, 1.5, 440.0)
    path = tmp_path / f"a{suffix}"
    soundfile.write(path, np.stack([left, right], axis=1), 44100, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 24000) <= 1200  # mp3 pads a frame or two
    # The tone survives: its spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio[2000:18000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2


def test_offset_and_duration_read_a_window(tmp_path):
    samples = np.linspace(-0.5, 0.5, 48000, dtype=np.float32)
    soundfile.write(tmp_path / "ramp.wav", samples, 16000, subtype="FLOAT")
    window = load_audio(tmp_path / "ramp.wav", offset_seconds=1.0, duration_seconds=0.5)
    np.testing.assert_allclose(window, samples[16000:24000])


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"RIFF\x00\x00garbage" * 10, "cannot decode")])
def test_bad_audio_names_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        load_audio(path)


def test_wav_encoding_round_trips_16_bit_audio_exactly():
    pcm = np.random.default_rng(0).integers(-32768, 32768, 5000).astype(np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    decoded, rate = decode_wav(encode_wav(audio, 16000))
    assert rate == 16000
    np.testing.assert_array_equal(decoded, audio)


def test_midi_round_trip_keeps_notes(tmp_path):
    notes = [(0.1, 0.5, 60, 80), (0.3, 1.25, 64, 30), (1.0, 1.5, 108, 127), (1.0, 2.0, 21, 1)]
    sequence = read_note_sequence(make_midi(tmp_path / "a.mid", notes))
    array = notes_from_sequence(sequence)
    write_midi(sequence_from_notes(array), tmp_path / "b.mid")
    again = notes_from_sequence(read_note_sequence(tmp_path / "b.mid"))
    np.testing.assert_array_equal(again[["pitch", "velocity"]], array[["pitch", "velocity"]])
    np.testing.assert_allclose(again["onset_s"], array["onset_s"], atol=0.003)
    np.testing.assert_allclose(again["offset_s"], array["offset_s"], atol=0.003)
    assert array["pitch"].tolist() == [60, 64, 21, 108]  # sorted by onset, then pitch


def test_sustain_pedal_extends_notes_released_while_down(tmp_path):
    notes = [(0.0, 0.5, 60, 80), (1.0, 1.2, 62, 80), (3.0, 3.5, 64, 80)]
    pedal = [(0.2, 127), (2.0, 0)]  # down over the first two notes' releases
    sequence = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", notes, pedal)))
    offsets = {n.pitch: n.end_time for n in sequence.notes}
    assert offsets[60] == pytest.approx(2.0, abs=0.01)  # released under the pedal: held until it lifts
    assert offsets[62] == pytest.approx(2.0, abs=0.01)
    assert offsets[64] == pytest.approx(3.5, abs=0.01)  # pedal up: unchanged


def test_crop_keeps_true_onsets_and_cuts_offsets(tmp_path):
    notes = [(0.0, 3.0, 60, 80), (1.5, 1.9, 62, 70), (2.5, 4.0, 64, 60), (4.5, 5.0, 65, 50)]
    sequence = read_note_sequence(make_midi(tmp_path / "c.mid", notes))
    part = crop(sequence, 1.0, 3.0)
    got = sorted((round(n.start_time, 3), round(n.end_time, 3), n.pitch) for n in part.notes)
    assert got == [(-1.0, 2.0, 60), (0.5, 0.9, 62), (1.5, 2.0, 64)]
    assert part.total_time == pytest.approx(2.0)


def test_sounding_intervals_merge_overlaps(tmp_path):
    notes = [(0.0, 1.0, 60, 80), (0.5, 2.0, 62, 80), (3.0, 4.0, 64, 80)]
    sequence = read_note_sequence(make_midi(tmp_path / "s.mid", notes))
    assert [(round(a, 3), round(b, 3)) for a, b in sounding_intervals(sequence)] == [(0.0, 2.0), (3.0, 4.0)]


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"MThd\x00\x00\x00\x06garbage", "not a readable MIDI")])
def test_bad_midi_names_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        read_note_sequence(path)
