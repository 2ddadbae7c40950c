"""Models for the serving tests: small ones the library's own trainers train (each once per
test session, cached by the session's base temporary directory), files shaped like a
SavedModel for the build tests, and a model committed with provenance naming its data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pachyderm_sdk import Client

from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree
from kfp_pachyderm.summarizer.data import read_issues, write_demo_issues
from kfp_pachyderm.summarizer.model import fit_vocabularies, train_summarizer
from kfp_pachyderm.trainer.data import digits_as_mnist
from kfp_pachyderm.trainer.model import train

_trained: dict[tuple[str, Path], object] = {}


def _once_per_session(train_it: Callable) -> Callable:
    def cached(tmp_path_factory):
        key = (train_it.__name__, tmp_path_factory.getbasetemp())
        if key not in _trained:
            _trained[key] = train_it(tmp_path_factory)
        return _trained[key]

    cached.__doc__ = train_it.__doc__
    return cached


@_once_per_session
def trained_mnist(tmp_path_factory) -> tuple[Path, dict]:
    """A SavedModel the library's trainer trained on the digits, and its arrays."""
    arrays = digits_as_mnist()
    model_dir = tmp_path_factory.mktemp("trained") / "model"
    metrics = train(arrays, model_dir, epochs=3, batch_size=64)
    assert metrics["test_accuracy"] > 0.5
    return model_dir, arrays


def reference_probabilities(model_dir: Path, images: np.ndarray) -> np.ndarray:
    """The digit model's probabilities for ``images``, from TensorFlow in this process."""
    import tensorflow as tf

    model = tf.saved_model.load(str(model_dir))
    return model.serve(tf.constant(images.astype(np.float32))).numpy()


@_once_per_session
def trained_summarizer(tmp_path_factory) -> Path:
    """A small issue summarization SavedModel (raw body text in, title text out), trained just
    enough (all demo issues, 3 epochs: seconds) that its titles are not empty."""
    folder = tmp_path_factory.mktemp("summarizer")
    write_demo_issues(folder / "issues.csv")
    pairs = [(body, title) for _, title, body in read_issues(folder / "issues.csv")]
    body_vocab, title_vocab = fit_vocabularies(
        [body for body, _ in pairs], [title for _, title in pairs]
    )
    train_summarizer(pairs, body_vocab, title_vocab, folder / "model", epochs=3)
    return folder / "model"


def fake_saved_model(directory: Path, seed: int = 0) -> Path:
    """Files shaped like a SavedModel (the build never loads it; the serving test trains one)."""
    (directory / "variables").mkdir(parents=True)
    (directory / "assets").mkdir()
    (directory / "saved_model.pb").write_bytes(b"\x08\x01" + b"graph " * 2000 + bytes([seed]))
    (directory / "fingerprint.pb").write_bytes(bytes(range(40)))
    (directory / "variables" / "variables.data-00000-of-00001").write_bytes(
        os.urandom(3 << 20) if seed < 0 else bytes([seed]) * 10 + os.urandom(300_000)
    )
    (directory / "variables" / "variables.index").write_bytes(b"index" * 50)
    return directory


def commit_model(client: Client, model_dir: Path) -> tuple[CommitRef, CommitRef]:
    """A data commit and a model commit whose provenance names it, as the trainer writes."""
    data = CommitRef("mnist", branch="master")
    ensure_repo(client, data)
    with output_commit(client, data, provenance=ProvenanceRecord(step="commit_data")) as d:
        client.pfs.put_file_from_bytes(commit=d.pfs_commit(), path="/x", data=b"1")
    model = CommitRef("models", branch="master")
    ensure_repo(client, model)
    record = ProvenanceRecord(step="train", inputs=[str(d.ref)], extra={"device": "CPU"})
    with output_commit(client, model, provenance=record) as out:
        put_tree(client, out.pfs_commit(), model_dir, dest="/model")
    return d.ref, out.ref
