"""Causal self-attention with learned relative-position logits (Shaw et al. 2018), computed with
the memory-efficient "skewing" of the Music Transformer (Huang et al. 2018).

For queries Q (B, H, L, D) and one learned embedding per distance E (max_distance, D), the
relative logit of query i and key j <= i is q_i . E[min(i - j, max_distance - 1)]. Multiplying Q
by the L embeddings ordered from distance L-1 down to 0 gives R = Q E_L^T (B, H, L, L) with
R[i, m] for relative position m - (L - 1); padding one zero column on the left, reshaping to
(L + 1, L) and dropping the first row moves R[i, L - 1 + j - i] to column j. That needs O(L D)
extra memory for the embeddings instead of the O(L^2 D) of gathering one per (i, j) pair.
With `per_head`, each head has its own embeddings E_h (H, max_distance, D), as Tensor2Tensor's
default for the Music Transformer; otherwise a layer's heads share one set.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

PACKAGE = "wave2midi2wave.compose"


def skew(relative_logits):
    """(B, H, L, L) logits by relative position (column m = position m - (L-1)) -> (B, H, L, L)
    logits by key (column j); entries above the diagonal are meaningless (masked later)."""
    batch, heads, length = ops.shape(relative_logits)[0], ops.shape(relative_logits)[1], ops.shape(relative_logits)[2]
    padded = ops.pad(relative_logits, [[0, 0], [0, 0], [0, 0], [1, 0]])  # (B, H, L, L + 1)
    reshaped = ops.reshape(padded, (batch, heads, length + 1, length))
    return reshaped[:, :, 1:, :]


def causal_mask(length, span: int = 0):
    """(L, L) bool: key j visible to query i when j <= i (and, with a span, i - j < span)."""
    rows = ops.expand_dims(ops.arange(length), 1)
    cols = ops.expand_dims(ops.arange(length), 0)
    visible = cols <= rows
    return ops.logical_and(visible, rows - cols < span) if span else visible


@keras.saving.register_keras_serializable(package=PACKAGE)
class CausalSelfAttention(layers.Layer):
    """Multi-head causal self-attention, relative (default) or plain.

    Input shape: (batch, length, model_dim). Output shape: (batch, length, model_dim).
    `step` attends one new position to a key/value cache, for incremental decoding. With a
    `span`, each position attends only to the latest `span` positions (itself included; sliding-
    window attention), so a model trained on crops of `span` tokens meets no attention wider than
    it learned on a longer sequence; 0 attends to every earlier position. `per_head`: one set of
    distance embeddings per head instead of one shared by the heads.
    """

    def __init__(self, num_heads: int, model_dim: int, max_distance: int = 2048, relative: bool = True,
                 dropout: float = 0.0, span: int = 0, per_head: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.model_dim, self.max_distance = num_heads, model_dim, max_distance
        self.relative, self.dropout_rate, self.span, self.per_head = relative, dropout, span, per_head
        self.head_dim = model_dim // num_heads
        self.qkv = layers.Dense(3 * model_dim, name="qkv")
        self.out = layers.Dense(model_dim, name="out")
        self.dropout = layers.Dropout(dropout)

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.out.build(tuple(input_shape[:-1]) + (self.model_dim,))
        if self.relative:
            # One embedding per distance 0 .. max_distance-1, shared by the heads or one set per head.
            shape = (self.num_heads,) * self.per_head + (self.max_distance, self.head_dim)
            self.distance_embeddings = self.add_weight(
                name="distance_embeddings", shape=shape,
                initializer=keras.initializers.RandomNormal(stddev=self.head_dim ** -0.5))
        super().build(input_shape)

    def _heads(self, x):
        """(B, L, H * D) -> (B, H, L, D)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (batch, length, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def _merge(self, x):
        """(B, H, L, D) -> (B, L, H * D)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, self.model_dim))

    def _embeddings_of(self, distances):
        """(T,) distances -> (T, D) embeddings, or (H, T, D) per head (clipped to the longest learned)."""
        distances = ops.minimum(distances, self.max_distance - 1)
        return ops.take(self.distance_embeddings, distances, axis=1 if self.per_head else 0)

    def _relative_logits(self, q, embeddings):
        """q (B, H, Lq, D) . embeddings (T, D) or (H, T, D) -> (B, H, Lq, T)."""
        if self.per_head:
            return ops.einsum("bhqd,htd->bhqt", q, embeddings)
        return ops.matmul(q, ops.transpose(embeddings))

    def call(self, x, training=False):
        length = ops.shape(x)[1]
        q, k, v = (self._heads(t) for t in ops.split(self.qkv(x), 3, axis=-1))  # (B, H, L, D) each
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, H, L, L)
        if self.relative:
            # Row m: the embedding of distance L-1-m.
            by_position = self._relative_logits(q, self._embeddings_of(ops.arange(length - 1, -1, -1)))  # (B, H, L, L)
            logits = logits + skew(by_position)
        logits = ops.cast(logits, "float32") / math.sqrt(self.head_dim)  # softmax in float32 under mixed precision
        logits = ops.where(causal_mask(length, self.span), logits, ops.full_like(logits, -1e9))
        weights = self.dropout(ops.cast(ops.softmax(logits, axis=-1), v.dtype), training=training)
        return self.out(self._merge(ops.matmul(weights, v)))

    def keys_values(self, x):
        """(B, L, model_dim) -> keys and values (B, H, L, D) each, as `step` caches them."""
        _, k, v = (self._heads(t) for t in ops.split(self.qkv(x), 3, axis=-1))
        return k, v

    def step(self, x, cache_k, cache_v, position):
        """One new position. x: (B, 1, model_dim); caches: (B, H, T, D) ring buffers, position p
        in slot p mod T, holding the keys and values of the latest T positions before `position`
        (all of them while position < T). Returns (output (B, 1, model_dim), new caches). The
        newest query's relative logits need no skewing: each key simply takes the embedding of its
        distance. With T >= span, decoding goes on past T positions exactly as one long pass."""
        q, k, v = (self._heads(t) for t in ops.split(self.qkv(x), 3, axis=-1))  # (B, H, 1, D)
        capacity = ops.shape(cache_k)[2]
        slot = ops.mod(position, capacity)
        cache_k = ops.slice_update(cache_k, (0, 0, slot, 0), k)
        cache_v = ops.slice_update(cache_v, (0, 0, slot, 0), v)
        distances = ops.mod(position - ops.arange(capacity), capacity)  # to the latest position in each slot
        logits = ops.matmul(q, ops.transpose(cache_k, (0, 1, 3, 2)))  # (B, H, 1, T)
        if self.relative:
            logits = logits + self._relative_logits(q, self._embeddings_of(distances))
        logits = ops.cast(logits, "float32") / math.sqrt(self.head_dim)
        visible = distances <= position  # slots not yet written hold no position
        if self.span:
            visible = ops.logical_and(visible, distances < self.span)
        logits = ops.where(visible, logits, ops.full_like(logits, -1e9))
        output = ops.matmul(ops.cast(ops.softmax(logits, axis=-1), cache_v.dtype), cache_v)
        return self.out(self._merge(output)), cache_k, cache_v

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "model_dim": self.model_dim,
                "max_distance": self.max_distance, "relative": self.relative, "dropout": self.dropout_rate,
                "span": self.span, "per_head": self.per_head}
