"""The end-to-end local demo (``kfp-pachyderm run mnist_tfjob --local``) and the overhead a step
adds around its own work. Prints one JSON line.

Per-step overhead, for three light steps: the wall time of the step run as a kfp.local task
(a subprocess, as in a pipeline) minus the time of the same library call made in this process
(the step's own work), measured in the same run. Target (issue 8): under 1 s per step.

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
    print(
        json.dumps(
            {
                "benchmark": "e2e",
                "demo_wall_s": round(demo_s, 1),
                "steps": steps,
                "max_overhead_s": max(s["overhead_s"] for s in steps.values()),
                "target_overhead_s": 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
