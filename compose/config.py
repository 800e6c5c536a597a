"""Sizes and settings of the composers: the Music Transformer and its two baselines."""

from __future__ import annotations

import dataclasses

from compose.vocabulary import CONDITIONED_VOCAB_SIZE, VOCAB_SIZE
from stages import options
from stages.config import JsonConfig
from stages.settings import Settings, setting

ARCHITECTURES = ("relative", "absolute", "lstm")
# What sets how a composer trains rather than what it is: a run that goes on from a trained
# composer keeps that model's shape and takes these from its own config.
TRAINING_FIELDS = ("sequence_length", "batch_size", "learning_rate", "warmup_steps", "decay_steps", "clip_norm")


@dataclasses.dataclass(frozen=True)
class ComposerConfig(JsonConfig):
    name: str = "default"
    # "relative": Music Transformer; "absolute": the same with sinusoidal positions instead;
    # "lstm": Performance-RNN-style LSTM.
    architecture: str = "relative"
    # Sized for training on a CPU: under 1M parameters learned most in the first hours here; the
    # shipped default has since been grown to 8 blocks (`w2m2w compose-tools grow`) as training
    # went on, where compute-optimal scaling puts a larger model.
    num_layers: int = 4
    num_heads: int = 8
    model_dim: int = 128
    ff_dim: int = 512
    dropout: float = 0.0  # the default sees each training token about once: nothing to regularize
    max_distance: int = 512  # longest relative distance with its own embedding
    # One set of distance embeddings per head (Tensor2Tensor's default, the paper's model) instead
    # of one shared by a layer's heads.
    relative_per_head: bool = False
    # VOCAB_SIZE: performance events only (every model trained before conditioning, which loads
    # as it was); CONDITIONED_VOCAB_SIZE: also composer and note-density tokens.
    vocab_size: int = VOCAB_SIZE
    # Each position attends to at most this many latest positions (0: all; stacked layers reach
    # further back). At the crop length, a model trained on crops runs on longer sequences (the
    # paper's 2048-token evaluation chunks) with attention no wider than it learned.
    attention_span: int = 0
    lstm_units: int = 256  # two layers: about as many parameters as the default Transformer
    # Training: random crops of sequence_length tokens.
    sequence_length: int = 512
    batch_size: int = 8  # small batches: more updates in a short budget
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    decay_steps: int = 1_750  # cosine decay over the whole budgeted run
    clip_norm: float = 1.0

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        if self.vocab_size not in (VOCAB_SIZE, CONDITIONED_VOCAB_SIZE):
            raise ValueError(f"vocab_size must be {VOCAB_SIZE} or {CONDITIONED_VOCAB_SIZE} (with conditioning)")

    @property
    def conditioned(self) -> bool:
        """Whether the model knows the composer and note-density tokens."""
        return self.vocab_size >= CONDITIONED_VOCAB_SIZE

    @classmethod
    def paper(cls) -> "ComposerConfig":
        """Huang et al. 2018's model: 6 layers of 512, feed-forward 1024, 8 heads with their own
        relative embeddings, dropout 0.1, full attention over 2048-token crops; conditioned."""
        return cls(name="paper", num_layers=6, num_heads=8, model_dim=512, ff_dim=1024, dropout=0.1,
                   max_distance=2048, relative_per_head=True, attention_span=0, sequence_length=2048,
                   batch_size=8, lstm_units=1024, warmup_steps=4_000, decay_steps=200_000,
                   vocab_size=CONDITIONED_VOCAB_SIZE)

    @classmethod
    def default(cls) -> "ComposerConfig":
        return cls(attention_span=512, num_layers=8)

    @classmethod
    def tiny(cls) -> "ComposerConfig":
        return cls(name="tiny", num_layers=2, num_heads=2, model_dim=32, ff_dim=64, max_distance=64,
                   lstm_units=32, sequence_length=64, batch_size=4, warmup_steps=2, decay_steps=100)

    @classmethod
    def named(cls, name: str, architecture: str = "relative") -> "ComposerConfig":
        base = super().named(name)
        suffix = "" if architecture == "relative" else f"-{architecture}"
        return dataclasses.replace(base, architecture=architecture, name=base.name + suffix)


@dataclasses.dataclass(frozen=True)
class SamplingSettings(Settings):
    """How the composer samples, declared once: `w2m2w compose` derives its options from these
    fields; the `Composer` (and so the stage), `compose()` and the Prefect task take the object.
    `composer` and `notes_per_second` steer a model trained with conditioning (None: free)."""

    seconds: float = setting(30.0, options.POSITIVE,
                             help="length of the new music (default: 30); it ends there with every note released")
    max_tokens: int = setting(4096, options.COUNT, help="at most this many new events (default: 4096)")
    temperature: float = setting(1.0, options.COMPOSE_TEMPERATURE)
    top_k: int = setting(0, options.TOP_K, help="sample among the k likeliest events (0: all)")
    top_p: float = setting(0.95, options.TOP_P, help="nucleus sampling mass (default: 0.95)")
    seed: int = setting(0, options.SEED, help="random seed: the same seed gives the same music")
    in_grammar: bool = setting(
        True, flag="--no-grammar",
        help="sample from the model as it is, also events that encoded music never holds (a key struck again while it "
             "sounds, a silent key released); by default the model is renormalized over the events the grammar allows")
    composer: str | None = setting(
        None, help="write in the manner of this composer (ASAP's: Bach, Beethoven, Chopin, Liszt, Schubert, ...)")
    notes_per_second: float | None = setting(
        None, options.NOTES_PER_SECOND,
        help="how dense the new music is, about (one of 5 bands: under 8, 8-11.5, 11.5-14.5, 14.5-18.5, over 18.5)")
    include_primer: bool = setting(
        False, help="write the primer followed by the new music (default: the new music alone)")

    def sampler_arguments(self) -> dict:
        """What `compose.sample.Sampler.generate` takes of these settings."""
        return {name: getattr(self, name) for name in ("seconds", "max_tokens", "temperature", "top_k", "top_p",
                                                       "seed", "in_grammar")}
