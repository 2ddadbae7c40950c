"""The main job until the pipelines land: the library end to end on the local server.

Starts the embedded local Pachyderm server, writes a small data set, commits it with
:func:`~kfp_pachyderm.transfer.put_tree` into an output commit that records its provenance,
reads it back into a fresh directory, checks the bytes match and prints the commit.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .commits import ensure_repo, inspect_commit, output_commit
from .connection import connect
from .local.server import LocalPachyderm
from .provenance import ProvenanceRecord, read_provenance
from .refs import CommitRef
from .transfer import put_tree, read_tree

DEMO_FILES = 200


def write_sample_data(root: Path) -> Path:
    """A small data set of CSV shards and a manifest, made offline."""
    data = root / "sample"
    (data / "shards").mkdir(parents=True, exist_ok=True)
    for i in range(DEMO_FILES):
        rows = "\n".join(f"{i},{j},{(i * 31 + j * 17) % 97}" for j in range(100))
        (data / "shards" / f"part-{i:04d}.csv").write_text("shard,row,value\n" + rows + "\n")
    (data / "manifest.json").write_text(json.dumps({"shards": DEMO_FILES, "rows_per_shard": 100}))
    return data


def run_demo(data_dir: Path) -> CommitRef:
    """Run the demo against a local server keeping its data in ``data_dir``; return the commit."""
    with LocalPachyderm(Path(data_dir) / "pfs") as server, tempfile.TemporaryDirectory() as tmp:
        print(f"local Pachyderm server (development default, not pachd) at {server.address}")
        client = connect(server.address)
        source = write_sample_data(Path(tmp))
        ref = CommitRef.parse("demo-data@master")
        ensure_repo(client, ref)
        record = ProvenanceRecord(inputs=[f"file://{source}"], step="demo")
        with output_commit(client, ref, provenance=record) as out:
            sent = put_tree(client, out.pfs_commit(), source)
        print(f"committed {sent.files} files, {sent.bytes} bytes as {out.ref}")

        readback = Path(tmp) / "readback"
        got = read_tree(client, out.ref, readback)
        if got.digest != sent.digest:
            raise RuntimeError(f"read-back digest {got.digest} != committed {sent.digest}")
        print(f"read back {got.files} files, identical (tree digest {got.digest[:16]}...)")

        info = inspect_commit(client, out.ref, wait=True)
        print(f"commit {out.ref.uri}")
        print(f"  finished:    {info.finished.isoformat()}")
        print(f"  size:        {info.details.size_bytes} bytes")
        print(f"  description: {info.description}")
        print(f"  provenance:  {read_provenance(info)}")
        return out.ref
