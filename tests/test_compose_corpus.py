"""Training crops of whole encoded pieces, token-level transposition and time stretch, conditioned
crops, token files, and training from them on machines without note-seq."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from compose import vocabulary
from compose.config import ComposerConfig
from compose.corpus import TokenCrops, TokenFile, load_token_file, stretch, token_file_bytes, transpose
from compose.data import encode_pieces, piece_tokens
from compose.model import build_model
from compose.tokens import ENCODING, augment, describe
from stages.io.midi import apply_sustain, read_note_sequence
from tests.conftest import make_midi, phrase

REPO = Path(__file__).resolve().parents[1]


def chords(seed: int, seconds: float) -> list[tuple[float, float, int, int]]:
    """Overlapping three-note chords: simultaneous note-ons and note-offs, whose order matters."""
    return [(s, e, p + offset, v) for s, e, p, v in phrase(seed, seconds) for offset in (0, 4, 7)]


def test_vocabulary_is_note_seq_performance_encoding_shifted_by_the_special_tokens():
    assert vocabulary.VOCAB_SIZE == vocabulary.SPECIAL_TOKENS + ENCODING.num_classes == 390
    assert describe(vocabulary.NOTE_ON + 60) == "note-on 60"
    assert describe(vocabulary.NOTE_OFF + 21) == "note-off 21"
    assert describe(vocabulary.TIME_SHIFT) == "shift 1" and describe(vocabulary.VELOCITY - 1) == "shift 100"
    assert describe(vocabulary.VELOCITY) == "velocity 1" and describe(vocabulary.VOCAB_SIZE - 1) == "velocity 32"


@pytest.mark.parametrize("semitones", [-3, -1, 0, 2, 3])
def test_transposing_tokens_is_transposing_the_music_then_encoding(tmp_path, semitones):
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "c.mid", chords(3, 8.0))))
    np.testing.assert_array_equal(transpose(piece_tokens(piece), semitones), piece_tokens(augment(piece, semitones)))


def test_transposition_drops_both_ends_of_notes_leaving_the_piano(tmp_path):
    # The top and bottom notes share their times and velocity with kept ones, so note-seq's
    # encoding of the transposed music has no time shifts to merge (where a dropped note's event
    # stood alone, the tokens keep two shifts where note-seq writes one: the same music).
    notes = [(0.0, 1.0, 60, 80), (0.0, 1.0, 108, 80), (1.5, 2.5, 21, 50), (1.5, 2.5, 64, 50)]
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "edge.mid", notes)))
    for semitones in (3, -3):
        moved = transpose(piece_tokens(piece), semitones)
        np.testing.assert_array_equal(moved, piece_tokens(augment(piece, semitones)))
        assert len(moved) == len(piece_tokens(piece)) - 2


def test_crops_are_stretches_of_transposed_pieces_shifted_by_one(tmp_path):
    pieces = [piece_tokens(apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", chords(i, 12.0)))))
              for i in range(3)]
    crops = TokenCrops(pieces, batch_size=16, length=64, steps=1, seed=1, stretches=(1.0,))  # stretching: below
    inputs, targets = crops[0]
    assert inputs.shape == targets.shape == (16, 64) and inputs.dtype == np.int32
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    assert (inputs >= 0).all() and (inputs < vocabulary.VOCAB_SIZE).all()
    versions = [transpose(p, s).tolist() for p in pieces for s in range(-3, 4)]
    for row in np.concatenate([inputs, targets[:, -1:]], axis=1):
        used = row[row != vocabulary.PAD].tolist()
        assert any(any(v[i: i + len(used)] == used for i in range(len(v) - len(used) + 1)) for v in versions)


def test_a_crop_past_the_end_of_a_short_piece_is_padded(tmp_path):
    piece = piece_tokens(apply_sustain(read_note_sequence(make_midi(tmp_path / "s.mid", [(0.0, 0.5, 60, 80)]))))
    inputs, targets = TokenCrops([piece], batch_size=2, length=32, steps=1, augmentation=False)[0]
    np.testing.assert_array_equal(inputs[0, : len(piece)], piece)
    assert (inputs[0, len(piece):] == vocabulary.PAD).all() and targets[0, len(piece) - 2] == vocabulary.END


def test_pieces_are_encoded_once_per_stretch(tmp_path):
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", phrase(1, 6.0))))
    slow, same, fast = encode_pieces([piece], (1.05, 1.0, 0.95))
    np.testing.assert_array_equal(same, piece_tokens(piece))
    assert describe(int(slow[-1])) == describe(int(fast[-1])) == "END"
    shift = (vocabulary.TIME_SHIFT <= same) & (same < vocabulary.VELOCITY)
    def total(t):
        return int((t[(t >= vocabulary.TIME_SHIFT) & (t < vocabulary.VELOCITY)] - vocabulary.TIME_SHIFT + 1).sum())

    assert total(fast) < total(same) < total(slow) and shift.any()


@pytest.mark.parametrize("name", ["pieces.npz", "pieces.npz.xz"])
def test_token_files_round_trip(tmp_path, name):
    import lzma

    pieces = [np.array([5, 6, 1]), np.array([7, 1]), np.array([300, 389, 2, 1])]
    data = token_file_bytes(pieces, [1.0, 1.0, 0.95])
    (tmp_path / name).write_bytes(lzma.compress(data) if name.endswith(".xz") else data)
    loaded = load_token_file(tmp_path / name)
    assert [p.tolist() for p in loaded] == [p.tolist() for p in pieces]


def token_files(tmp_path, count: int = 4, seconds: float = 10.0) -> list[np.ndarray]:
    pieces = [piece_tokens(apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", chords(i, seconds)))))
              for i in range(count)]
    composers = ["Chopin", "Bach", ""][: count - 1]
    (tmp_path / "train.npz").write_bytes(token_file_bytes(pieces[:-1], [1.0] * (count - 1), composers))
    (tmp_path / "validation.npz").write_bytes(token_file_bytes(pieces[-1:], [1.0]))
    return pieces


@pytest.mark.slow
def test_training_from_a_token_file_on_a_time_budget_goes_on_from_a_composer_and_averages(tmp_path):
    from pipeline import main

    token_files(tmp_path)
    start = build_model(ComposerConfig.tiny())
    start.save(tmp_path / "start.keras")
    run = tmp_path / "run"
    assert main(["train", "compose", str(tmp_path / "train.npz"), str(run),
                 "--validation", str(tmp_path / "validation.npz"),
                 "--from", str(tmp_path / "start.keras"), "--minutes", "0.05", "--batch-size", "4", "--sequence-length",
                 "32", "--steps-per-epoch", "3", "--average-from", "0", "--learning-rate", "3e-3", "--float16"]) == 0
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and float(rows[-1]["val_nll_per_event"]) > 0
    assert json.loads((run / "budget.json").read_text())["seconds"] >= 3.0
    assert json.loads((run / "mean.json").read_text())["epochs"] == len(rows)
    for name in ("best.keras", "mean.keras", "best-float16.keras"):
        model = keras.saving.load_model(run / name, compile=False)
        assert model.config.num_layers == 2 and model.config.sequence_length == 32
        moved = [w for w, s in zip(model.get_weights(), start.get_weights()) if not np.allclose(w, s)]
        assert moved, f"{name} holds the starting weights"
    # A rerun with the budget spent trains no more.
    assert main(["train", "compose", str(tmp_path / "train.npz"), str(run),
                 "--validation", str(tmp_path / "validation.npz"),
                 "--from", str(tmp_path / "start.keras"), "--minutes", "0.05", "--batch-size", "4", "--sequence-length",
                 "32", "--steps-per-epoch", "3", "--average-from", "0", "--learning-rate", "3e-3", "--float16"]) == 0
    with open(run / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


@pytest.mark.slow
def test_training_widens_first_counts_steps_and_adds_the_conditioning_tokens(tmp_path):
    from compose.evaluate import token_nll_per_event
    from pipeline import main

    pieces = token_files(tmp_path, count=3, seconds=8.0)
    start = build_model(ComposerConfig.tiny())
    start.save(tmp_path / "start.keras")
    run = tmp_path / "run"
    assert main(["train", "compose", str(tmp_path / "train.npz"), str(run),
                 "--validation", str(tmp_path / "validation.npz"),
                 "--from", str(tmp_path / "start.keras"), "--widen", "--conditioning", "--steps", "6",
                 "--steps-per-epoch", "3", "--batch-size", "2", "--sequence-length", "32"]) == 0
    # Widening and the new tokens keep what the model computes: the run's start scores as the narrow model.
    widened = keras.saving.load_model(run / "start.keras", compile=False)
    assert widened.config.vocab_size == vocabulary.CONDITIONED_VOCAB_SIZE
    score = lambda model: token_nll_per_event(model, pieces[-1:], 32, in_grammar=False)["nll_per_event"]  # noqa: E731
    assert score(widened) == pytest.approx(score(start), abs=2e-4)
    with open(run / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2  # 6 steps of 3 per epoch, however fast the machine
    final = keras.saving.load_model(run / "last.keras", compile=False)
    assert final.config.model_dim == 2 * start.config.model_dim and final.config.conditioned


@pytest.mark.slow
def test_training_from_a_token_file_needs_no_note_seq(tmp_path):
    # As on an accelerator machine (where it runs under JAX, with no TensorFlow either).
    token_files(tmp_path, count=3, seconds=6.0)
    code = ("import sys; sys.modules['note_seq'] = None; from pipeline import main; "
            f"sys.exit(main(['train', 'compose', {str(tmp_path / 'train.npz')!r}, {str(tmp_path / 'run')!r}, "
            f"'--validation', {str(tmp_path / 'validation.npz')!r}, '--config', 'tiny', '--conditioning', "
            "'--steps', '2', '--steps-per-epoch', '2', '--batch-size', '2', '--sequence-length', '32']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "best.keras").exists()


def test_the_encode_command_writes_pieces_with_their_composers(tmp_path, midi_folder):
    from pipeline import main

    out = tmp_path / "train.npz.xz"
    split_csv = str(midi_folder / "split.csv")
    assert main(["compose-tools", "encode", str(midi_folder), str(out), "--split-csv", split_csv]) == 0
    corpus = TokenFile.load(out)
    assert corpus.composers == ["Chopin", "Chopin"] and len(corpus.pieces) == 2
    assert all(p[-1] == vocabulary.END for p in corpus.pieces)


@pytest.mark.parametrize("factor", [0.95, 0.975, 1.025, 1.05, 1.7])
def test_stretching_tokens_keeps_the_grammar_and_scales_every_event_time(tmp_path, factor):
    from compose import grammar

    midi = make_midi(tmp_path / "c.mid", chords(5, 12.0), pedal=[(2.0, 127), (4.0, 0)])
    piece = apply_sustain(read_note_sequence(midi))
    tokens = piece_tokens(piece)
    stretched = stretch(tokens, factor)
    for music, start_of_piece in ((stretched, True), (stretch(tokens[37:300], factor), False)):
        invalid = grammar.invalid_after(music[:-1], start_of_piece)
        assert not invalid[np.arange(len(music) - 1), music[1:]].any()
    is_shift = lambda t: (t >= vocabulary.TIME_SHIFT) & (t < vocabulary.VELOCITY)  # noqa: E731
    np.testing.assert_array_equal(stretched[~is_shift(stretched)], tokens[~is_shift(tokens)])  # the events, in order
    times = lambda t: np.cumsum(np.where(is_shift(t), t - vocabulary.TIME_SHIFT + 1, 0))[~is_shift(t)]  # noqa: E731
    np.testing.assert_allclose(times(stretched), times(tokens) * factor, atol=0.5 + 1e-9)  # steps, on the grid
    # Near the re-encoded stretched music: the same events, each within a step of it.
    encoded = piece_tokens(augment(piece, 0, factor))
    assert abs(len(encoded) - len(stretched)) <= 0.02 * len(encoded)


def test_conditioned_crops_start_with_the_labels_and_never_predict_them(tmp_path):
    from compose import conditioning

    pieces = [piece_tokens(apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", chords(i, 12.0)))))
              for i in range(2)]
    chopin = vocabulary.COMPOSERS.index("Chopin")
    crops = TokenCrops(pieces, batch_size=64, length=48, steps=1, seed=2, conditioning=True, composers=[chopin, None],
                       label_dropout=0.25)
    inputs, targets = crops[0]
    first = inputs[:, 0]
    is_label = conditioning.is_conditioning(inputs)
    assert not conditioning.is_conditioning(targets).any() and not is_label[:, 2:].any()
    composer_rows = first == vocabulary.COMPOSER + chopin
    assert 0.2 < composer_rows.mean() < 0.6  # half the pieces are Chopin's, a quarter of their labels dropped
    assert (~is_label[:, 0]).any()  # some crops hold no label at all: unconditioned continuation is trained too
    for row, target in zip(inputs, targets):
        lead = int(conditioning.is_conditioning(row[:2]).sum())
        assert (target[: max(lead - 1, 0)] == vocabulary.PAD).all()
        if lead:  # the density token tells the music that follows
            density = row[lead - 1]
            if density >= vocabulary.DENSITY:
                music = row[lead:]
                assert density - vocabulary.DENSITY == conditioning.density_bucket(
                    conditioning.notes_per_second(np.append(music, target[-1])))


@pytest.mark.slow
def test_scoring_tokens_without_the_grammar_gives_the_same_figure(tmp_path):
    from compose.evaluate import nll_per_event, token_nll_per_event

    pieces = [apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", chords(i, 6.0)))) for i in range(2)]
    model = build_model(ComposerConfig.tiny())
    full = nll_per_event(model, pieces)
    tokens_only = token_nll_per_event(model, [piece_tokens(p) for p in pieces], in_grammar=False)
    assert tokens_only["nll_per_event"] == pytest.approx(full["nll_per_event"])
    assert tokens_only["events"] == full["events"]
    assert "nll_per_event_in_grammar" not in tokens_only and full["nll_per_event_in_grammar"] < full["nll_per_event"]


@pytest.mark.slow
def test_training_the_labels_alone_changes_nothing_else_so_unlabelled_music_scores_the_same(tmp_path, checkpoints):
    from compose.conditioning import prefix
    from compose.evaluate import token_nll_per_event
    from pipeline import main

    pieces = token_files(tmp_path, count=3, seconds=8.0)
    (tmp_path / "validation.npz").write_bytes(token_file_bytes(pieces[-1:], [1.0], ["Chopin"]))
    shutil.copy(checkpoints / "composer.keras", tmp_path / "start.keras")  # the session's tiny one
    run = tmp_path / "run"
    common = ["train", "compose", str(tmp_path / "train.npz"), str(run),
              "--validation", str(tmp_path / "validation.npz"), "--from", str(tmp_path / "start.keras"),
              "--steps", "6", "--steps-per-epoch", "3", "--batch-size", "2",
              "--sequence-length", "32", "--learning-rate", "1e-2"]
    assert main(common + ["--labels-only"]) != 0  # refused: it needs --conditioning
    assert not (run / "last.keras").exists()
    assert main(common + ["--conditioning", "--labels-only"]) == 0
    start = keras.saving.load_model(run / "start.keras", compile=False)
    final = keras.saving.load_model(run / "last.keras", compile=False)
    for before, after, variable in zip(start.get_weights(), final.get_weights(), final.weights):
        if variable is final.embedding.embeddings:
            np.testing.assert_array_equal(after[: vocabulary.VOCAB_SIZE], before[: vocabulary.VOCAB_SIZE])
            assert not np.allclose(after[vocabulary.VOCAB_SIZE:], before[vocabulary.VOCAB_SIZE:])
        else:
            np.testing.assert_array_equal(after, before)
    score = lambda model, **kw: token_nll_per_event(model, pieces[-1:], 32, in_grammar=False, **kw)["nll_per_event"]  # noqa: E731
    assert score(final) == score(start)
    chopin = [prefix("Chopin")]
    assert score(final, prefixes=chopin) != score(start, prefixes=chopin)
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and float(rows[-1]["val_nll_per_event_labelled"]) == pytest.approx(
        score(final, prefixes=chopin), abs=1e-4)
