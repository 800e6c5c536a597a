"""The checkpoints shipped in the repository: each is the file its record describes, and each does
its job measurably better than an untrained model would, on the bundled example."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile

from stages.contract import content_id
from stages.io.midi import apply_sustain, crop, notes_from_sequence, read_note_sequence

pytestmark = pytest.mark.slow  # the shipped checkpoints, on the bundled example

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_AUDIO = REPO / "examples" / "recordings" / "bach_prelude_bwv846_bars1-8.wav"
EXAMPLE_MIDI = REPO / "examples" / "midi" / "bach_prelude_bwv846_bars1-8.mid"
SHIPPED = [REPO / "transcribe" / "checkpoints" / "default.keras",
           REPO / "compose" / "checkpoints" / "default.keras",
           REPO / "compose" / "checkpoints" / "conditioned.keras",
           REPO / "compose" / "checkpoints" / "baseline-absolute.keras",
           REPO / "compose" / "checkpoints" / "baseline-lstm.keras",
           REPO / "synthesize" / "checkpoints" / "default.keras"]


def example_excerpt(seconds: float):
    """(audio (n,), sustain-extended NoteSequence) of the example's first `seconds`."""
    audio, rate = soundfile.read(EXAMPLE_AUDIO, dtype="float32")
    assert rate == 16_000
    sequence = crop(apply_sustain(read_note_sequence(EXAMPLE_MIDI)), 0.0, seconds)
    return audio[: int(seconds * rate)], sequence


@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_checkpoint_matches_its_record(checkpoint):
    import compose.model  # noqa: F401  (registers the Keras classes of every package)
    import synthesize.model  # noqa: F401
    import transcribe.onsets_frames.model  # noqa: F401

    record = json.loads(checkpoint.with_suffix(".json").read_text())
    assert record["sha256_16"] == content_id(checkpoint)
    model = keras.saving.load_model(checkpoint, compile=False)
    assert model.count_params() == record["parameters"]
    assert model.config.name == record["config"]


def test_shipped_rescorer_is_its_record_and_belongs_to_the_shipped_transcriber():
    import transcribe.rescorer.rescore  # noqa: F401

    rescorer_file = REPO / "transcribe" / "checkpoints" / "default.rescorer.keras"
    record = json.loads(rescorer_file.with_suffix(".json").read_text())
    assert record["sha256_16"] == content_id(rescorer_file)
    assert record["for_checkpoint_sha256_16"] == content_id(REPO / "transcribe" / "checkpoints" / "default.keras")
    rescorer = keras.saving.load_model(rescorer_file, compile=False)
    assert (rescorer.candidate_threshold, rescorer.accept_threshold) == (record["candidate_threshold"],
                                                                          record["accept_threshold"])
    assert rescorer.note_ends and (rescorer.sounding_threshold, rescorer.quiet_run) == (
        record["note_ends"]["sounding_threshold"], record["note_ends"]["quiet_run"])
    # The transcriber finds it beside its checkpoint, named by a Path or by a string.
    from transcribe.transcriber import load_rescorer

    for checkpoint in (REPO / "transcribe" / "checkpoints" / "default.keras",
                       str(REPO / "transcribe" / "checkpoints" / "default.keras")):
        assert load_rescorer(checkpoint).accept_threshold == record["accept_threshold"]


def test_shipped_rescorer_rejects_a_weak_onset_an_octave_above_a_struck_note():
    from transcribe.rescorer.rescore import note_probabilities
    from transcribe.transcriber import load_rescorer

    c4, c5 = 60 - 21, 72 - 21

    def heads(with_c4: bool):
        probs = {name: np.zeros((40, 88), np.float32) for name in ("onsets", "offsets", "frames", "velocities")}
        probs["onsets"][10, c5], probs["frames"][10:25, c5], probs["velocities"][10, c5] = 0.2, 0.3, 0.5
        if with_c4:
            probs["onsets"][10, c4], probs["frames"][10:25, c4], probs["velocities"][10, c4] = 0.95, 0.9, 0.6
        return probs

    rescorer = load_rescorer()

    def c5_probability(with_c4):
        runs, probabilities = note_probabilities(rescorer, heads(with_c4))
        return float(probabilities[list(runs[:, 0]).index(c5)])

    # Alone, the weak onset is a note; above a struck C4 it is C4's second partial.
    assert c5_probability(with_c4=False) > rescorer.accept_threshold > c5_probability(with_c4=True)


def test_shipped_note_end_network_ends_a_stopped_note_and_holds_a_fading_one():
    from transcribe.config import TranscriberConfig
    from transcribe.transcriber import decode_probabilities, load_rescorer

    c4, config = 60 - 21, TranscriberConfig.default()

    def end_frame(tail: str) -> int:
        probs = {name: np.zeros((200, 88), np.float32) for name in ("onsets", "offsets", "frames", "velocities")}
        probs["onsets"][10, c4], probs["velocities"][10, c4], probs["frames"][10:30, c4] = 0.95, 0.6, 0.9
        if tail == "stopped":  # the frame head falls silent as the offset head fires
            probs["offsets"][29:31, c4] = 0.9
        else:  # the frame head fades over 3 s, as a note held by the pedal does
            probs["frames"][30:120, c4] = np.linspace(0.4, 0.05, 90)
        (note,) = decode_probabilities(probs, config, load_rescorer())
        return round(note["offset_s"] * config.frames_per_second)

    assert 28 <= end_frame("stopped") <= 31
    assert end_frame("fading") > 60


def test_shipped_transcriber_transcribes_the_example():
    from transcribe.metrics import transcription_metrics
    from transcribe.transcriber import Transcriber

    audio, sequence = example_excerpt(10.0)
    metrics = transcription_metrics(notes_from_sequence(sequence), Transcriber.load().transcribe(audio))
    assert metrics["note/f1"] >= 0.8, metrics


def test_shipped_composer_predicts_the_example_far_better_than_chance_and_the_lstm():
    import compose.model  # noqa: F401
    from compose.data import load_pieces
    from compose.evaluate import nll_per_event
    from compose.tokens import VOCAB_SIZE

    pieces = load_pieces(EXAMPLE_MIDI.parent)
    checkpoints = REPO / "compose" / "checkpoints"
    nll = {name: nll_per_event(keras.saving.load_model(checkpoints / f"{name}.keras", compile=False), pieces)
           ["nll_per_event"] for name in ("default", "baseline-lstm")}
    assert nll["default"] < math.log(VOCAB_SIZE) - 2.5  # uniform guessing: 5.97 nats per event
    assert nll["default"] < nll["baseline-lstm"]


def test_shipped_conditioned_composer_steers_and_is_what_steering_uses():
    from compose.composer import CONDITIONED_CHECKPOINT, DEFAULT_CHECKPOINT, Composer, shipped_checkpoint

    assert Composer(notes_per_second=20).checkpoint == CONDITIONED_CHECKPOINT
    assert Composer(composer="Bach").checkpoint == CONDITIONED_CHECKPOINT
    assert Composer().checkpoint == DEFAULT_CHECKPOINT
    assert shipped_checkpoint(from_nothing=True) == CONDITIONED_CHECKPOINT
    notes = {}
    for density in (6.0, 20.0):  # bands "under 8" and "over 18.5"
        composer = Composer(seconds=10.0, notes_per_second=density)
        notes[density] = sum(len(composer.continue_sequence(None, seed_offset=seed).notes) for seed in range(6))
    assert notes[20.0] > 1.25 * notes[6.0]  # measured: 866 against 552 notes in 60 s


def test_shipped_synthesizer_predicts_the_example_far_better_than_an_untrained_one():
    # Teacher-forced loss (nats per sample) on four 1 s crops of the example recording. This
    # checks that the weights are trained (shipped 7.19, untrained 9.29) and that they use the
    # notes where FluidSynth plays them (7.48 with the exact MIDI times, whose excitation phases
    # are off); whether the WaveNet follows its MIDI is measured by
    # benchmarks/synthesize_quality.py (round-trip note F1).
    from synthesize.conditioning import snap_to_render_grid
    from synthesize.data import Recording, crop_inputs
    from synthesize.model import build_model, compile_model

    loaded = keras.saving.load_model(REPO / "synthesize" / "checkpoints" / "default.keras", compile=False)
    if loaded.config.architecture == "parallel":
        pytest.skip("the shipped synthesizer is the parallel generator (the next test)")
    shipped = compile_model(loaded)
    keras.utils.set_random_seed(0)
    untrained = compile_model(build_model(shipped.config))
    exact = notes_from_sequence(apply_sustain(read_note_sequence(EXAMPLE_MIDI)))
    snapped = snap_to_render_grid(exact, shipped.config.render_grid_samples, shipped.config.sample_rate_hz)
    margin = sum(shipped.config.context_dilations)

    def batch(notes):
        recording = Recording(EXAMPLE_AUDIO, notes, soundfile.info(EXAMPLE_AUDIO).frames)
        crops = [crop_inputs(recording, 16_000 * start, 16_000, shipped.config, margin) for start in (1, 5, 9, 13)]
        return {key: np.stack([c[0][key] for c in crops]) for key in crops[0][0]}, np.stack([c[1] for c in crops])

    loss = {name: model.evaluate(*batch(notes), verbose=0) for name, model, notes in
            (("shipped", shipped, snapped), ("untrained", untrained, snapped), ("exact times", shipped, exact))}
    assert loss["shipped"] < loss["untrained"] - 2.0, loss
    assert loss["shipped"] < loss["exact times"] - 0.1, loss


def test_shipped_parallel_synthesizer_comes_far_closer_to_the_grand_than_an_untrained_one(tmp_path):
    # Multi-resolution STFT loss on four 1 s crops of the Salamander grand's render of the example
    # (the shipped generator's training timbre): shipped 3.45, untrained 5.47, and 4.02 with the
    # notes played 0.25 s late (the generator follows its MIDI).
    from maestro import salamander
    from stages.io.audio import write_wav
    from synthesize.data import Recording, crop_inputs
    from synthesize.model import build_model
    from synthesize.parallel import compile_parallel

    loaded = keras.saving.load_model(REPO / "synthesize" / "checkpoints" / "default.keras", compile=False)
    if loaded.config.architecture != "parallel":
        pytest.skip("the shipped synthesizer is autoregressive (the test before)")
    if not salamander.available():
        pytest.skip("the Salamander samples are not installed (setup.sh)")
    sequence = read_note_sequence(EXAMPLE_MIDI)
    audio = salamander.render_sequence(sequence, 16_000)
    write_wav(tmp_path / "grand.wav", audio, 16_000)
    shipped = compile_parallel(loaded)
    keras.utils.set_random_seed(0)
    untrained = compile_parallel(build_model(shipped.config))
    played = notes_from_sequence(apply_sustain(sequence))
    late = played.copy()
    late["onset_s"] += 0.25
    late["offset_s"] += 0.25
    margin = sum(shipped.config.context_dilations)

    def batch(notes):
        recording = Recording(tmp_path / "grand.wav", notes, len(audio))
        crops = [crop_inputs(recording, 16_000 * start, 16_000, shipped.config, margin, np.random.default_rng(start))
                 for start in (1, 5, 9, 13)]
        return {key: np.stack([c[0][key] for c in crops]) for key in crops[0][0]}, np.stack([c[1] for c in crops])

    loss = {name: model.evaluate(*batch(notes), verbose=0) for name, model, notes in
            (("shipped", shipped, played), ("untrained", untrained, played), ("late", shipped, late))}
    assert loss["shipped"] < loss["untrained"] - 1.5, loss
    assert loss["shipped"] < loss["late"] - 0.3, loss


def test_shipped_synthesizer_renders_midi_the_transcriber_recognizes():
    # The round trip of benchmarks/synthesize_quality.py on 4 s of the example: render the MIDI
    # with the WaveNet, transcribe it, and find the notes again. The shipped WaveNet (round trip
    # 0.92 on the test excerpts) plays this arpeggio at the right times: the shipped transcriber
    # finds 14 of the 16 onset times (onset F1 0.93), frame F1 0.72 and 12 of the 16 notes at the
    # right pitch, with 10 spurious ones (note precision 0.55). Checkpoints before reached onset
    # F1 1.0, frame F1 0.74 and 14 notes; 1.0, 0.63 and 8; 0.74, 0.41 and 3; WaveNets that do not
    # follow their MIDI (the roll-only one shipped first) score about 0, white noise onset F1 0.22
    # and no notes right, FluidSynth about 1.
    import mir_eval

    from synthesize.stage import Synthesizer
    from transcribe.metrics import transcription_metrics
    from transcribe.transcriber import Transcriber

    _, sequence = example_excerpt(4.0)
    audio = Synthesizer.load().render(sequence)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    heard, played = Transcriber.load().transcribe(audio), notes_from_sequence(sequence)
    onset_f1 = mir_eval.onset.f_measure(np.unique(played["onset_s"]), np.unique(heard["onset_s"]), window=0.05)[0]
    metrics = transcription_metrics(played, heard)
    assert onset_f1 >= 0.8 and metrics["note/recall"] >= 0.7 and metrics["frame/f1"] >= 0.6, (onset_f1, metrics)


@pytest.mark.parametrize("pitch", [48, 60, 72])
def test_shipped_synthesizer_lets_a_held_note_decay(pitch):
    # A piano key held 3 s only fades after its attack: a generator whose held notes swell or flutter
    # makes the transcriber hear the key struck again. Each 0.5 s window's RMS is at most 1 dB above
    # the one before (the shipped generator: every step a fall, 0.0 to 8 dB).
    from note_seq.protobuf import music_pb2

    from synthesize.stage import Synthesizer

    sequence = music_pb2.NoteSequence()
    sequence.notes.add(start_time=0.1, end_time=3.1, pitch=pitch, velocity=80)
    sequence.total_time = 3.5
    audio = Synthesizer.load().render(sequence)
    rate = 16_000
    levels_db = [20 * np.log10(np.sqrt(np.mean(np.square(audio[int((0.1 + i / 2) * rate):int((0.6 + i / 2) * rate)],
                                                         dtype=np.float64))) + 1e-12) for i in range(6)]
    assert max(np.diff(levels_db)) <= 1.0, np.round(levels_db, 1)
