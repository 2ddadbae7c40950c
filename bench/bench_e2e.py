"""The end-to-end local demo (``kfp-pachyderm run mnist_tfjob --local``), the overhead a step
adds around its own work, and the issue-summarization pipeline's cold run, cached rerun and
rerun after a 1% data change. Prints one JSON line.

Per-step overhead, for three light steps: the wall time of the step run as a kfp.local task
(a subprocess, as in a pipeline) minus the time of the same library call made in this process
(the step's own work), measured in the same run. Target (issue 8): under 1 s per step.

Issue summarization (issue 13): 20,000 issues (the demo issues, repeated with distinct URLs)
in 64 CSV files; per-step times are each stage's output commit from start to finish (0 for a
step that reused its earlier result). Target: split + pre_process after changing 1% of the rows
(all in one file) take at most 10% of their cold time.

    .venv/bin/python bench/bench_e2e.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import timed
from kfp import local

from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.refs import CommitRef


def step_overheads(tmp: Path) -> dict:
    data = tmp / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    with LocalPachyderm(tmp / "pfs") as server:
        os.environ["PACHD_ADDRESS"] = server.address
        client = connect()
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp / "kfp"))
        commit_data(client, str(data), CommitRef("warm"))  # warm this process's imports
        out = {}
        for name, direct, as_task in (
            (
                "commit_data",
                lambda: commit_data(client, str(data), CommitRef("direct")),
                lambda: load_component("commit_data")(source=str(data), repo="task"),
            ),
            (
                "resolve_commit",
                lambda: client.pfs.inspect_commit(commit=CommitRef("direct").pfs_commit()),
                lambda: load_component("resolve_commit")(ref="task@master"),
            ),
            (
                "inspect_provenance",
                lambda: trace(client, CommitRef("direct", branch="master")),
                lambda: load_component("inspect_provenance")(commit_ref="task@master"),
            ),
        ):
            work, task = timed(direct), timed(as_task)
            out[name] = {
                "task_s": round(task, 2),
                "work_s": round(work, 3),
                "overhead_s": round(task - work, 2),
            }
        return out


ISSUE_ROWS, ISSUE_SHARDS, EDITED_SHARD = 20_000, 64, 7
STAGES = ("split", "pre_process", "train", "build")


def _issue_shards() -> dict[int, list[tuple[str, str, str]]]:
    from kfp_pachyderm.summarizer.data import demo_issues
    from kfp_pachyderm.summarizer.stages import shard_of

    demo = demo_issues()
    rows = [(f"{url}#{i}", title, body) for i in range(ISSUE_ROWS) for url, title, body in demo]
    shards: dict[int, list] = {n: [] for n in range(ISSUE_SHARDS)}
    for row in rows[:ISSUE_ROWS]:
        shards[shard_of(row, ISSUE_SHARDS)].append(row)
    return shards


def _write_shard(folder: Path, number: int, rows) -> None:
    from kfp_pachyderm.summarizer.stages import write_issues

    write_issues(folder / f"issues-{number:02d}.csv", rows)


def issue_summarization_runs(tmp: Path) -> dict:
    """Cold run, cached rerun, rerun after editing 1% of the rows (all in one file)."""
    from kfp_pachyderm.pipelines.issue_summarization import issue_summarization

    from kfp_pachyderm.errors import NotFoundError
    from kfp_pachyderm.pfs.commits import inspect_commit

    data = tmp / "issues"
    shards = _issue_shards()
    for number, rows in shards.items():
        _write_shard(data, number, rows)
    with LocalPachyderm(tmp / "pfs-issues") as server:
        os.environ["PACHD_ADDRESS"] = server.address
        client = connect()
        local.init(
            runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp / "kfp-issues")
        )

        def head(stage: str) -> str:
            try:
                return inspect_commit(client, CommitRef(stage, branch="master")).commit.id
            except NotFoundError:
                return ""

        def run() -> dict:
            before = {stage: head(stage) for stage in STAGES}
            wall = timed(lambda: issue_summarization(epochs=1, token_secret=""))
            steps = {}
            for stage in STAGES:
                info = inspect_commit(client, CommitRef(stage, branch="master"))
                took = info.finished - info.started
                fresh = info.commit.id != before[stage]
                steps[stage] = round(took.total_seconds(), 2) if fresh else 0.0
            return {"wall_s": round(wall, 1), "steps_s": steps}

        commit_data(client, str(data), CommitRef("raw_data", branch="master"))
        cold = run()
        cached = run()
        rows = shards[EDITED_SHARD]
        edits = ISSUE_ROWS // 100
        edited = [(u, t + " (edited)", b) for u, t, b in rows[:edits]] + rows[edits:]
        _write_shard(data, EDITED_SHARD, edited)
        commit_data(client, str(data), CommitRef("raw_data", branch="master"))
        changed = run()
    prep = ("split", "pre_process")
    share = sum(changed["steps_s"][s] for s in prep) / sum(cold["steps_s"][s] for s in prep)
    return {
        "rows": ISSUE_ROWS,
        "files": ISSUE_SHARDS,
        "rows_changed": edits,
        "cold": cold,
        "cached": cached,
        "after_1pct_change": changed,
        "split_pre_process_after_change_vs_cold": round(share, 3),
        "target_vs_cold": 0.10,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kfp_pachyderm.cli",
                "run",
                "mnist_tfjob",
                "--local",
                "--data-dir",
                f"{tmp}/demo",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        demo_s = time.perf_counter() - started
        steps = step_overheads(Path(tmp))
        issues = issue_summarization_runs(Path(tmp))
    print(
        json.dumps(
            {
                "benchmark": "e2e",
                "demo_wall_s": round(demo_s, 1),
                "steps": steps,
                "max_overhead_s": max(s["overhead_s"] for s in steps.values()),
                "target_overhead_s": 1.0,
                "issue_summarization": issues,
            }
        )
    )


if __name__ == "__main__":
    main()
