"""The Salamander sampler and the recording-like augmentation: pitch, release, pedal, labels kept."""

from __future__ import annotations

import numpy as np
import pytest
from note_seq.protobuf import music_pb2

from maestro import codecs, recording, salamander
from maestro.augmentation import Augmentation, file_rng, render_midi
from tests.conftest import make_midi

RATE = 16_000
needs_samples = pytest.mark.skipif(not salamander.available(), reason="bash setup.sh fetches the samples")


def sequence(notes, pedal=()) -> music_pb2.NoteSequence:
    result = music_pb2.NoteSequence()
    for start, end, pitch, velocity in notes:
        result.notes.add(start_time=start, end_time=end, pitch=pitch, velocity=velocity)
    for time, value in pedal:
        result.control_changes.add(time=time, control_number=64, control_value=value)
    result.total_time = max(n[1] for n in notes)
    return result


def f0_cents(audio: np.ndarray, pitch: int) -> float:
    """Median YIN f0 of a stretch of audio, in cents from the equal-tempered pitch (A4 = 440 Hz)."""
    import librosa

    expected = librosa.midi_to_hz(pitch)
    f0 = librosa.yin(audio, fmin=expected / 2, fmax=expected * 2, sr=RATE, frame_length=2048)
    return float(1200 * np.log2(np.median(f0) / expected))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


@needs_samples
@pytest.mark.parametrize("pitch", [57, 58, 60, 61, 62, 66, 68, 69, 70])  # recorded and resampled keys
@pytest.mark.slow
def test_a_key_plays_at_its_pitch(pitch):
    audio = salamander.render_sequence(sequence([(0.0, 1.0, pitch, 80)]), RATE)
    assert abs(f0_cents(audio[int(0.1 * RATE):int(0.8 * RATE)], pitch)) < 5.0


@needs_samples
@pytest.mark.slow
def test_detuning_moves_the_pitch_by_the_cents_asked():
    plain = salamander.render_sequence(sequence([(0.0, 1.0, 64, 80)]), RATE)
    sharp = salamander.render_sequence(sequence([(0.0, 1.0, 64, 80)]), RATE, detune_cents=25.0)
    window = slice(int(0.1 * RATE), int(0.8 * RATE))
    assert f0_cents(sharp[window], 64) - f0_cents(plain[window], 64) == pytest.approx(25.0, abs=3.0)


@needs_samples
def test_note_off_releases_and_the_pedal_holds():
    released = salamander.render_sequence(sequence([(0.0, 0.5, 60, 80), (2.9, 3.0, 90, 1)]), RATE)
    held = salamander.render_sequence(sequence([(0.0, 0.5, 60, 80), (2.9, 3.0, 90, 1)], pedal=[(0.2, 127), (2.5, 0)]),
                                      RATE)
    late = slice(int(1.5 * RATE), int(2.0 * RATE))
    sounding = slice(int(0.2 * RATE), int(0.45 * RATE))
    assert rms(released[late]) < 0.01 * rms(released[sounding])  # the damper stopped the string
    assert rms(held[late]) > 20 * rms(released[late])  # the pedal kept it ringing
    assert rms(held[late]) > 0.03 * rms(held[sounding])  # a piano's natural decay, not a cut


@needs_samples
def test_velocity_sets_loudness_and_renders_start_at_the_onset():
    soft = salamander.render_sequence(sequence([(0.5, 1.5, 60, 30)]), RATE)
    loud = salamander.render_sequence(sequence([(0.5, 1.5, 60, 110)]), RATE)
    assert rms(loud) > 4 * rms(soft)
    assert np.abs(loud[: int(0.49 * RATE)]).max() == 0.0  # nothing before the note starts
    assert np.abs(loud[int(0.5 * RATE):int(0.53 * RATE)]).max() > 0.1 * np.abs(loud).max()  # attack within 30 ms


def centroid_hz(audio: np.ndarray) -> float:
    """Power-weighted: the partials count, the soft layers' faint recording hiss hardly does."""
    power = np.square(np.abs(np.fft.rfft(audio)))
    return float(np.sum(np.fft.rfftfreq(audio.size, 1.0 / RATE) * power) / np.sum(power))


@needs_samples
@pytest.mark.parametrize("pitch", [45, 60, 76])
@pytest.mark.slow
def test_harder_strikes_sound_brighter_through_the_velocity_layers(pitch):
    """A real hammer's colour: on a fixed key the spectral centroid rises with velocity (the layers),
    while loudness follows the one velocity curve (each layer's own level divided out)."""
    velocities = (30, 55, 80, 105, 127)
    renders = [salamander.render_sequence(sequence([(0.0, 1.0, pitch, v)]), RATE)[: RATE] for v in velocities]
    centroids = [centroid_hz(audio) for audio in renders]
    assert all(a < b for a, b in zip(centroids[:4], centroids[1:4])) and centroids[4] > centroids[2], centroids
    assert centroids[3] > 1.08 * centroids[0]
    for velocity, audio in zip(velocities, renders):  # the attack's level: the velocity curve within 3 dB
        level_db = 20 * np.log10(np.abs(audio).max() / np.abs(renders[2]).max())
        assert level_db == pytest.approx(20 * np.log10(salamander.velocity_gain(velocity)), abs=3.0)


def test_each_velocity_plays_the_layer_nearest_its_loudness():
    layers = [salamander.layer_for(v) for v in range(1, 128)]
    assert layers == sorted(layers) and set(layers) == set(salamander.LAYERS)
    assert salamander.layer_for(salamander.REFERENCE_VELOCITY) == salamander.REFERENCE_LAYER


@needs_samples
@pytest.mark.slow
def test_the_layer_levels_are_those_of_the_recordings():
    """LAYER_LEVELS_DB against three keys' recordings: each layer within the keys' spread of the table."""
    for layer in (1, 5, 13, 16):
        reference = salamander.REFERENCE_LAYER
        measured = [20 * np.log10(salamander._peak_level(p, layer) / salamander._peak_level(p, reference))
                    for p in (48, 60, 72)]
        assert np.mean(measured) == pytest.approx(salamander.LAYER_LEVELS_DB[layer - 1], abs=3.0)


@needs_samples
@pytest.mark.slow
def test_renders_are_deterministic_for_a_seed(tmp_path):
    midi = make_midi(tmp_path / "a.mid", [(0.1, 0.6, 60, 90), (0.4, 1.2, 67, 70), (0.8, 1.5, 72, 50)],
                     pedal=[(0.3, 127), (1.3, 0)])
    for seed in (0, 1):
        augmentation = Augmentation.draw(file_rng(seed, "a.mid"), ("salamander", "TimGM6mb"), augment=True)
        first = render_midi(midi, augmentation, RATE, file_rng(seed, "a.mid"))
        again = render_midi(midi, augmentation, RATE, file_rng(seed, "a.mid"))
        np.testing.assert_array_equal(first, again)


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


@needs_samples
def test_the_pedal_rings_the_strings_that_share_a_notes_partials():
    """Held with the pedal down, an E2 drives the free strings whose partials coincide with its own:
    the difference from the same render without pedal sounds peaks at the strings an octave and a
    twelfth above, with nothing between the note's partials, 30-40 dB down, and swells in."""
    notes, pedal = [(0.0, 0.5, 40, 80)], [(0.0, 127), (2.0, 0)]
    plain = salamander.render_sequence(sequence(notes, pedal), RATE, pedal_sounds=False)
    with_pedal = salamander.render_sequence(sequence(notes, pedal), RATE)
    resonance = (with_pedal - plain)[int(0.2 * RATE):int(1.9 * RATE)]  # before the dampers fall
    spectrum = np.abs(np.fft.rfft(resonance * np.hanning(resonance.size)))
    freqs = np.fft.rfftfreq(resonance.size, 1.0 / RATE)

    def peak_db(frequency: float) -> float:
        band = (freqs > 0.97 * frequency) & (freqs < 1.03 * frequency)
        return float(20 * np.log10(spectrum[band].max() / spectrum.max()))

    octave, twelfth = peak_db(hz(52)), peak_db(hz(59))  # the +12 and +19 strings' fundamentals
    assert octave > -3.0 and twelfth > -15.0
    for between in (hz(40) * 1.41, hz(40) * 2.5, hz(40) * 2.83, hz(40) / 2):  # no partial of the note there
        assert peak_db(between) < min(octave, twelfth) - 20.0
    # Five strings at -30 to -38 dB each come to about -27 dB together.
    assert -33.0 < 20 * np.log10(rms(resonance) / rms(plain[int(0.2 * RATE):int(1.9 * RATE)])) < -22.0
    onset = with_pedal - plain
    assert rms(onset[: int(0.01 * RATE)]) < 0.1 * rms(onset[int(0.05 * RATE):int(0.1 * RATE)])  # no strike


@needs_samples
def test_the_resonance_waits_for_the_pedal_and_stops_with_the_dampers(monkeypatch):
    monkeypatch.setattr(salamander, "PEDAL_RELEASE_GAIN", 0.0)  # the resonance alone

    def resonance_of(notes, pedal):
        return (salamander.render_sequence(sequence(notes, pedal), RATE)
                - salamander.render_sequence(sequence(notes, pedal), RATE, pedal_sounds=False))

    notes, pedal = [(0.0, 1.5, 40, 80)], [(0.6, 127), (1.2, 0)]  # the key is held before, across and after
    resonance = resonance_of(notes, pedal)
    assert np.abs(resonance[: int(0.6 * RATE)]).max() == 0.0
    from_the_strike = resonance_of(notes, [(0.0, 127), (1.2, 0)])  # a note 0.6 s old drives its strings less
    assert rms(resonance[int(0.6 * RATE):int(0.9 * RATE)]) < 0.7 * rms(from_the_strike[: int(0.3 * RATE)])
    under_pedal = rms(resonance[int(0.95 * RATE):int(1.15 * RATE)])
    assert under_pedal > 1e-4
    assert rms(resonance[int(1.25 * RATE):int(1.45 * RATE)]) < 0.6 * under_pedal  # the dampers fell at 1.2 s
    fade = 5 * salamander.damper_seconds(40)  # and the strings are quiet five time constants on
    assert np.abs(resonance[int((1.2 + fade) * RATE) + 2:]).max() == 0.0


@needs_samples
def test_without_the_pedal_the_render_is_as_before():
    notes = [(0.1, 0.6, 40, 90), (0.4, 1.2, 67, 70), (0.8, 1.5, 95, 50)]
    for pedal in ((), [(0.2, 40), (0.9, 0)], [(1.6, 127), (1.8, 0)]):  # none, half-way, down in silence
        np.testing.assert_array_equal(salamander.render_sequence(sequence(notes, pedal), RATE),
                                      salamander.render_sequence(sequence(notes, pedal), RATE, pedal_sounds=False))
    assert salamander.pedal_intervals(sequence(notes, [(0.2, 40), (0.5, 64), (0.7, 100), (0.9, 63)])) == [(0.5, 0.9)]
    assert salamander.pedal_intervals(sequence(notes, [(0.2, 127)])) == [(0.2, float("inf"))]


@needs_samples
def test_the_dampers_fall_at_pedal_up_and_not_before(monkeypatch):
    notes, pedal = [(0.0, 0.4, 48, 90), (0.1, 0.4, 55, 80)], [(0.05, 127), (1.5, 0)]
    full = salamander.render_sequence(sequence(notes, pedal), RATE)
    monkeypatch.setattr(salamander, "PEDAL_RELEASE_GAIN", 0.0)
    silent_dampers = salamander.render_sequence(sequence(notes, pedal), RATE)
    monkeypatch.setattr(salamander, "RELEASE_GAIN", 0.0)
    no_release_at_all = salamander.render_sequence(sequence(notes, pedal), RATE)
    fall = full - silent_dampers
    keys_own = silent_dampers - no_release_at_all  # the two keys' release noises, at their pedal-extended note-off
    assert np.abs(fall[: int(1.5 * RATE)]).max() == 0.0
    after = slice(int(1.5 * RATE), int(1.7 * RATE))
    assert 0.05 * rms(keys_own[after]) < rms(fall[after]) < rms(keys_own[after])  # heard, but quieter than the keys


@needs_samples
@pytest.mark.slow
def test_pedal_renders_are_deterministic():
    notes, pedal = [(0.1, 0.6, 45, 90), (0.3, 0.5, 70, 60), (0.9, 1.4, 88, 70)], [(0.2, 127), (1.0, 0), (1.1, 100)]
    first = salamander.render_sequence(sequence(notes, pedal), RATE, detune_cents=7.0)
    salamander.bank.cache_clear()
    again = salamander.render_sequence(sequence(notes, pedal), RATE, detune_cents=7.0)
    np.testing.assert_array_equal(first, again)


def onset_strength(audio: np.ndarray) -> np.ndarray:
    """Energy rise per 10 ms frame: where attacks are."""
    frames = audio[: audio.size // 160 * 160].reshape(-1, 160)
    energy = np.log(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-10)
    return np.maximum(np.diff(energy, prepend=energy[0]), 0.0)


@pytest.mark.parametrize("effect", ["room", "equalize", "compress", "noise", "mp3-32", "mp3-128", "opus-48",
                                    "source-8000", "source-11025", "second-mic", "clip"])
def test_every_recording_effect_keeps_length_and_onsets(effect):
    rng = np.random.default_rng(0)
    t = np.arange(3 * RATE) / RATE
    onsets = (0.5, 1.3, 2.2)
    dry = sum(np.where(t >= s, np.sin(2 * np.pi * 330 * t) * np.exp(-4 * (t - s)), 0.0) for s in onsets)
    dry = (0.2 * dry).astype(np.float32)
    if effect == "room":
        wet = recording.apply_room(dry, recording.room_impulse_response(1.4, 0.0, RATE, rng))
    elif effect == "equalize":
        wet = recording.equalize(dry, RATE, -2.0, ((300.0, 6.0, 0.5), (3000.0, -8.0, 1.0)))
    elif effect == "compress":
        wet = recording.compress(dry, RATE, -20.0, 4.0)
    elif effect == "noise":
        wet = recording.add_noise(dry, 30.0, "room", rng, RATE)
    elif effect.startswith(("mp3", "opus")):
        codec, kbps = effect.split("-")
        wet = codecs.lossy_codec(dry, RATE, codec, float(kbps))
        np.testing.assert_array_equal(wet, codecs.lossy_codec(dry, RATE, codec, float(kbps)))  # reproducible
    elif effect.startswith("source"):
        wet = codecs.band_limit(dry, RATE, int(effect.split("-")[1]))
    elif effect == "second-mic":
        wet = codecs.second_microphone(dry, RATE, 7.0, -3.0)
    else:
        wet = codecs.clip(dry, 6.0)
    assert wet.shape == dry.shape and wet.dtype == np.float32
    strength = onset_strength(wet)
    near = np.zeros(strength.size, bool)
    for onset in onsets:  # each attack's sharpest rise stays within two 10 ms frames of it
        frame = int(round(onset * 100))
        near[frame - 10:frame + 10] = True
        assert abs(frame - 10 + int(np.argmax(strength[frame - 10:frame + 10])) - frame) <= 2
    assert strength[~near].max() < min(strength[int(round(o * 100)) - 2:int(round(o * 100)) + 3].max() for o in onsets)


def test_room_has_its_reverberation_time_and_direct_to_reverb_ratio():
    rng = np.random.default_rng(1)
    impulse = recording.room_impulse_response(1.0, 6.0, RATE, rng).astype(np.float64)
    assert impulse[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(np.square(impulse[1:]))) == pytest.approx(6.0, abs=0.01)
    # Schroeder backward integration: the decay from -5 to -25 dB, extrapolated to 60 dB.
    decay = np.cumsum(np.square(impulse[1:])[::-1])[::-1]
    decay_db = 10 * np.log10(decay / decay[0])
    t5, t25 = np.argmax(decay_db < -5) / RATE, np.argmax(decay_db < -25) / RATE
    assert 3 * (t25 - t5) == pytest.approx(1.0, rel=0.25)


def test_equalize_is_zero_phase_and_noise_hits_its_snr():
    impulse = np.zeros(RATE, np.float32)
    impulse[RATE // 2] = 1.0
    coloured = recording.equalize(impulse, RATE, 1.0, ((1000.0, 6.0, 1.0),))
    assert int(np.argmax(np.abs(coloured))) == RATE // 2  # no delay
    signal = (0.3 * np.sin(np.linspace(0, 4000, 2 * RATE))).astype(np.float32)
    for color in ("white", "pink", "brown", "room"):
        noisy = recording.add_noise(signal, 25.0, color, np.random.default_rng(2), RATE)
        assert 20 * np.log10(rms(signal) / rms(noisy - signal)) == pytest.approx(25.0, abs=0.1)


def test_draws_cover_every_effect_and_plain_splits_stay_plain():
    draws = [Augmentation.draw(file_rng(3, f"f{i}"), ("FluidR3_GM", "TimGM6mb", "salamander"), augment=True)
             for i in range(60)]
    assert {d.soundfont for d in draws} == {"FluidR3_GM", "TimGM6mb", "salamander"}
    rooms = [d.room for d in draws if d.room]
    assert min(r[0] for r in rooms) >= 0.2 and max(r[0] for r in rooms) <= 2.0
    assert all(-3.0 <= r[1] <= 12.0 for r in rooms)
    assert all(abs(d.detune_cents) <= 30 for d in draws) and any(d.detune_cents for d in draws)
    assert any(d.compression for d in draws) and any(d.peaks for d in draws)
    assert any(d.velocity_exponent != 1 for d in draws)
    assert not any(d.chorus for d in draws if d.soundfont == "salamander")
    assert Augmentation.draw(file_rng(3, "x"), ("salamander",), augment=False) == Augmentation("salamander")


def test_the_codecs_bit_rate_is_what_was_asked():
    """A lower bit rate costs more fidelity, and no codec passes the signal through untouched."""
    rng = np.random.default_rng(1)
    t = np.arange(2 * RATE) / RATE
    dry = (0.1 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)

    def error(codec, kbps):
        return rms(codecs.lossy_codec(dry, RATE, codec, kbps) - dry) / rms(dry)

    for codec in ("mp3", "opus"):
        assert 0.0 < error(codec, 128) < error(codec, 32) < 1.0


def test_a_source_rate_removes_what_lies_above_its_nyquist_frequency():
    t = np.arange(RATE) / RATE
    dry = (0.1 * np.sin(2 * np.pi * 300 * t) + 0.1 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)
    wet = codecs.band_limit(dry, RATE, 8_000)
    spectrum = np.abs(np.fft.rfft(wet))
    assert spectrum[5000] < 0.01 * spectrum[300] and spectrum[300] > 0.9 * np.abs(np.fft.rfft(dry))[300]


def test_the_recording_chain_is_drawn_apart_from_the_earlier_effects(monkeypatch):
    """The chain's draws leave the file's generator where it was, so the room, noise and every earlier
    choice of a render are what they were before the chain existed; some files get each part of it."""
    import maestro.augmentation as augmentation

    with_chain = file_rng(0, "a.mid")
    drawn = Augmentation.draw(with_chain, ("salamander", "TimGM6mb"), augment=True)
    monkeypatch.setattr(augmentation, "_draw_chain", lambda rng: {})
    without = file_rng(0, "a.mid")
    earlier = Augmentation.draw(without, ("salamander", "TimGM6mb"), augment=True)
    assert with_chain.random() == without.random()
    assert drawn.room == earlier.room and drawn.noise_snr_db == earlier.noise_snr_db
    monkeypatch.undo()
    draws = [Augmentation.draw(file_rng(0, f"{i}.mid"), ("salamander",), augment=True) for i in range(200)]
    assert sum(d.codec is not None for d in draws) > 40 and any(d.source_rate_hz for d in draws)
    assert any(d.second_mic for d in draws) and any(d.clip_drive_db for d in draws)
    plain = Augmentation.draw(file_rng(0, "0.mid"), ("salamander",), augment=False)
    assert plain.codec is None and plain.second_mic is None
