"""The upstream graph: native and recorded edges, batched round trips, and the renderings."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.errors import NotFoundError
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import ensure_branch, ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef

from .conftest import CLI


def commit(client: Client, repo: str, inputs=(), step="", same_id_as=None) -> CommitRef:
    ref = CommitRef(repo, branch="master")
    ensure_repo(client, ref)
    record = ProvenanceRecord(inputs=[str(i) for i in inputs], step=step, kfp_run_id="run-7")
    with output_commit(client, ref, same_id_as=same_id_as, provenance=record) as out:
        client.pfs.put_file_from_bytes(commit=out.pfs_commit(), path="/f", data=repo.encode())
    return out.ref


def test_native_and_recorded_edges(client: Client):
    raw = commit(client, "raw", inputs=["file:///data"], step="ingest")
    old_labels = commit(client, "labels", step="ingest")
    for name in ("clean", "model"):
        ensure_repo(client, CommitRef(name))
    ensure_branch(client, CommitRef("clean", branch="master"), [CommitRef("raw", branch="master")])
    ensure_branch(
        client, CommitRef("model", branch="master"), [CommitRef("clean", branch="master")]
    )
    raw2 = commit(client, "raw", step="ingest")
    clean = commit(client, "clean", inputs=[raw2], step="clean", same_id_as=raw2.commit)
    model = commit(
        client, "model", inputs=[clean, old_labels], step="train", same_id_as=raw2.commit
    )

    graph = trace(client, CommitRef("model", branch="master"))
    ids = {f"default/{r.repo}@{r.commit}" for r in (model, clean, raw2, old_labels)}
    assert set(graph.nodes) == ids
    root = graph.nodes[graph.root]
    assert root.record["step"] == "train" and root.depth == 0
    assert set(root.upstream) == {
        f"default/clean@{clean.commit}",
        f"default/labels@{old_labels.commit}",
    }
    assert graph.nodes[f"default/clean@{clean.commit}"].upstream == [f"default/raw@{raw2.commit}"]
    assert f"default/raw@{raw.commit}" not in graph.nodes

    text = graph.to_text()
    assert "step train" in text and "<- default/clean@" in text and "<-   <- default/raw@" in text
    assert json.loads(json.dumps(graph.to_json()))["root"] == graph.root
    assert "```mermaid" in graph.to_markdown() and "| `default/labels@" in graph.to_markdown()
    page = graph.to_html()
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    drawn = ET.fromstring(svg)
    assert len(drawn.findall("{http://www.w3.org/2000/svg}rect")) == 4
    assert len(drawn.findall("{http://www.w3.org/2000/svg}line")) == 3


def test_round_trips_follow_repos_not_commits(client: Client):
    repos = [f"r{i}" for i in range(5)]
    previous = None
    for i in range(50):
        previous = commit(client, repos[i % 5], inputs=[previous] if previous else [])
    graph = trace(client, previous)
    assert len(graph.nodes) == 50
    assert graph.round_trips <= 2 * len(repos)


def test_a_repo_met_twice_lists_only_the_repos_on_its_cycle(client: Client):
    for _ in range(20):
        commit(client, "model")  # history that the walk does not need
    labels_v1 = commit(client, "labels")
    labels_v2 = commit(client, "labels")
    clean = commit(client, "clean", inputs=[labels_v1])
    model = commit(client, "model", inputs=[clean, labels_v2])
    graph = trace(client, model)
    assert len(graph.nodes) == 4
    # model, then clean and labels (inspected); labels recurs: labels and clean listed, model not
    assert graph.round_trips == 5


def test_unknown_commit_is_named(client: Client):
    with pytest.raises(NotFoundError, match="repo default/ghost not found"):
        trace(client, CommitRef.parse("ghost@master"))


def test_trace_command_uses_pachd_address(tmp_path, monkeypatch):
    with LocalPachyderm(tmp_path / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        ref = commit(client, "data", inputs=["file:///x"], step="ingest")
        env = {"PACHD_ADDRESS": server.address, "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [*CLI, "trace", "data@master"], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert f"default/data@{ref.commit}" in out.stdout and "step ingest" in out.stdout
        bad = subprocess.run(
            [*CLI, "trace", "data@"], capture_output=True, text=True, env=env, timeout=60
        )
        assert bad.returncode == 2 and "nothing after '@'" in bad.stderr
