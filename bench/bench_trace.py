"""Trace latency against the local server: a chain of 1,000 commits across 10 repos, and a
fan-in of 100 inputs. Prints one JSON line.

The baseline, measured in the same run on the same graphs, is the naive walk: one InspectCommit
per commit. Each figure is the median of several walks. Target (issue 4): the library's trace
under 0.5 s for each graph.

    .venv/bin/python bench/bench_trace.py
    BENCH_CHAIN=200 .venv/bin/python bench/bench_trace.py
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import start_server
from pachyderm_sdk import Client

from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef

CHAIN = int(os.environ.get("BENCH_CHAIN", "1000"))
REPOS = 10
FAN_IN = int(os.environ.get("BENCH_FAN_IN", "100"))
REPEATS, NAIVE_REPEATS = 5, 3  # medians: one run on a shared 2-core machine varies by 30%


def make_commit(client: Client, repo: str, inputs: list[CommitRef]) -> CommitRef:
    ref = CommitRef(repo, branch="master")
    record = ProvenanceRecord(inputs=[str(i) for i in inputs], step="bench")
    with output_commit(client, ref, provenance=record) as out:
        pass
    return out.ref


def naive_walk(client: Client, root: CommitRef) -> int:
    seen, frontier = set(), [root]
    while frontier:
        ref = frontier.pop()
        if (ref.repo, ref.commit) in seen:
            continue
        seen.add((ref.repo, ref.commit))
        info = inspect_commit(client, ref)
        record = read_provenance(info)
        frontier += [CommitRef.parse(i) for i in (record.inputs if record else [])]
        frontier += [CommitRef(c.repo.name, commit=c.id) for c in info.direct_provenance]
    return len(seen)


def median_seconds(run, repeats: int) -> tuple[float, object]:
    """The median wall time of ``repeats`` calls of ``run``, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(client: Client, root: CommitRef) -> dict:
    library_s, graph = median_seconds(lambda: trace(client, root), REPEATS)
    naive_s, naive_nodes = median_seconds(lambda: naive_walk(client, root), NAIVE_REPEATS)
    assert naive_nodes == len(graph.nodes)
    return {
        "commits": len(graph.nodes),
        "library_s": round(library_s, 3),
        "library_round_trips": graph.round_trips,
        "baseline_naive_s": round(naive_s, 3),
        "speedup": round(naive_s / library_s, 1),
    }


def main() -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        server, address, _ = start_server(Path(tmp) / "pfs")
        try:
            client = Client.from_pachd_address(address)
            for i in range(REPOS):
                ensure_repo(client, CommitRef(f"chain{i}"))
            previous: list[CommitRef] = []
            for i in range(CHAIN):
                previous = [make_commit(client, f"chain{i % REPOS}", previous)]
            chain = measure(client, previous[0])

            ensure_repo(client, CommitRef("inputs"))
            ensure_repo(client, CommitRef("merged"))
            inputs = [make_commit(client, "inputs", []) for _ in range(FAN_IN)]
            fan_in = measure(client, make_commit(client, "merged", inputs))
        finally:
            server.terminate()
            server.wait()
    print(json.dumps({"benchmark": "trace", "chain": chain, "fan_in": fan_in, "target_s": 0.5}))


if __name__ == "__main__":
    main()
