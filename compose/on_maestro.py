"""The composer on a MAESTRO-layout MIDI corpus (any version's metadata): a split's pieces with
their composers, training on the train split (selected on validation) as `w2m2w train compose`
trains, and NLL per event on a split as `w2m2w evaluate compose` scores. What the Wave2Midi2Wave
loop (flows/maestro_t.py) runs on a transcribed corpus and on the ground truth alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compose.config import TRAINING_FIELDS, ComposerConfig
from compose.data import _label, piece_tokens
from maestro.metadata import Dataset
from stages.io.midi import NoteSequence, apply_sustain, read_note_sequence


def load_split(root: Path | str, split: str) -> tuple[list[NoteSequence], list[str]]:
    """Sustain-extended pieces of one split, in metadata order, with each one's composer label
    ("" where unknown): `compose.data.load_labelled_pieces` for a MAESTRO-layout folder."""
    dataset = Dataset.open(root)
    records = dataset.select(splits=[split])
    pieces = [apply_sustain(read_note_sequence(dataset.midi_path(record))) for record in records]
    return pieces, [_label(record.canonical_composer) for record in records]


def training_config(config: str = "default", architecture: str = "relative", steps: int | None = None,
                    initial_weights: Path | str | None = None) -> ComposerConfig:
    """The config `w2m2w train compose --config CONFIG [--from INITIAL] --steps STEPS` trains: a
    --from model keeps its shape and takes the named config's training settings; the learning
    rate decays over `steps`."""
    named = ComposerConfig.named(config, architecture)
    if initial_weights is not None:
        import keras

        import compose.model  # noqa: F401  (registers the composers' classes for loading)

        trained = keras.saving.load_model(initial_weights, compile=False).config
        named = dataclasses.replace(trained, **{field: getattr(named, field) for field in TRAINING_FIELDS})
    return dataclasses.replace(named, decay_steps=steps) if steps else named


def train_on(root: Path | str, run_dir: Path | str, config: ComposerConfig, steps: int,
             initial_weights: Path | str | None = None, seed: int = 0, steps_per_epoch: int = 250,
             validation_pieces: int = 24) -> Path:
    """Train (or go on training `initial_weights`) on ROOT's train split for `steps`, judged after
    each epoch on an even spread of its validation split (its train split where it has none);
    a rerun resumes. Returns RUN_DIR/best.keras."""
    from compose.conditioning import composer_index
    from compose.corpus import even_spread
    from compose.train import train

    train_pieces, composers = load_split(root, "train")
    validation, validation_composers = load_split(root, "validation")
    if not any(p.notes for p in validation):
        validation, validation_composers = train_pieces, composers
    with_notes = [i for i, p in enumerate(train_pieces) if p.notes]
    if not with_notes:
        raise ValueError(f"{root}: no notes in the train split to learn from")
    kept = even_spread([i for i, p in enumerate(validation) if p.notes], validation_pieces)
    train([train_pieces[i] for i in with_notes], [validation[i] for i in kept], run_dir, config, steps,
          min(steps_per_epoch, steps), seed, initial_weights=Path(initial_weights) if initial_weights else None,
          composers=[composer_index(composers[i]) for i in with_notes],
          validation_composers=[composer_index(validation_composers[i]) for i in kept])
    return Path(run_dir) / "best.keras"


def score_split(checkpoint: Path | str, root: Path | str, split: str = "test", chunk_length: int | None = None,
                max_pieces: int | None = None, raw_only: bool = False) -> dict:
    """NLL per event (nats) of a composer on ROOT's split, as `w2m2w evaluate compose` reports it:
    non-overlapping chunks of its training length (or `chunk_length`), a bootstrap 95% interval
    over the pieces, and (unless `raw_only`) the figure renormalized over the grammar."""
    import keras

    import compose.model  # noqa: F401  (registers the composers' classes for loading)
    from compose.corpus import even_spread
    from compose.evaluate import bootstrap_interval, token_nll_per_event

    pieces, _ = load_split(root, split)
    tokens = [piece_tokens(p) for p in even_spread([p for p in pieces if p.notes], max_pieces)]
    if not tokens:
        raise ValueError(f"{root}: no notes in the {split} split to score")
    model = keras.saving.load_model(checkpoint, compile=False)
    result = token_nll_per_event(model, tokens, chunk_length, in_grammar=not raw_only, per_piece=True)
    interval = bootstrap_interval(result.pop("piece_nll"), result.pop("piece_events"))
    result.pop("piece_nll_in_grammar", None)
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()},
            "nll_per_event_interval_95": [round(bound, 4) for bound in interval], "pieces": len(tokens),
            "chunk_tokens": chunk_length or model.config.sequence_length}
