"""A small sequence-to-sequence model that writes a GitHub issue's title from its body, as the
seed example's does, exported as a SavedModel that takes raw text and returns titles.

A GRU encoder reads the cleaned body; a GRU decoder, started from the encoder's state, is
trained with teacher forcing to emit the title's tokens and then ``[end]``. The export holds
the cleaning, both TextVectorization layers and greedy decoding, so a server passes raw issue
bodies to its ``serving_default`` signature and gets titles back without any of this package.
Layers compute in float32 whatever Keras's global precision policy, so a trainer that sets
``mixed_float16`` does not break them. Vocabularies are fitted here in plain Python, so the
pre-processing step needs no TensorFlow.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.summarizer.text import NON_ASCII, REWRITES, clean

START, END = "[start]", "[end]"
SIGNATURE, INPUT, OUTPUT = "serving_default", "body", "title"
EMBEDDING, UNITS = 64, 128
LEARNING_RATE = 3e-3
SEED = 0


def _top_tokens(texts: list[str], size: int) -> list[str]:
    counts = Counter(token for text in texts for token in clean(text).split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: max(size, 0)]]


def fit_vocabularies(
    bodies: list[str], titles: list[str], body_size: int = 4000, title_size: int = 2000
) -> tuple[list[str], list[str]]:
    """The body and title vocabularies for :func:`train_summarizer`: the most frequent tokens
    of the cleaned texts, ties broken by the token so the result depends only on the input.
    The title vocabulary starts with ``[start]`` and ``[end]`` and has ``title_size`` entries
    in all; padding and the unknown token are added by the vectorizers, not counted here."""
    return _top_tokens(bodies, body_size), [START, END, *_top_tokens(titles, title_size - 2)]


def clean_in_graph(texts):
    """:func:`~kfp_pachyderm.summarizer.text.clean` as TensorFlow ops on a string tensor, so
    the exported model cleans raw text inside its graph exactly as training did."""
    import tensorflow as tf

    texts = tf.strings.lower(tf.strings.regex_replace(texts, *NON_ASCII))
    for pattern, replacement in REWRITES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return texts


def _vectorizer(vocabulary: list[str], length: int):
    import keras

    return keras.layers.TextVectorization(
        standardize=None,
        split="whitespace",
        output_sequence_length=length,
        vocabulary=vocabulary,
        dtype="string",
    )


def _title_text(title: str, title_len: int) -> str:
    return " ".join([START, *clean(title).split()[:title_len], END])


def _serving_module(vectorizers, encoder, decoder, title_len: int):
    """A tf.Module whose ``serve`` turns raw bodies into titles by greedy decoding."""
    import tensorflow as tf

    body_vectorizer, title_vectorizer = vectorizers
    embedding, gru, dense = decoder
    vocabulary = title_vectorizer.get_vocabulary()
    start_id, end_id = vocabulary.index(START), vocabulary.index(END)
    # Never emit padding (id 0) or [start]: neither can be part of a title.
    barred = tf.constant(
        [-1e9 if i in (0, start_id) else 0.0 for i in range(len(vocabulary))], tf.float32
    )
    tokens = tf.constant(vocabulary)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT)])
    def serve(body):
        state = encoder(body_vectorizer(clean_in_graph(body)))
        token = tf.fill(tf.shape(body), tf.constant(start_id, tf.int64))
        done = tf.zeros(tf.shape(body), tf.bool)
        emitted = tf.TensorArray(tf.int64, size=1, dynamic_size=True).write(0, token)
        step = 1
        while step <= title_len and not tf.reduce_all(done):
            output, state = gru(embedding(token[:, None]), initial_state=state)
            token = tf.argmax(dense(output[:, 0]) + barred, axis=-1)
            token = tf.where(done, tf.constant(end_id, tf.int64), token)
            emitted = emitted.write(step, token)
            done = done | (token == end_id)
            step += 1
        ids = tf.transpose(emitted.stack())[:, 1:]
        before_end = tf.cumsum(tf.cast(ids == end_id, tf.int32), axis=1) == 0
        words = tf.ragged.boolean_mask(tf.gather(tokens, ids), before_end)
        return {OUTPUT: tf.strings.reduce_join(words, axis=-1, separator=" ")}

    module = tf.Module()
    module.body_vectorizer, module.title_vectorizer = body_vectorizer, title_vectorizer
    module.encoder, module.decoder = encoder, [embedding, gru, dense]
    module.serve = serve
    return module


def train_summarizer(
    pairs: list[tuple[str, str]],
    body_vocab: list[str],
    title_vocab: list[str],
    model_dir: Path,
    epochs: int = 2,
    batch_size: int = 64,
    body_len: int = 100,
    title_len: int = 12,
) -> dict:
    """Train the title writer on (body, title) ``pairs`` with the given vocabularies (from
    :func:`fit_vocabularies`), export it to ``model_dir`` as a SavedModel whose
    ``serving_default`` signature maps raw bodies (``body``, 1-D string) to titles (``title``,
    1-D string), and return the metrics: train_loss and train_token_accuracy of the last epoch
    (over title tokens, teacher-forced), examples, epochs and seconds. Seeded, so a run repeats
    on the same machine."""
    if not pairs:
        raise OperationError("no (body, title) pairs to train on")
    if not body_vocab:
        raise OperationError("the body vocabulary is empty: the bodies had no tokens")
    if START not in title_vocab or END not in title_vocab:
        raise UsageError(f"the title vocabulary lacks {START} or {END}: fit it again")
    if min(epochs, batch_size, body_len, title_len) < 1:
        raise UsageError(
            f"epochs ({epochs}), batch_size ({batch_size}), body_len ({body_len}) and "
            f"title_len ({title_len}) must all be at least 1"
        )
    import keras
    import tensorflow as tf

    began = time.monotonic()
    keras.utils.set_random_seed(SEED)
    body_vectorizer = _vectorizer(body_vocab, body_len)
    title_vectorizer = _vectorizer(title_vocab, title_len + 2)
    bodies = body_vectorizer(tf.constant([clean(body) for body, _ in pairs])).numpy()
    titles = title_vectorizer(tf.constant([_title_text(t, title_len) for _, t in pairs])).numpy()
    decoder_in, target = titles[:, :-1], titles[:, 1:]

    body_ids = keras.Input((body_len,), dtype="int64", name="body_ids")
    embedded = keras.layers.Embedding(
        body_vectorizer.vocabulary_size(), EMBEDDING, mask_zero=True, dtype="float32"
    )(body_ids)
    encoder = keras.Model(body_ids, keras.layers.GRU(UNITS, dtype="float32")(embedded))
    embedding = keras.layers.Embedding(
        title_vectorizer.vocabulary_size(), EMBEDDING, dtype="float32"
    )
    gru = keras.layers.GRU(UNITS, return_sequences=True, return_state=True, dtype="float32")
    dense = keras.layers.Dense(title_vectorizer.vocabulary_size(), dtype="float32")
    title_ids = keras.Input((title_len + 1,), dtype="int64", name="title_ids")
    outputs, _ = gru(embedding(title_ids), initial_state=encoder(body_ids))
    model = keras.Model([body_ids, title_ids], dense(outputs))
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    )
    history = model.fit(
        [bodies, decoder_in],
        target,
        sample_weight=(target != 0).astype("float32"),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )
    module = _serving_module(
        (body_vectorizer, title_vectorizer), encoder, (embedding, gru, dense), title_len
    )
    tf.saved_model.save(module, str(model_dir), signatures={SIGNATURE: module.serve})
    return {
        "train_loss": float(history.history["loss"][-1]),
        "train_token_accuracy": float(history.history["token_accuracy"][-1]),
        "examples": len(pairs),
        "epochs": epochs,
        "seconds": round(time.monotonic() - began, 3),
    }


def summarize(model_dir: Path, bodies: list[str]) -> list[str]:
    """Titles for raw issue ``bodies`` from the SavedModel in ``model_dir``, through its
    ``serving_default`` signature exactly as a server would call it."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(model_dir)).signatures[SIGNATURE]
    titles = serve(**{INPUT: tf.constant(bodies, dtype=tf.string, shape=[len(bodies)])})[OUTPUT]
    return [title.decode("utf-8") for title in titles.numpy()]
