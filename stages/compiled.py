"""One compiled graph per function for the running Keras backend, so a hot loop is one call."""

from __future__ import annotations

from typing import Callable

import keras


def compiled(function: Callable, xla: bool = False) -> Callable:
    """`function` traced once (per input signature) by TensorFlow or JAX. `xla` asks TensorFlow
    for XLA too, which updates loop-carried buffers in place; JAX always compiles with XLA."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=xla, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function
