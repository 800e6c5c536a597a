"""Onsets and Frames (Hawthorne et al. 2018; the MAESTRO-paper version, 2019) in Keras 3.

Four heads over the 88 keys, each with its own acoustic model (convolutions over the log-mel
spectrogram):
  onsets, offsets:  acoustic model -> BiLSTM -> logits
  velocities:       acoustic model -> linear (MIDI velocity / 127 at onsets)
  frames:           acoustic model -> sigmoid, concatenated with the onset and offset
                    probabilities (gradient stopped) -> BiLSTM -> logits
so a frame prediction is conditioned on, and at decoding gated by, the onsets.
Written with keras.layers and keras.ops only, so it trains under TensorFlow and under JAX.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from stages.io.midi import PIANO_KEYS
from transcribe.config import PACKAGE, TranscriberConfig

HEADS = ("onsets", "offsets", "frames", "velocities")


@keras.saving.register_keras_serializable(package=PACKAGE)
class AcousticModel(layers.Layer):
    """Convolutions over time x frequency, pooled in frequency, then a dense layer per frame.

    Input shape: (batch, frames, mel_bins). Output shape: (batch, frames, dense_units).
    """

    def __init__(self, conv_channels=(48, 48, 96), dense_units=768, dropout=0.25, **kwargs):
        super().__init__(**kwargs)
        self.conv_channels, self.dense_units, self.dropout = tuple(conv_channels), dense_units, dropout
        c1, c2, c3 = self.conv_channels
        self.convs = [layers.Conv2D(c, 3, padding="same", use_bias=False) for c in (c1, c2, c3)]
        self.norms = [layers.BatchNormalization() for _ in range(3)]
        self.pools = [layers.MaxPooling2D(pool_size=(1, 2)) for _ in range(2)]
        self.conv_dropouts = [layers.Dropout(dropout) for _ in range(2)]
        self.dense = layers.Dense(dense_units, activation="relu")
        self.dense_dropout = layers.Dropout(min(0.5, 2 * dropout))

    def call(self, log_mel, training=False):
        x = ops.expand_dims(log_mel, -1)  # (B, T, F, 1)
        for i in range(3):
            x = ops.relu(self.norms[i](self.convs[i](x), training=training))
            if i >= 1:  # pool after the second and third convolutions, as in the paper
                x = self.conv_dropouts[i - 1](self.pools[i - 1](x), training=training)
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, frames, x.shape[2] * x.shape[3]))  # (B, T, F/4 * C)
        return self.dense_dropout(self.dense(x), training=training)

    def get_config(self):
        return {**super().get_config(), "conv_channels": self.conv_channels,
                "dense_units": self.dense_units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package=PACKAGE)
class OnsetsAndFrames(keras.Model):
    """log-mel (batch, frames, mel_bins) -> dict of (batch, frames, 88): onset, offset and frame
    logits, and velocities. The config travels inside the saved `.keras` file."""

    def __init__(self, config: dict | TranscriberConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = TranscriberConfig.from_dict(config)
        self.config = config or TranscriberConfig()
        c = self.config

        def acoustic(name):
            return AcousticModel(c.conv_channels, c.dense_units, c.dropout, name=f"{name}_acoustic")

        # Bidirectional copies the LSTM it is given through Keras serialization, which, while a
        # model loads, remembers objects by id(): a later template that reuses a freed one's id
        # would come back as that earlier copy (a backward LSTM), and loading would fail at
        # random. Keeping every template alive until the model is built keeps the ids apart.
        templates = []

        def bilstm(name):
            templates.append(layers.LSTM(c.lstm_units, return_sequences=True))
            return layers.Bidirectional(templates[-1], name=f"{name}_lstm")

        self.onset_acoustic, self.onset_lstm = acoustic("onset"), bilstm("onset")
        self.onset_out = layers.Dense(PIANO_KEYS, name="onset_logits")
        self.offset_acoustic, self.offset_lstm = acoustic("offset"), bilstm("offset")
        self.offset_out = layers.Dense(PIANO_KEYS, name="offset_logits")
        self.velocity_acoustic = acoustic("velocity")
        self.velocity_out = layers.Dense(PIANO_KEYS, name="velocity")
        self.frame_acoustic = acoustic("frame")
        self.frame_activation = layers.Dense(PIANO_KEYS, activation="sigmoid", name="frame_activation")
        self.frame_lstm = bilstm("frame")
        self.frame_out = layers.Dense(PIANO_KEYS, name="frame_logits")

    def call(self, log_mel, training=False):
        onsets = self.onset_out(self.onset_lstm(self.onset_acoustic(log_mel, training=training)))
        offsets = self.offset_out(self.offset_lstm(self.offset_acoustic(log_mel, training=training)))
        velocities = self.velocity_out(self.velocity_acoustic(log_mel, training=training))
        activation = self.frame_activation(self.frame_acoustic(log_mel, training=training))
        # The frame stack sees the onset and offset predictions but does not train them.
        gate = [ops.sigmoid(ops.stop_gradient(onsets)), ops.sigmoid(ops.stop_gradient(offsets))]
        frames = self.frame_out(self.frame_lstm(ops.concatenate([activation, *gate], axis=-1)))
        return {"onsets": onsets, "offsets": offsets, "frames": frames, "velocities": velocities}

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}


@keras.saving.register_keras_serializable(package=PACKAGE)
def velocity_loss(y_true, y_pred):
    """Squared error only where an onset is labelled; elsewhere y_true holds -1 (masked)."""
    mask = ops.cast(y_true >= 0, y_pred.dtype)
    return ops.sum(mask * ops.square(y_true - y_pred)) / ops.maximum(ops.sum(mask), 1.0)


def build_model(config: TranscriberConfig) -> OnsetsAndFrames:
    model = OnsetsAndFrames(config, name=f"onsets_and_frames_{config.name}")
    model(ops.zeros((1, 8, config.mel_bins)))  # creates every weight
    return model


@keras.saving.register_keras_serializable(package=PACKAGE)
class KeyWeightedCrossentropy(keras.losses.Loss):
    """Log-loss from logits over (batch, frames, 88 keys), the keys below MIDI pitch `below`
    weighted `weight` times the others; the weights are scaled to mean 1, so the loss keeps the
    unweighted one's scale (and equals it at weight 1)."""

    def __init__(self, below: int = 48, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.below, self.weight = int(below), float(weight)
        weights = [self.weight if 21 + key < self.below else 1.0 for key in range(PIANO_KEYS)]
        self.key_weights = [w * PIANO_KEYS / sum(weights) for w in weights]

    def call(self, y_true, y_pred):
        per_key = ops.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred, from_logits=True)
        return ops.mean(per_key * ops.convert_to_tensor(self.key_weights, y_pred.dtype), axis=-1)

    def get_config(self):
        return {**super().get_config(), "below": self.below, "weight": self.weight}


def compile_model(model: OnsetsAndFrames) -> OnsetsAndFrames:
    """Adam with exponential decay and gradient clipping; log-loss for onsets, offsets and
    frames (for onsets and frames weighted towards the low register when the config asks),
    masked squared error for velocities."""
    c = model.config
    schedule = keras.optimizers.schedules.ExponentialDecay(c.learning_rate, c.decay_steps, c.decay_rate)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    keyed = bce if c.low_register_weight == 1.0 else KeyWeightedCrossentropy(c.low_register_below,
                                                                             c.low_register_weight)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=c.clip_norm),
                  loss={"onsets": keyed, "offsets": bce, "frames": keyed, "velocities": velocity_loss})
    return model


def probabilities(outputs: dict) -> dict:
    """Model outputs -> numpy probabilities (onsets, offsets, frames) and velocities in [0, 1]."""
    result = {name: ops.convert_to_numpy(ops.sigmoid(outputs[name])) for name in ("onsets", "offsets", "frames")}
    result["velocities"] = ops.convert_to_numpy(ops.clip(outputs["velocities"], 0.0, 1.0))
    return result
