"""The composer: tokens, relative attention, causality, cached decoding, NLL, training, CLI."""

from __future__ import annotations

import csv
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from compose import grammar
from compose.attention import CausalSelfAttention
from compose.config import ComposerConfig
from compose.data import window
from compose.evaluate import chunks, nll_per_event
from compose.model import build_model
from compose.sample import Sampler, choose
from compose.tokens import END, PAD, VOCAB_SIZE, augment, decode, describe, encode
from stages.io.midi import NoteSequence, apply_sustain, notes_from_sequence, read_note_sequence
from tests.conftest import make_midi, phrase

TINY = ComposerConfig.tiny()


def naive_relative_attention(layer: CausalSelfAttention, x: np.ndarray) -> np.ndarray:
    """The O(L^2 D) definition: every (i, j) pair gathers its own distance embedding (and, with a
    span, query i sees only keys i - span < j <= i)."""
    batch, length, dim = x.shape
    heads, head_dim = layer.num_heads, layer.head_dim
    q, k, v = np.split(np.asarray(layer.qkv(x)), 3, axis=-1)
    q, k, v = (t.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3) for t in (q, k, v))
    embeddings = np.asarray(layer.distance_embeddings)
    if not layer.per_head:  # one set shared by the heads
        embeddings = np.broadcast_to(embeddings, (heads,) + embeddings.shape)
    logits = np.einsum("bhid,bhjd->bhij", q, k)
    for i in range(length):
        for j in range(i + 1):
            for h in range(heads):
                logits[:, h, i, j] += q[:, h, i] @ embeddings[h, min(i - j, layer.max_distance - 1)]
    visible = np.tril(np.ones((length, length), bool))
    if layer.span:
        visible &= ~np.tril(visible, -layer.span)
    logits = np.where(visible, logits / np.sqrt(head_dim), -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = np.einsum("bhij,bhjd->bhid", weights, v).transpose(0, 2, 1, 3).reshape(batch, length, dim)
    return np.asarray(layer.out(out))


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("length,max_distance,span", [(12, 5, 0), (9, 64, 0), (1, 4, 0), (12, 5, 4), (12, 16, 1)])
def test_skewed_relative_attention_equals_the_naive_computation(length, max_distance, span, per_head):
    keras.utils.set_random_seed(length)
    layer = CausalSelfAttention(num_heads=2, model_dim=16, max_distance=max_distance, span=span, per_head=per_head)
    x = np.random.default_rng(0).standard_normal((2, length, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), naive_relative_attention(layer, x), atol=1e-5)


@pytest.mark.parametrize("architecture", ["relative", "absolute", "lstm"])
def test_no_gradient_flows_from_future_positions(architecture):
    keras.utils.set_random_seed(1)
    model = build_model(ComposerConfig.named("tiny", architecture))
    tokens = np.random.default_rng(1).integers(2, VOCAB_SIZE, (1, 16)).astype(np.int32)
    embedded = tf.Variable(np.asarray(model.embedding(tokens)))
    original = model.embedding.call
    model.embedding.call = lambda _: embedded  # feed differentiable embeddings through the model
    try:
        with tf.GradientTape() as tape:
            logits = model(tokens)[0, 7]
            loss = tf.reduce_sum(logits * tf.random.normal(logits.shape))
        gradient = tape.gradient(loss, embedded).numpy()[0]
    finally:
        model.embedding.call = original
    assert np.abs(gradient[8:]).max() == 0.0
    assert np.abs(gradient[:8]).max() > 0.0


@pytest.mark.parametrize("architecture,span,per_head", [("relative", 0, False), ("absolute", 0, False),
                                                       ("relative", 6, False), ("relative", 6, True)])
@pytest.mark.slow
def test_cached_decoding_equals_full_recomputation(architecture, span, per_head):
    """With a span, the cache is a ring of `span` slots that wraps three times in 20 positions."""
    from compose.sample import ring

    keras.utils.set_random_seed(2)
    model = build_model(dataclasses.replace(ComposerConfig.named("tiny", architecture), attention_span=span,
                                            relative_per_head=per_head))
    tokens = np.random.default_rng(2).integers(2, VOCAB_SIZE, (2, 20)).astype(np.int32)
    full = np.asarray(model(tokens))
    capacity = span or 24
    cache, stepped = model.empty_cache(2, capacity), []
    for position in range(20):
        logits, cache = model.step(tokens[:, position: position + 1], cache, position)
        stepped.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(stepped, 1), full, atol=1e-4)
    last, prefilled = model.prefill(tokens[:, :12], 24)
    np.testing.assert_allclose(np.asarray(last), full[:, 11], atol=1e-4)
    logits, _ = model.step(tokens[:, 12:13], prefilled, 12)
    np.testing.assert_allclose(np.asarray(logits), full[:, 12], atol=1e-4)
    _, unpadded = model.prefill(tokens[:, :13])
    wrapped = [tuple(ring(np.asarray(part), capacity) for part in pair) for pair in unpadded]
    for position in range(13, 20):
        logits, wrapped = model.step(tokens[:, position: position + 1], wrapped, position)
        np.testing.assert_allclose(np.asarray(logits), full[:, position], atol=1e-4)


@pytest.mark.slow
def test_with_a_span_each_layer_looks_back_at_most_span_positions():
    """Each of the tiny model's 2 layers reaches span - 1 positions back: the prediction at t
    depends on tokens t - 2 (span - 1) .. t only; within one span nothing changes."""
    keras.utils.set_random_seed(4)
    span, last = 8, 23
    model = build_model(dataclasses.replace(TINY, attention_span=span))
    tokens = np.random.default_rng(4).integers(2, VOCAB_SIZE, (1, last + 1)).astype(np.int32)
    full = np.asarray(model(tokens))[0, last]
    earliest = last - TINY.num_layers * (span - 1)
    changed = tokens.copy()
    changed[0, :earliest] = (changed[0, :earliest] + 5) % (VOCAB_SIZE - 2) + 2
    np.testing.assert_allclose(np.asarray(model(changed))[0, last], full, atol=1e-5)
    changed[0, earliest] = (changed[0, earliest] + 5) % (VOCAB_SIZE - 2) + 2
    assert not np.allclose(np.asarray(model(changed))[0, last], full, atol=1e-4)
    unlimited = build_model(TINY)
    unlimited.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(unlimited(tokens[:, :span]))[0], np.asarray(model(tokens))[0, :span],
                               atol=1e-5)


@pytest.mark.slow
def test_sampler_with_cache_matches_sampler_without_within_the_window():
    keras.utils.set_random_seed(3)
    sampler = Sampler(build_model(TINY), window=48)
    primer = np.random.default_rng(3).integers(2, VOCAB_SIZE, 8).astype(np.int32)
    cached = sampler.generate(primer, max_tokens=30, temperature=0, stop_at_end=False)
    uncached = sampler.generate(primer, max_tokens=30, temperature=0, stop_at_end=False, use_cache=False)
    np.testing.assert_array_equal(cached, uncached)
    # Past the window, generation goes on (sliding window) and a seed reproduces it.
    long = sampler.generate(primer, max_tokens=120, temperature=1.0, seed=5, stop_at_end=False)
    assert len(long) == 120
    np.testing.assert_array_equal(long, sampler.generate(primer, max_tokens=120, temperature=1.0, seed=5,
                                                         stop_at_end=False))


@pytest.mark.slow
def test_with_a_span_cached_sampling_equals_one_long_pass_far_past_the_span():
    """A span model's ring-buffer cache never re-encodes, and every token it draws is the one a
    full pass over the latest layers x (span - 1) + 1 tokens (all the model can see) picks."""
    keras.utils.set_random_seed(6)
    span = 8
    sampler = Sampler(build_model(dataclasses.replace(TINY, attention_span=span)), chunk=8)
    assert sampler.window == TINY.num_layers * (span - 1) + 1 and sampler.capacity == span
    primer = np.random.default_rng(6).integers(2, VOCAB_SIZE, 20).astype(np.int32)  # longer than the ring
    cached = sampler.generate(primer, max_tokens=60, temperature=0, stop_at_end=False)
    uncached = sampler.generate(primer, max_tokens=60, temperature=0, stop_at_end=False, use_cache=False)
    np.testing.assert_array_equal(cached, uncached)
    assert len(set(cached.tolist())) > 3  # not one token repeated: the comparison has teeth


@pytest.mark.slow
def test_choose_respects_temperature_top_k_and_top_p():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([1e-9, 0.5, 0.3, 0.15, 0.05]))
    assert choose(logits, rng, temperature=0) == 1
    assert {choose(logits, rng, top_k=2) for _ in range(200)} == {1, 2}
    assert {choose(logits, rng, top_p=0.75) for _ in range(200)} == {1, 2}  # 0.5 + 0.3 reaches 0.75
    counts = np.bincount([choose(logits, rng) for _ in range(4000)], minlength=5) / 4000
    np.testing.assert_allclose(counts[1:], [0.5, 0.3, 0.15, 0.05], atol=0.03)
    assert counts[PAD] == 0


def test_tokens_round_trip_up_to_quantization(tmp_path):
    notes = [(0.0, 0.5, 60, 100), (0.013, 1.7, 64, 40), (0.5, 3.25, 67, 127), (2.0, 2.004, 72, 1)]
    sequence = read_note_sequence(make_midi(tmp_path / "a.mid", notes, pedal=[(2.5, 127), (3.0, 0)]))
    tokens = encode(sequence)
    assert tokens.min() >= 2 and tokens.max() < VOCAB_SIZE and describe(int(tokens[0])).split()[0] in {
        "velocity", "note-on", "shift"}
    expected = notes_from_sequence(apply_sustain(sequence))
    decoded = notes_from_sequence(decode(np.append(tokens, [END, PAD])))
    np.testing.assert_array_equal(decoded["pitch"], expected["pitch"])
    np.testing.assert_allclose(decoded["onset_s"], expected["onset_s"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(decoded["offset_s"], expected["offset_s"], atol=0.01 + 1e-9)
    assert np.all(np.abs(decoded["velocity"] - expected["velocity"]) <= 4)  # 32 bins of 4
    # A second trip is exact: decoded music is already on the grid.
    np.testing.assert_array_equal(encode(decode(tokens), sustain=False), tokens)


def token(kind: str, value: int) -> int:
    """The token of one event, e.g. token("note-on", 60), found through `describe`."""
    return next(t for t in range(2, VOCAB_SIZE) if describe(t) == f"{kind} {value}")


def test_striking_a_sounding_key_again_ends_its_note():
    on, off, shift = (lambda v: token("note-on", v)), (lambda v: token("note-off", v)), (lambda s: token("shift", s))
    # 60 struck at 0, again at 0.5 without a release, released at 0.75; 64 and 67 never released.
    tokens = [on(67), on(60), shift(50), on(60), on(64), shift(25), off(60)] + [shift(100)] * 6
    notes = notes_from_sequence(decode(tokens, max_unreleased_s=5.0))
    assert sorted((int(n["pitch"]), round(float(n["onset_s"]), 2), round(float(n["offset_s"]), 2)) for n in notes) == [
        (60, 0.0, 0.5), (60, 0.5, 0.75), (64, 0.5, 5.5), (67, 0.0, 5.0)]
    assert decode(tokens[:7]).total_time == pytest.approx(0.75)  # an unreleased note ends with the piece


def test_random_token_streams_decode_to_one_note_per_key_at_a_time():
    rng = np.random.default_rng(3)
    for _ in range(20):
        notes = notes_from_sequence(decode(rng.integers(0, VOCAB_SIZE, 300)))
        for pitch in np.unique(notes["pitch"]):
            same = np.sort(notes[notes["pitch"] == pitch], order="onset_s")
            assert np.all(same["offset_s"][:-1] <= same["onset_s"][1:] + 1e-9)


def test_encoding_sounds_one_note_per_key_at_a_time():
    sequence = NoteSequence(total_time=2.0)
    for start, end in [(0.0, 1.0), (0.5, 1.5), (1.2, 1.3), (1.7, 2.0), (1.7, 1.8), (1.703, 1.9)]:
        sequence.notes.add(pitch=60, velocity=80, start_time=start, end_time=end)
    notes = notes_from_sequence(decode(encode(sequence)))
    # Struck again, a key ends its sounding note; strikes within one 10 ms step are one note.
    assert [(round(float(a), 2), round(float(b), 2)) for a, b in zip(notes["onset_s"], notes["offset_s"])] == [
        (0.0, 0.5), (0.5, 1.2), (1.2, 1.3), (1.7, 2.0)]


@pytest.mark.slow
def test_encoded_music_keeps_the_grammar_and_the_rules_agree_step_by_step(tmp_path):
    pieces = [apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", phrase(i, 8.0),
                                                         pedal=[(1.0, 127), (3.0, 0)]))) for i in range(3)]
    for piece in pieces:
        tokens = encode(piece)
        invalid = grammar.invalid_after(tokens[:-1], start_of_piece=True)
        assert not invalid[np.arange(len(tokens) - 1), tokens[1:]].any()
    tokens = np.random.default_rng(2).integers(2, VOCAB_SIZE, 400)
    for start_of_piece in (True, False):
        invalid = grammar.invalid_after(tokens, start_of_piece)
        assert invalid.any(axis=1).mean() > 0.5  # random tokens break the rules often: the check has teeth
        state = grammar.initial_state(tokens[:1], start_of_piece)
        for i, token in enumerate(tokens[1:]):
            masked = np.asarray(grammar.mask(np.zeros((1, VOCAB_SIZE), np.float32), state))[0] < -1
            np.testing.assert_array_equal(masked, invalid[i])
            state = grammar.advance(state, np.int32(token))


def test_the_grammar_rules():
    on, off, shift = (lambda v: token("note-on", v)), (lambda v: token("note-off", v)), (lambda s: token("shift", s))
    velocity = token("velocity", 20)
    rows = grammar.invalid_after(np.array([on(60), off(61), shift(30), shift(100), velocity, on(30)]),
                                 start_of_piece=False)
    assert rows[0, on(60)] and not rows[0, off(60)] and not rows[0, on(61)]
    assert rows[1, off(61)] and not rows[1, on(61)] and not rows[1, off(62)]  # 62: unknown in a chunk
    assert grammar.invalid_after(np.array([on(60)]), start_of_piece=True)[0, off(62)]  # silent at a piece's start
    assert rows[2, shift(10)] and rows[2, shift(100)] and not rows[2, on(40)]  # a pause is one shift
    assert not rows[3, shift(10)]  # longer pauses go on after a full shift
    assert rows[4, shift(10)] and rows[4, END] and rows[4, off(30)] and not rows[4, on(30)] and rows[4, on(60)]
    assert not rows[3, velocity] and rows[5, velocity] and not rows[5, token("velocity", 21)]  # a velocity is a change
    opening = np.array([shift(10)])
    assert grammar.invalid_after(opening, start_of_piece=True)[0, on(60)]  # a piece's first note has a velocity
    assert not grammar.invalid_after(opening, start_of_piece=False)[0, on(60)]


@pytest.mark.slow
def test_sampling_in_the_grammar_never_breaks_it():
    keras.utils.set_random_seed(7)
    sampler = Sampler(build_model(TINY), chunk=8)
    primer = np.array([token("note-on", 60), token("shift", 10)], np.int32)
    free = sampler.generate(primer, max_tokens=200, seed=1, stop_at_end=False, in_grammar=False)
    kept = sampler.generate(primer, max_tokens=200, seed=1, stop_at_end=False)
    breaks = [int(grammar.invalid_after(np.concatenate([primer, t]), start_of_piece=True)[
        np.arange(len(primer) - 1, len(primer) + len(t) - 1), t].sum()) for t in (free, kept)]
    assert breaks[0] > 20 and breaks[1] == 0


def test_augmentation_transposes_within_the_piano_and_stretches_time(tmp_path):
    sequence = read_note_sequence(make_midi(tmp_path / "b.mid", [(0, 1, 21, 80), (1, 2, 60, 80), (2, 4, 108, 80)]))
    up = augment(sequence, semitones=3, stretch=1.05)
    moved = [(n.pitch, round(n.start_time, 3), round(n.end_time, 3)) for n in up.notes]
    assert moved == [(24, 0.0, 1.05), (63, 1.05, 2.1)]
    assert [n.pitch for n in augment(sequence, semitones=-2).notes] == [58, 106]


def test_a_window_holds_the_notes_that_start_in_it(tmp_path):
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "w.mid", phrase(0, 20.0))))
    part = window(piece, 5.0, 10.0)
    assert part.notes and all(0.0 <= n.start_time < 5.0 for n in part.notes)
    assert len(part.notes) == sum(5.0 <= n.start_time < 10.0 for n in piece.notes)


@pytest.mark.slow
def test_nll_of_a_uniform_model_is_log_vocabulary(tmp_path):
    assert [list(c) for c in chunks(np.arange(10), 4)] == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9]]
    model = build_model(TINY)
    model.logits.set_weights([np.zeros_like(w) for w in model.logits.get_weights()])
    pieces = [apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", phrase(i, 6.0)))) for i in range(2)]
    result = nll_per_event(model, pieces)
    assert result["pieces"] == 2
    assert result["events"] == sum(len(encode(p, sustain=False)) for p in pieces)  # + END, - first token
    assert result["nll_per_event"] == pytest.approx(np.log(VOCAB_SIZE), abs=1e-4)
    # In the grammar a uniform model spreads its mass over the allowed events only: counted here
    # one token at a time with the sampler's rules.
    allowed = []
    for piece in pieces:
        tokens = np.append(encode(piece, sustain=False), END)
        state = grammar.initial_state(tokens[:1])
        for token in tokens[1:]:
            allowed.append(int((np.asarray(grammar.mask(np.zeros((1, VOCAB_SIZE), np.float32), state)) > -1).sum()))
            state = grammar.advance(state, np.int32(token))
    assert result["nll_per_event_in_grammar"] == pytest.approx(np.mean(np.log(allowed)), abs=1e-4)
    assert result["nll_per_event_in_grammar"] < result["nll_per_event"] - 0.05


@pytest.mark.slow
def test_keras_save_and_load_round_trip(tmp_path):
    for architecture in ("relative", "lstm"):
        model = build_model(ComposerConfig.named("tiny", architecture))
        model.save(tmp_path / f"{architecture}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{architecture}.keras")
        tokens = np.arange(2, 30, dtype=np.int32)[None]
        np.testing.assert_allclose(np.asarray(loaded(tokens)), np.asarray(model(tokens)), atol=1e-5)
        assert loaded.config.architecture == architecture


@pytest.mark.slow
def test_training_and_resuming(tmp_path):
    from compose.train import train

    pieces = [apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", phrase(i, 15.0)))) for i in range(4)]
    train(pieces[:3], pieces[3:], tmp_path / "run", TINY, steps=4, steps_per_epoch=2)
    train(pieces[:3], pieces[3:], tmp_path / "run", TINY, steps=6, steps_per_epoch=2, keep_epochs=True)
    with open(tmp_path / "run" / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert all(float(r["val_nll_per_event"]) < np.log(VOCAB_SIZE) + 1 for r in rows)
    assert (tmp_path / "run" / "best.keras").exists()
    # keep_epochs (from the resumed run on): each epoch's model, the latest one being last.keras.
    assert sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir()) == ["epoch-003.keras"]
    kept = keras.saving.load_model(tmp_path / "run" / "epochs" / "epoch-003.keras", compile=False)
    last = keras.saving.load_model(tmp_path / "run" / "last.keras", compile=False)
    for a, b in zip(kept.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [p.name for p in (tmp_path / "run").rglob(".*")], "a temporary was left behind"


@pytest.mark.slow
def test_cli_continues_a_primer_and_writes_new_pieces(tmp_path, capsys):
    from pipeline import main

    checkpoint = tmp_path / "tiny.keras"
    build_model(TINY).save(checkpoint)
    make_midi(tmp_path / "in" / "primer.mid", phrase(9, 8.0))
    (tmp_path / "in" / "bad.mid").write_bytes(b"nope")
    common = ["--checkpoint", str(checkpoint), "--seconds", "2", "--max-tokens", "80"]
    assert main(["compose", str(tmp_path / "in"), str(tmp_path / "out"), "--primer-seconds", "3", "--include-primer",
                 *common]) == 1
    assert "bad.mid" in capsys.readouterr().out
    continued = notes_from_sequence(read_note_sequence(tmp_path / "out" / "primer.midi"))
    primer = notes_from_sequence(apply_sustain(read_note_sequence(tmp_path / "in" / "primer.mid")))
    kept = primer[primer["onset_s"] < 3.0]
    np.testing.assert_allclose(continued["onset_s"][: len(kept)], kept["onset_s"], atol=0.006)
    # By default the new music alone: none of the primer's notes, and at most --seconds long.
    assert main(["compose", str(tmp_path / "in" / "primer.mid"), str(tmp_path / "new-only"), "--primer-seconds", "3",
                 *common]) == 0
    new = notes_from_sequence(read_note_sequence(tmp_path / "new-only" / "primer.midi"))
    assert len(new) and new["offset_s"].max() <= 2.0 + 1e-6
    assert not any(np.allclose(new["onset_s"][: len(kept)], kept["onset_s"][: len(new)], atol=0.006) for _ in [0])
    assert main(["compose", str(tmp_path / "new"), "--count", "2", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["piece-0000-000.midi", "piece-0000-001.midi"]
    assert main(["compose", str(tmp_path / "in" / "primer.mid"), str(tmp_path / "plotted"), "--plot", *common]) == 0
    assert main(["compose", str(tmp_path / "plotted"), "--count", "1", "--plot", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "plotted").iterdir() if p.suffix != ".json") == [
        "piece-0000-000.midi", "piece-0000-000.png", "primer.midi", "primer.png"]
    assert all((tmp_path / "plotted" / name).read_bytes()[:4] == b"\x89PNG"
               for name in ("primer.png", "piece-0000-000.png"))


def test_a_continuation_splits_into_its_primer_and_the_new_notes(tmp_path):
    from compose.stage import primer_tokens, split_at_primer_end

    primer = window(apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", phrase(3, 6.0)))), 0.0, 3.0)
    tokens = primer_tokens(primer)
    # The hardest case: the new music starts with a note at the very step of the primer's last note-off.
    token = {describe(t): t for t in range(VOCAB_SIZE)}
    new = [token[e] for e in ("velocity 20", "note-on 60", "shift 10", "note-off 60", "note-on 64", "shift 5",
                              "note-off 64")]
    composed = decode(np.concatenate([tokens, new]))
    old_notes, new_notes = split_at_primer_end(composed, decode(tokens).total_time)
    np.testing.assert_array_equal(old_notes, notes_from_sequence(decode(tokens)))
    np.testing.assert_allclose(new_notes["onset_s"],
                               notes_from_sequence(decode(new))["onset_s"] + decode(tokens).total_time)
    assert len(new_notes) == 2 and new_notes["onset_s"].min() == pytest.approx(decode(tokens).total_time)


@pytest.mark.slow
def test_evaluate_cli_scores_every_event_once_whatever_the_chunk_length(tmp_path, capsys):
    import json

    from compose.data import load_pieces, piece_tokens
    from pipeline import main

    checkpoint = tmp_path / "tiny.keras"
    build_model(dataclasses.replace(TINY, attention_span=16)).save(checkpoint)
    for i in range(2):
        make_midi(tmp_path / "midi" / f"{i}.mid", phrase(i, 6.0))
    expected = sum(len(piece_tokens(p)) - 1 for p in load_pieces(tmp_path / "midi"))
    results = []
    for length in ("16", "48"):
        assert main(["evaluate", "compose", str(tmp_path / "midi"), "--checkpoint", str(checkpoint),
                     "--chunk-length", length]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert [r["events"] for r in results] == [expected, expected] and expected > 48
    assert results[0]["nll_per_event"] != results[1]["nll_per_event"]  # more context in longer chunks

    # --max-pieces: an even spread of the pieces, here the first of two.
    assert main(["evaluate", "compose", str(tmp_path / "midi"), "--checkpoint", str(checkpoint),
                 "--max-pieces", "1"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["pieces"] == 1 and first["events"] == len(piece_tokens(load_pieces(tmp_path / "midi")[0])) - 1


def sounding_at_end(tokens: np.ndarray, primer: np.ndarray = np.zeros(0, np.int32)) -> int:
    states = grammar.key_states(np.concatenate([primer, tokens]), start_of_piece=True)[-1]
    return int((states == grammar.SOUNDING).sum())


@pytest.mark.parametrize("in_grammar", [True, False])
@pytest.mark.slow
def test_a_continuation_of_given_seconds_ends_there_with_every_note_released(tmp_path, in_grammar):
    from compose.sample import _shift_seconds
    from compose.stage import primer_tokens

    keras.utils.set_random_seed(8)
    sampler = Sampler(build_model(TINY), chunk=8)
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", phrase(2, 6.0))))
    primer = primer_tokens(window(piece, 0, 3))
    for seed in range(4):
        new = sampler.generate(primer, max_tokens=2000, seconds=1.5, seed=seed, stop_at_end=False,
                               in_grammar=in_grammar)
        assert sum(_shift_seconds(int(t)) for t in new) == pytest.approx(1.5)  # exactly, on the 10 ms grid
        assert sounding_at_end(new, primer) == 0
        notes = notes_from_sequence(decode(new))
        assert not len(notes) or notes["offset_s"].max() <= 1.5 + 1e-9  # nothing hangs past the end
    assert max(sounding_at_end(sampler.generate(primer, max_tokens=60, seed=s, stop_at_end=False)[:-1], primer)
               for s in range(4)) > 0  # notes do sound at the cut: the release is the sampler's doing


@pytest.mark.slow
def test_an_old_composer_gains_the_conditioning_tokens_without_changing_its_predictions():
    from compose.growth import extend_vocabulary
    from compose.vocabulary import CONDITIONED_VOCAB_SIZE

    keras.utils.set_random_seed(9)
    for architecture in ("relative", "lstm"):
        old = build_model(ComposerConfig.named("tiny", architecture))
        new = extend_vocabulary(old)
        assert new.config.vocab_size == CONDITIONED_VOCAB_SIZE and old.config.vocab_size == VOCAB_SIZE
        tokens = np.random.default_rng(9).integers(2, VOCAB_SIZE, (2, 24)).astype(np.int32)
        before = np.asarray(old(tokens))
        after = np.asarray(new(tokens))
        np.testing.assert_allclose(after[..., :VOCAB_SIZE], before, atol=1e-5)
        from compose.evaluate import log_softmax

        np.testing.assert_allclose(log_softmax(after)[..., :VOCAB_SIZE], log_softmax(before), atol=1e-5)


@pytest.mark.slow
def test_a_conditioned_composer_reads_its_labels_and_samples_without_them(tmp_path):
    from compose import conditioning
    from compose.growth import extend_vocabulary
    from compose.stage import Composer

    keras.utils.set_random_seed(10)
    model = extend_vocabulary(build_model(dataclasses.replace(TINY, attention_span=16)))
    model.blocks[0].attention.distance_embeddings.assign(  # weights that make the labels matter
        np.random.default_rng(0).normal(0, 0.5, model.blocks[0].attention.distance_embeddings.shape))
    model.embedding.embeddings.assign(np.random.default_rng(1).normal(0, 0.5, model.embedding.embeddings.shape))
    sampler = Sampler(model, chunk=8)
    primer = np.array([token("velocity", 20), token("note-on", 60), token("shift", 10)], np.int32)
    chopin = conditioning.prefix("Chopin", 12.0)
    plain = sampler.generate(primer, max_tokens=40, seed=3, stop_at_end=False)
    steered = sampler.generate(primer, max_tokens=40, seed=3, stop_at_end=False, conditioning=chopin)
    uncached = sampler.generate(primer, max_tokens=40, temperature=0, stop_at_end=False, conditioning=chopin,
                                use_cache=False)
    np.testing.assert_array_equal(sampler.generate(primer, max_tokens=40, temperature=0, stop_at_end=False,
                                                   conditioning=chopin), uncached)
    assert not np.array_equal(plain, steered)
    assert not conditioning.is_conditioning(np.concatenate([plain, steered])).any()  # never drawn
    model.save(tmp_path / "conditioned.keras")
    build_model(TINY).save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="unknown composer"):
        Composer(tmp_path / "conditioned.keras", composer="Telemann")
    plain_composer = Composer(tmp_path / "plain.keras", composer="Chopin", max_tokens=8)
    with pytest.raises(ValueError, match="without conditioning"):
        plain_composer.continue_sequence(None)
    assert conditioning.describe_prefix(chopin) == {"composer": "Chopin", "density_bucket": 2}
    assert conditioning.composer_index("Frédéric Chopin") == conditioning.composer_index("chopin")


@pytest.mark.slow
def test_mixed_precision_trains_and_keeps_float32_weights_and_logits():
    from compose.model import compile_model

    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(11)
        small_paper = dataclasses.replace(ComposerConfig.paper(), num_layers=1, model_dim=32, ff_dim=64, num_heads=2,
                                          max_distance=64, sequence_length=32, batch_size=2, warmup_steps=1)
        model = compile_model(build_model(small_paper))
        tokens = np.random.default_rng(11).integers(2, VOCAB_SIZE, (2, 33)).astype(np.int32)
        losses = [float(model.train_on_batch(tokens[:, :-1], tokens[:, 1:])) for _ in range(3)]
        assert all(np.isfinite(losses)) and model.blocks[0].attention.compute_dtype == "bfloat16"
        assert all(w.dtype == "float32" for w in model.weights) and model(tokens).dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_the_paper_config_is_the_papers_model():
    paper = ComposerConfig.paper()
    assert (paper.num_layers, paper.model_dim, paper.ff_dim, paper.num_heads, paper.dropout) == (6, 512, 1024, 8, 0.1)
    assert paper.relative_per_head and paper.attention_span == 0 and paper.max_distance == paper.sequence_length == 2048
    assert paper.conditioned


@pytest.mark.slow
def test_fast_scoring_and_intervals_over_pieces(tmp_path):
    from compose.data import piece_tokens
    from compose.evaluate import bootstrap_interval, token_nll_per_event
    from compose.growth import extend_vocabulary

    model = build_model(dataclasses.replace(TINY, attention_span=16))
    pieces = [piece_tokens(apply_sustain(read_note_sequence(make_midi(tmp_path / f"{i}.mid", phrase(i, 5.0)))))
              for i in range(3)]
    slow = token_nll_per_event(model, pieces, 32, per_piece=True)
    fast = token_nll_per_event(model, pieces, 32, in_grammar=False, per_piece=True)
    assert fast["nll_per_event"] == pytest.approx(slow["nll_per_event"], abs=1e-5) and fast["events"] == slow["events"]
    np.testing.assert_allclose(fast["piece_nll"], slow["piece_nll"], rtol=1e-5)
    # Conditioning tokens lead each chunk and are not scored: no prefix, the same figure.
    empty = token_nll_per_event(model, pieces, 32, in_grammar=False, prefixes=[np.zeros(0, np.int32)] * 3)
    assert empty["nll_per_event"] == pytest.approx(fast["nll_per_event"], abs=1e-6)
    led = token_nll_per_event(extend_vocabulary(model), pieces, 32, in_grammar=False,
                              prefixes=[np.array([VOCAB_SIZE + 4, VOCAB_SIZE + 18], np.int32)] * 3)
    assert led["events"] == fast["events"] and led["nll_per_event"] != pytest.approx(fast["nll_per_event"], abs=1e-6)
    low, high = bootstrap_interval(fast["piece_nll"], fast["piece_events"])
    assert low <= fast["nll_per_event"] <= high and low < high
    # One group holding every piece: no spread to draw from.
    assert bootstrap_interval(fast["piece_nll"], fast["piece_events"], groups=["a"] * 3) == pytest.approx(
        (fast["nll_per_event"],) * 2)


# Infilling (compose/infill.py).

def note_rows(notes):
    return sorted((round(n["onset_s"], 3), round(n["offset_s"], 3), int(n["pitch"]), int(n["velocity"]))
                  for n in notes)


@pytest.mark.slow
def test_infill_keeps_the_music_around_the_gap_and_writes_the_gap_within_it(tmp_path):
    from compose.infill import infill

    keras.utils.set_random_seed(11)
    sampler = Sampler(build_model(dataclasses.replace(TINY, sequence_length=256)), chunk=8)
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", phrase(4, 9.0))))
    result = infill(sampler, piece, 3.0, 5.5, context_seconds=2.0, after_seconds=2.0, candidates=3, seed=2,
                    max_tokens=2000)
    original, filled = notes_from_sequence(piece), notes_from_sequence(result.piece)
    outside = lambda notes: notes[(notes["onset_s"] < 3.0) | (notes["onset_s"] >= 5.5)]  # noqa: E731
    assert note_rows(outside(filled)) == note_rows(outside(original))  # untouched, to the millisecond
    new = notes_from_sequence(result.new_notes)
    assert len(new) and note_rows(filled[(filled["onset_s"] >= 3.0) & (filled["onset_s"] < 5.5)]) == note_rows(new)
    assert new["onset_s"].min() >= 3.0 - 1e-9 and new["offset_s"].max() <= 5.5 + 1e-9  # released by the gap's end
    assert len(result.scores) == 3 and result.scores[result.chosen] == max(result.scores)
    assert all(np.isfinite(result.scores)) and len(set(result.scores)) == 3  # different candidates, each scored
    again = infill(sampler, piece, 3.0, 5.5, context_seconds=2.0, after_seconds=2.0, candidates=3, seed=2,
                   max_tokens=2000)
    assert note_rows(notes_from_sequence(again.piece)) == note_rows(filled)  # a seed reproduces it


def test_the_music_after_the_gap_is_scored_as_a_naive_pass_scores_it(tmp_path):
    """The batched, padded, left-cut scoring equals log-probabilities summed from one unpadded call."""
    from compose.evaluate import log_softmax
    from compose.infill import suffix_log_likelihoods

    keras.utils.set_random_seed(12)
    model = build_model(TINY)  # 64 tokens: the context must be cut from the left to fit
    sampler = Sampler(model)
    rng = np.random.default_rng(12)
    context, after = rng.integers(2, VOCAB_SIZE, 50).astype(np.int32), rng.integers(2, VOCAB_SIZE, 10).astype(np.int32)
    gaps = [rng.integers(2, VOCAB_SIZE, n).astype(np.int32) for n in (5, 20)]
    scores = suffix_log_likelihoods(sampler, np.zeros(0, np.int32), context, gaps, after)
    for gap, score in zip(gaps, scores):
        row = np.concatenate([context, gap, after])[-64:]
        log_probs = log_softmax(np.asarray(model(row[None]), np.float64)[0])
        naive = sum(log_probs[i - 1, row[i]] for i in range(len(row) - len(after[:16]), len(row)))
        assert score == pytest.approx(naive, abs=1e-3)


def test_the_context_before_a_gap_lasts_up_to_its_start_with_every_key_released(tmp_path):
    from compose.infill import completed, context_tokens, steps_of

    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", [(0.5, 4.0, 60, 80), (1.0, 1.2, 64, 80)])))
    context = context_tokens(piece, 2.0, 10.0)
    assert steps_of(context) == 200 and sounding_at_end(context) == 0  # the held C4 cut at the gap's start
    short = encode(read_note_sequence(make_midi(tmp_path / "q.mid", [(0.0, 0.3, 62, 70)])), sustain=False)[:2]
    padded = completed(short, 1.0, context)  # a sampling cut short by its budget: ended and padded
    assert steps_of(padded) == 100 and sounding_at_end(padded, context) == 0


def test_infill_refuses_a_gap_with_nothing_after_or_backwards(tmp_path):
    from compose.infill import infill
    from stages.contract import InputError

    sampler = Sampler(build_model(TINY))
    piece = apply_sustain(read_note_sequence(make_midi(tmp_path / "p.mid", phrase(5, 4.0))))
    with pytest.raises(InputError, match="before it ends"):
        infill(sampler, piece, 2.0, 1.0)
    with pytest.raises(InputError, match="no note starts after"):
        infill(sampler, piece, 10.0, 12.0)


@pytest.mark.slow
def test_cli_infills_a_stretch_of_each_input(tmp_path, capsys):
    from pipeline import main

    checkpoint = tmp_path / "tiny.keras"
    build_model(TINY).save(checkpoint)
    make_midi(tmp_path / "in" / "piece.mid", phrase(6, 8.0))
    assert main(["compose", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(checkpoint),
                 "--infill", "2", "4", "--candidates", "2", "--primer-seconds", "2", "--plot"]) == 0
    original = notes_from_sequence(apply_sustain(read_note_sequence(tmp_path / "in" / "piece.mid")))
    filled = notes_from_sequence(read_note_sequence(tmp_path / "out" / "piece.midi"))
    assert note_rows(original[original["onset_s"] >= 4.0]) == note_rows(filled[filled["onset_s"] >= 4.0])
    assert (tmp_path / "out" / "piece.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["compose", str(tmp_path / "in"), str(tmp_path / "bad"), "--infill", "4", "2"]) == 2
    assert "START before END" in capsys.readouterr().err
