"""Function-preserving changes of a trained Music Transformer: the changed model computes what
the trained one did, and training goes on from there with more capacity or more tokens.

- `grow`: deeper (progressive stacking). Each new block is a copy of the block before it whose
  two residual outputs (attention projection, feed-forward output) start at zero. New blocks are
  spread evenly: growing 4 blocks to 6 puts a copy after the 2nd and the 4th.
- `widen`: twice the model and feed-forward width (Net2Net). Every unit is duplicated: the
  residual stream x becomes [x, x] (a layer norm of it gives [n, n]); each head keeps its place
  and doubles its size, [q, q], [k, k], [v, v]; each feed-forward unit appears twice. A layer
  that writes a duplicated quantity writes both copies; a layer that reads one splits each weight
  between the two copies at a random ratio, so the sum it computes is unchanged, yet the copies
  take different gradients and grow apart in training (with an even split they would stay twins
  forever). Queries are scaled by 1/sqrt(2): a head's dot products double while its scale
  1/sqrt(head size) shrinks by sqrt(2) only. The heads' count stays, so the relative-position
  embeddings double in size too.
- `extend_vocabulary`: room for the conditioning tokens (compose/vocabulary.py). Their
  embeddings start small and random; their logits start at -30 (a probability under 1e-13 next
  to any event), so the model scores and samples the music as before until trained with them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from compose.model import MusicTransformer, build_model
from compose.vocabulary import CONDITIONED_VOCAB_SIZE
from stages.contract import save_model_atomic

NEW_TOKEN_LOGIT = -30.0


def source_blocks(old: int, new: int) -> list[tuple[int, bool]]:
    """For each of `new` blocks: (index of the old block it copies, whether it is a new copy)."""
    plan, extra = [], new - old
    for i in range(old):
        plan.append((i, False))
        # After old block i, as many copies as bring the count to round((i + 1) * extra / old).
        plan += [(i, True)] * (round((i + 1) * extra / old) - round(i * extra / old))
    return plan


def grow(model: MusicTransformer, num_layers: int) -> MusicTransformer:
    if num_layers < model.config.num_layers:
        raise ValueError(f"growing only adds blocks: the model has {model.config.num_layers}, asked for {num_layers}")
    grown = build_model(dataclasses.replace(model.config, num_layers=num_layers))
    for name in ("embedding", "final_norm", "logits"):
        getattr(grown, name).set_weights(getattr(model, name).get_weights())
    for target, (source, is_copy) in zip(grown.blocks, source_blocks(model.config.num_layers, num_layers)):
        target.set_weights(model.blocks[source].get_weights())
        if is_copy:  # silent until trained: the residual stream passes through unchanged
            for layer in (target.attention.out, target.ff_out):
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    return grown


def written_twice(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """The weights of an output that is duplicated: each copy gets the same ones."""
    return np.concatenate([weights, weights], axis=axis)


def read_split(weights: np.ndarray, rng: np.random.Generator, axis: int = 0) -> np.ndarray:
    """The weights reading a duplicated input: each one split between its two copies, a share
    drawn from [0.25, 0.75] for the first and the rest for the second."""
    share = rng.uniform(0.25, 0.75, weights.shape).astype(weights.dtype)
    return np.concatenate([share * weights, (1 - share) * weights], axis=axis)


def each_head_twice(weights: np.ndarray, heads: int) -> np.ndarray:
    """`written_twice` for each head's block of the last axis (head-major, as the attention lays
    it out), so that a head's doubled units stay together."""
    by_head = weights.reshape(weights.shape[:-1] + (heads, -1))
    return written_twice(by_head).reshape(weights.shape[:-1] + (-1,))


def widen(model: MusicTransformer, seed: int = 0) -> MusicTransformer:
    c = model.config
    if c.architecture != "relative":
        # The absolute baseline adds sinusoids of the model width, which no duplicate reproduces.
        raise ValueError(f"only the relative Music Transformer widens exactly, not {c.architecture!r}")
    rng = np.random.default_rng(seed)
    wide = build_model(dataclasses.replace(c, model_dim=2 * c.model_dim, ff_dim=2 * c.ff_dim))
    heads = c.num_heads

    (embedding,) = model.embedding.get_weights()
    # The model scales embeddings by sqrt(model_dim), which grows by sqrt(2).
    wide.embedding.set_weights([written_twice(embedding) / np.sqrt(2)])
    for old, new in zip(model.blocks, wide.blocks):
        for norm in ("attention_norm", "ff_norm"):
            getattr(new, norm).set_weights([written_twice(w) for w in getattr(old, norm).get_weights()])
        kernel, bias = old.attention.qkv.get_weights()
        q_scale = np.repeat([1 / np.sqrt(2), 1.0, 1.0], c.model_dim).astype(kernel.dtype)  # queries only
        kernel, bias = kernel * q_scale, bias * q_scale
        # q, k and v side by side, each head-major: 3 * heads blocks, each doubled in place.
        new.attention.qkv.set_weights([read_split(each_head_twice(kernel, 3 * heads), rng),
                                       each_head_twice(bias, 3 * heads)])
        kernel, bias = old.attention.out.get_weights()
        # Each head's rows read its own doubled units.
        by_head = kernel.reshape(heads, c.model_dim // heads, c.model_dim)
        kernel = read_split(by_head, rng, axis=1).reshape(-1, c.model_dim)
        new.attention.out.set_weights([written_twice(kernel), written_twice(bias)])
        distances = keras.ops.convert_to_numpy(old.attention.distance_embeddings)
        new.attention.distance_embeddings.assign(written_twice(distances))
        kernel, bias = old.ff_in.get_weights()
        new.ff_in.set_weights([read_split(written_twice(kernel), rng), written_twice(bias)])
        kernel, bias = old.ff_out.get_weights()
        new.ff_out.set_weights([written_twice(read_split(kernel, rng)), written_twice(bias)])
    wide.final_norm.set_weights([written_twice(w) for w in model.final_norm.get_weights()])
    kernel, bias = model.logits.get_weights()
    wide.logits.set_weights([read_split(kernel, rng), bias])
    return wide


def extend_vocabulary(model: keras.Model, vocab_size: int = CONDITIONED_VOCAB_SIZE, seed: int = 0) -> keras.Model:
    """The model with `vocab_size` tokens, the new ones appended (any architecture)."""
    old = model.config.vocab_size
    if vocab_size < old:
        raise ValueError(f"the vocabulary only grows: the model has {old} tokens, asked for {vocab_size}")
    extended = build_model(dataclasses.replace(model.config, vocab_size=vocab_size))
    rng = np.random.default_rng(seed)
    weights = {id(v): w for v, w in zip(model.weights, model.get_weights())}
    for target, source in zip(extended.weights, model.weights, strict=True):
        value = weights[id(source)]
        if target.shape != source.shape:
            extra = vocab_size - old
            if source is model.embedding.embeddings:
                value = np.concatenate([value, rng.normal(0, 0.02, (extra, value.shape[1])).astype(value.dtype)])
            elif source is model.logits.kernel:
                value = np.concatenate([value, np.zeros((value.shape[0], extra), value.dtype)], axis=1)
            else:  # the logits' bias
                value = np.concatenate([value, np.full(extra, NEW_TOKEN_LOGIT, value.dtype)])
        target.assign(value)
    return extended


def starting_point(initial: Path, run_dir: Path, grow_layers: int | None = None, wider: bool = False,
                   conditioned: bool = False, seed: int = 0) -> Path:
    """The model a training run starts from: `initial` itself, or a copy grown to `grow_layers`
    blocks, widened, and given the conditioning tokens, as asked, saved once as
    run_dir/start.keras (a resumed run finds it there)."""
    if not (grow_layers or wider or conditioned):
        return Path(initial)
    start = Path(run_dir) / "start.keras"
    if start.exists():
        return start
    model = keras.saving.load_model(initial, compile=False)
    if grow_layers:
        model = grow(model, grow_layers)
    if wider:
        model = widen(model, seed)
    if conditioned and not model.config.conditioned:
        model = extend_vocabulary(model, seed=seed)
    start.parent.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, start)
    return start


def grow_from(settings) -> int:
    """`w2m2w compose-tools grow`."""
    from compose.weights import describe

    grown = grow(keras.saving.load_model(settings.model, compile=False), settings.layers)
    save_model_atomic(grown, settings.out)
    return describe(grown, settings.out)


def widen_from(settings) -> int:
    """`w2m2w compose-tools widen`."""
    from compose.weights import describe

    wide = widen(keras.saving.load_model(settings.model, compile=False), settings.seed)
    save_model_atomic(wide, settings.out)
    return describe(wide, settings.out)
