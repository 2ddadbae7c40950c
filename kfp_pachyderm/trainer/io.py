"""Moving training data in and models out: straight from Pachyderm, or via its S3 gateway."""

from __future__ import annotations

from pathlib import Path

from pachyderm_sdk import Client

from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import S3Data
from kfp_pachyderm.pfs.transfer import put_tree, read_tree


def fetch_input(mode: str, input_ref: str, directory: Path, client: Client | None = None) -> Path:
    """Download the input commit (with ``client``, or one from the environment) and return
    the first ``.npz`` file in it."""
    if mode == "s3":
        S3Data().download_all(directory)
    else:
        read_tree(client or connect(), CommitRef.parse(input_ref), directory, digest=False)
    found = sorted(directory.rglob("*.npz"))
    if not found:
        raise FileNotFoundError(f"no .npz file in input {input_ref} (expected mnist.npz)")
    return found[0]


def publish(mode: str, output_ref: str, directory: Path, client: Client | None = None) -> None:
    """Write the model and metrics into the open output commit."""
    if mode == "s3":
        S3Data().upload_dir(directory)
    else:
        ref = CommitRef.parse(output_ref)
        client = client or connect()
        put_tree(client, ref.pfs_commit(), directory, dest=ref.path or "/")
