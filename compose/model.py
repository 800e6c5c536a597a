"""The Music Transformer (Huang et al. 2018) and its baselines, in Keras 3.

Decoder-only Transformer over performance-event tokens: token embedding -> N blocks of
(pre-norm causal self-attention with relative position logits, feed-forward) -> logits.
`architecture="absolute"` is the same network with sinusoidal absolute positions and plain
attention; `architecture="lstm"` is a Performance-RNN-style LSTM. `step` decodes one token at a
time against a key/value cache (Transformers only).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import layers, ops

from compose.attention import PACKAGE, CausalSelfAttention
from compose.config import ComposerConfig
from compose.vocabulary import PAD


def sinusoids(positions, dim: int):
    """(L,) positions -> (L, dim) sinusoidal encodings (Vaswani et al. 2017)."""
    half = dim // 2
    frequencies = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10_000.0) / max(half - 1, 1)))
    angles = ops.expand_dims(ops.cast(positions, "float32"), 1) * ops.expand_dims(frequencies, 0)
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderBlock(layers.Layer):
    """Pre-norm block: x + attention(norm(x)), then x + feed_forward(norm(x)).
    Input and output shape: (batch, length, model_dim)."""

    def __init__(self, num_heads, model_dim, ff_dim, max_distance, relative, dropout, span=0, per_head=False, **kwargs):
        super().__init__(**kwargs)
        self.settings = dict(num_heads=num_heads, model_dim=model_dim, ff_dim=ff_dim, max_distance=max_distance,
                             relative=relative, dropout=dropout, span=span, per_head=per_head)
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5)
        self.attention = CausalSelfAttention(num_heads, model_dim, max_distance, relative, dropout, span, per_head)
        self.ff_norm = layers.LayerNormalization(epsilon=1e-5)
        self.ff_in = layers.Dense(ff_dim, activation="gelu")
        self.ff_out = layers.Dense(model_dim)
        self.dropout = layers.Dropout(dropout)

    def call(self, x, training=False):
        x = x + self.dropout(self.attention(self.attention_norm(x), training=training), training=training)
        return x + self.dropout(self.ff_out(self.ff_in(self.ff_norm(x))), training=training)

    def step(self, x, cache_k, cache_v, position):
        attended, cache_k, cache_v = self.attention.step(self.attention_norm(x), cache_k, cache_v, position)
        x = x + attended
        return x + self.ff_out(self.ff_in(self.ff_norm(x))), cache_k, cache_v

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MusicTransformer(keras.Model):
    """tokens (batch, length) int -> logits (batch, length, vocab). Config inside the `.keras` file."""

    def __init__(self, config: dict | ComposerConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ComposerConfig.from_dict(config)
        self.config = config or ComposerConfig()
        c = self.config
        self.embedding = layers.Embedding(c.vocab_size, c.model_dim, name="tokens")
        self.blocks = [DecoderBlock(c.num_heads, c.model_dim, c.ff_dim, c.max_distance, c.architecture == "relative",
                                    c.dropout, c.attention_span, c.relative_per_head, name=f"block_{i}")
                       for i in range(c.num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5)
        # float32 logits also under mixed precision: the loss and sampling want their precision.
        self.logits = layers.Dense(c.vocab_size, name="logits", dtype="float32")
        self.dropout = layers.Dropout(c.dropout)

    def _embed(self, tokens, first_position):
        x = self.embedding(tokens) * math.sqrt(self.config.model_dim)
        if self.config.architecture == "absolute":
            length = ops.shape(tokens)[1]
            x = x + ops.cast(sinusoids(ops.arange(length) + first_position, self.config.model_dim), x.dtype)
        return x

    def call(self, tokens, training=False):
        x = self.dropout(self._embed(tokens, 0), training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self.logits(self.final_norm(x))

    def empty_cache(self, batch: int, capacity: int) -> list:
        """Zeroed key/value caches, one (k, v) pair of (B, H, capacity, D) per block."""
        c = self.config
        shape = (batch, c.num_heads, capacity, c.model_dim // c.num_heads)
        dtype = self.blocks[0].compute_dtype
        return [(ops.zeros(shape, dtype), ops.zeros(shape, dtype)) for _ in self.blocks]

    def prefill(self, tokens, capacity: int | None = None):
        """tokens (B, L) -> (logits after the last token (B, vocab), cache of the L positions,
        padded to `capacity` when given) in one pass."""
        x = self._embed(tokens, 0)
        length = ops.shape(tokens)[1]
        cache = []
        for block in self.blocks:
            k, v = block.attention.keys_values(block.attention_norm(x))
            if capacity is not None:
                padding = [[0, 0], [0, 0], [0, capacity - length], [0, 0]]
                k, v = ops.pad(k, padding), ops.pad(v, padding)
            cache.append((k, v))
            x = block(x)
        return self.logits(self.final_norm(x))[:, -1], cache

    def step(self, token, cache: list, position):
        """token (B, 1) at `position` -> (logits (B, vocab), updated cache)."""
        x = self._embed(token, position)
        updated = []
        for block, (cache_k, cache_v) in zip(self.blocks, cache):
            x, cache_k, cache_v = block.step(x, cache_k, cache_v, position)
            updated.append((cache_k, cache_v))
        return self.logits(self.final_norm(x))[:, 0], updated

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PerformanceRNN(keras.Model):
    """The LSTM baseline: tokens (batch, length) -> logits (batch, length, vocab)."""

    def __init__(self, config: dict | ComposerConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ComposerConfig.from_dict(config)
        self.config = config or ComposerConfig(architecture="lstm")
        c = self.config
        self.embedding = layers.Embedding(c.vocab_size, c.model_dim, name="tokens")
        self.lstms = [layers.LSTM(c.lstm_units, return_sequences=True, dropout=c.dropout, name=f"lstm_{i}")
                      for i in range(2)]
        self.logits = layers.Dense(c.vocab_size, name="logits", dtype="float32")

    def call(self, tokens, training=False):
        x = self.embedding(tokens)
        for lstm in self.lstms:
            x = lstm(x, training=training)
        return self.logits(x)

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}


def build_model(config: ComposerConfig) -> keras.Model:
    model_class = PerformanceRNN if config.architecture == "lstm" else MusicTransformer
    model = model_class(config, name=f"composer_{config.name}")
    model(np.zeros((1, 4), np.int32))  # creates every weight
    return model


def compile_model(model: keras.Model, learning_rate: float | None = None) -> keras.Model:
    """Adam with linear warm-up and cosine decay over the config's steps (or a plain
    `learning_rate` that a callback sets), global-norm clipping; cross-entropy that ignores
    padding. Compiled with XLA: under TensorFlow on a CPU a training step of the default model
    takes 1.5 s instead of 2.3 (one core), since XLA fuses the attention's elementwise work."""
    c = model.config
    schedule = learning_rate or keras.optimizers.schedules.CosineDecay(
        0.0, c.decay_steps, alpha=0.1, warmup_target=c.learning_rate, warmup_steps=c.warmup_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=c.clip_norm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD),
                  jit_compile=True)
    return model
