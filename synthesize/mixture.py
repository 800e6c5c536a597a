"""Output distributions of the WaveNet: a discretized mixture of logistics over 16-bit samples
(Salimans et al. 2017, as Parallel WaveNet and the Midi2Wave paper use), or 8-bit mu-law.

Samples live in [-1, 1]; the 16-bit grid has 65,536 bins of width 2 / 65535.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

BINS = 65_536
HALF_BIN = 1.0 / (BINS - 1)
LOG_SCALE_MIN = -14.0


def split_parameters(params, mixtures: int):
    """(..., 3K) -> logits, means, log scales (..., K) each."""
    return (params[..., :mixtures], params[..., mixtures: 2 * mixtures],
            ops.maximum(params[..., 2 * mixtures:], LOG_SCALE_MIN))


def logistic_mixture_nll(targets, params, mixtures: int):
    """Mean negative log-likelihood (nats per sample) of targets (...,) in [-1, 1]."""
    logits, means, log_scales = split_parameters(params, mixtures)
    x = ops.expand_dims(targets, -1)
    centred = x - means
    inverse_scale = ops.exp(-log_scales)
    cdf_plus = ops.sigmoid(inverse_scale * (centred + HALF_BIN))
    cdf_minus = ops.sigmoid(inverse_scale * (centred - HALF_BIN))
    # log P(bin) with care at the edges (the outermost bins take the tails) and where the
    # difference of CDFs underflows (use the density at the centre instead).
    log_cdf_plus = (inverse_scale * (centred + HALF_BIN)) - ops.softplus(inverse_scale * (centred + HALF_BIN))
    log_one_minus_cdf_minus = -ops.softplus(inverse_scale * (centred - HALF_BIN))
    mid = inverse_scale * centred
    log_pdf_mid = mid - log_scales - 2.0 * ops.softplus(mid)
    probability = cdf_plus - cdf_minus
    log_in_bin = ops.where(probability > 1e-5, ops.log(ops.maximum(probability, 1e-12)),
                           log_pdf_mid + math.log(2 * HALF_BIN))
    log_probs = ops.where(x < -0.999, log_cdf_plus, ops.where(x > 0.999, log_one_minus_cdf_minus, log_in_bin))
    log_mixture = log_probs + ops.log_softmax(logits, axis=-1)
    return -ops.mean(ops.logsumexp(log_mixture, axis=-1))


def sample_logistic_mixture(params, mixtures: int, uniform_choice, uniform_value, temperature: float = 1.0):
    """One sample per row from (..., 3K) parameters, given two uniforms in (0, 1) per row
    (explicit noise keeps generation reproducible and compilable). A temperature below 1 divides
    the component logits and multiplies the logistic scales by it; 0 takes the likeliest
    component's mean, without noise."""
    logits, means, log_scales = split_parameters(params, mixtures)
    index = ops.argmax(logits, axis=-1) if temperature == 0 else inverse_cdf(logits / temperature, uniform_choice)
    chosen = ops.one_hot(index, mixtures)
    mean = ops.sum(means * chosen, axis=-1)
    scale = ops.exp(ops.sum(log_scales * chosen, axis=-1)) * temperature
    u = ops.clip(uniform_value, 1e-5, 1 - 1e-5)
    return ops.clip(mean + scale * (ops.log(u) - ops.log(1 - u)), -1.0, 1.0)


MU = 255


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> 0..255 mu-law classes."""
    compressed = np.sign(samples) * np.log1p(MU * np.abs(np.clip(samples, -1, 1))) / np.log1p(MU)
    return np.clip(np.round((compressed + 1) / 2 * MU), 0, MU).astype(np.int32)


def mulaw_decode(classes):
    """0..255 classes -> [-1, 1] floats (works on numpy arrays and backend tensors)."""
    compressed = ops.cast(classes, "float32") / MU * 2.0 - 1.0
    return ops.sign(compressed) * (ops.power(1.0 + MU, ops.abs(compressed)) - 1.0) / MU


def sample_mulaw(logits, uniform_choice, temperature: float = 1.0):
    """One class per row from (..., 256) logits, given one uniform in (0, 1) per row; logits
    divided by the temperature (0: the likeliest class)."""
    if temperature == 0:
        return ops.argmax(logits, axis=-1)
    return inverse_cdf(logits / temperature, uniform_choice)


def inverse_cdf(logits, uniform):
    """The category whose cumulative probability first exceeds `uniform` (one per row): an exact
    categorical sample from a single uniform number."""
    cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
    below = ops.cast(cumulative < ops.expand_dims(uniform, -1), "int32")
    return ops.minimum(ops.sum(below, axis=-1), logits.shape[-1] - 1)
