"""The main job until the training pipelines land: what exists, end to end, on the local server.

Starts the embedded local Pachyderm server, writes a small data set, and runs a KFP pipeline with
``kfp.local`` (no cluster): ``commit_data`` commits the data set, ``inspect_provenance`` traces
the commit. Then it reads the commit back, checks the bytes match, and prints the commit and
its provenance graph.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as real types.
import json
import os
import tempfile
from pathlib import Path

from .commits import inspect_commit
from .connection import connect
from .lineage import trace
from .local.server import LocalPachyderm
from .refs import CommitRef
from .transfer import local_files, read_tree, tree_digest

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
    from kfp import dsl, local

    from .compile import load_component

    commit_data, inspect_provenance = (
        load_component("commit_data"),
        load_component("inspect_provenance"),
    )

    @dsl.pipeline(name="kfp-pachyderm-demo")
    def demo(source: str) -> str:
        data = commit_data(
            source=source,
            repo="demo-data",
            dest_path="/sample",
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
        )
        inspect_provenance(commit=data.outputs["commit"])
        return data.outputs["Output"]

    with LocalPachyderm(Path(data_dir) / "pfs") as server, tempfile.TemporaryDirectory() as tmp:
        print(f"local Pachyderm server (development default, not pachd) at {server.address}")
        os.environ["PACHD_ADDRESS"] = server.address
        client = connect(server.address)
        source = write_sample_data(Path(tmp))
        local.init(
            runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(tmp) / "kfp")
        )
        commit_id = demo(source=str(source)).output
        ref = CommitRef("demo-data", branch="master", commit=commit_id, path="/sample")

        readback = Path(tmp) / "readback"
        got = read_tree(client, ref, readback)
        sent = tree_digest(local_files(source))
        if got.digest != sent.digest:
            raise RuntimeError(f"read-back digest {got.digest} != committed {sent.digest}")
        print(f"read back {got.files} files, identical (tree digest {got.digest[:16]}...)")

        info = inspect_commit(client, ref, wait=True)
        print(f"commit {ref.uri}")
        print(f"  finished:    {info.finished.isoformat()}")
        print(f"  size:        {info.details.size_bytes} bytes")
        print(f"  description: {info.description}")
        print("provenance:")
        print(trace(client, ref).to_text())
        return ref
