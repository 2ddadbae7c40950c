"""The classifier and its training loop, the same on one CPU, a GPU, or many TFJob workers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

INPUT_SHAPE = (28, 28)
CLASSES = 10


def build_model():
    """A small convolutional classifier for 28x28 grey images, compiled for training."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE, name="image"),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Reshape((*INPUT_SHAPE, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(CLASSES, name="logits"),
            keras.layers.Activation("softmax", dtype="float32", name="probabilities"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool):
    """A ``tf.data`` pipeline: shuffled (for training), batched, prefetched."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=0, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def train(
    arrays: dict[str, np.ndarray],
    model_dir: Path,
    epochs: int,
    batch_size: int,
    strategy=None,
    xla: bool = False,
) -> dict:
    """Train on ``arrays`` (mnist.npz layout), export a SavedModel to ``model_dir``, and return
    the metrics.

    The loop is a ``tf.function`` over ``strategy.run`` rather than ``model.fit``: Keras 3's
    ``fit`` cannot consume ``MultiWorkerMirroredStrategy`` datasets (keras-team/keras#20585),
    and one loop serves one CPU, a GPU and many TFJob workers alike. ``xla`` compiles the step
    with XLA when there is one replica (see :mod:`.device`); under mixed precision the loss is
    scaled by the optimizer Keras wraps for it. Under a multi-worker
    strategy every replica must call this (steps, evaluation and export are collective); only
    the chief's ``model_dir`` is kept.
    """
    import keras
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    global_batch = batch_size * strategy.num_replicas_in_sync
    with strategy.scope():
        model = build_model()
        optimizer = model.optimizer
        loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    train_data = strategy.experimental_distribute_dataset(
        dataset(arrays["x_train"], arrays["y_train"], global_batch, shuffle=True)
    )
    test_data = strategy.experimental_distribute_dataset(
        dataset(arrays["x_test"], arrays["y_test"], global_batch, shuffle=False)
    )

    def replica_loss(x, y, training: bool):
        probabilities = model(x, training=training)
        per_example = loss_fn(y, probabilities)
        correct = tf.cast(tf.equal(tf.argmax(probabilities, -1), tf.cast(y, tf.int64)), tf.float32)
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch), correct

    def replica_train_step(x, y):
        with tf.GradientTape() as tape:
            loss, correct = replica_loss(x, y, training=True)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss, tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    def replica_eval_step(x, y):
        loss, correct = replica_loss(x, y, training=False)
        return loss, tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    def reduce(values):
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    @tf.function(jit_compile=(xla and strategy.num_replicas_in_sync == 1) or None)
    def train_step(x, y):
        return reduce(strategy.run(replica_train_step, args=(x, y)))

    @tf.function
    def eval_step(x, y):
        return reduce(strategy.run(replica_eval_step, args=(x, y)))

    def run_epoch(step, data) -> tuple[float, float]:
        loss_sum = correct = seen = batches = 0.0
        for x, y in data:
            loss, right, count = step(x, y)
            loss_sum, correct, seen, batches = (
                loss_sum + float(loss),
                correct + float(right),
                seen + float(count),
                batches + 1,
            )
        return loss_sum / max(batches, 1), correct / max(seen, 1)

    started = time.perf_counter()
    for epoch in range(epochs):
        train_loss, train_accuracy = run_epoch(train_step, train_data)
        print(f"epoch {epoch + 1}/{epochs}: loss {train_loss:.4f} accuracy {train_accuracy:.4f}")
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = run_epoch(eval_step, test_data)
    model.export(str(model_dir), format="tf_saved_model", verbose=False)
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "replicas": strategy.num_replicas_in_sync,
        "train_examples": int(len(arrays["x_train"])),
        "train_seconds": round(seconds, 3),
        "examples_per_second": round(epochs * len(arrays["x_train"]) / seconds, 1),
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
    }


def write_metrics(path: Path, metrics: dict) -> None:
    """metrics.json next to the model."""
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
