"""Incremental processing of your own steps: a step over 1,000 datums of 100 KiB each, then
10 datums changed. Prints one JSON line.

The baseline, measured in the same run on the same data, is the full run of the same step
(every datum runs). Targets (issue 12): the incremental rerun takes at most 10% of the full
run's wall time, and each unchanged datum costs under 5 ms.

    .venv/bin/python bench/bench_incremental.py
    BENCH_DATUMS=200 .venv/bin/python bench/bench_incremental.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from common import peak_rss_mb, start_server
from pachyderm_sdk import Client

from kfp_pachyderm import CommitRef, ProvenanceRecord, commit_data, pfs_step
from kfp_pachyderm.steps.run import run_step

DATUMS = int(os.environ.get("BENCH_DATUMS", "1000"))
CHANGED = 10
DATUM_BYTES = 100 * 1024


@pfs_step(output_repo="checksums", glob="/*")
def checksum(raw, out):
    """The SHA-256 of each file, as a small text file of the same name."""
    import hashlib
    from pathlib import Path

    for path in Path(raw).rglob("*"):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            (Path(out) / f"{path.name}.sha256").write_text(digest)


def write_data(folder: Path, seed: int, only: range | None = None) -> None:
    for i in only if only is not None else range(DATUMS):
        (folder / f"d{i:04d}.bin").write_bytes(os.urandom(DATUM_BYTES - 8) + seed.to_bytes(8))


def timed_run(client: Client, raw: CommitRef, **overrides):
    definition = dataclasses.replace(checksum.definition, **overrides)
    start = time.perf_counter()
    result = run_step(client, definition, {"raw": raw}, {}, ProvenanceRecord(), lambda _: None)
    return time.perf_counter() - start, result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, address, _ = start_server(root / "pfs")
        try:
            client = Client.from_pachd_address(address)
            data = root / "data"
            data.mkdir()
            write_data(data, seed=1)
            raw = commit_data(client, str(data), CommitRef("raw", branch="master")).ref
            first_s, first = timed_run(client, raw.with_path(None))
            write_data(data, seed=2, only=range(CHANGED))
            changed = commit_data(client, str(data), CommitRef("raw", branch="master")).ref
            incremental_s, incremental = timed_run(client, changed.with_path(None))
            full_s, full = timed_run(
                client, changed.with_path(None), incremental=False, output_repo="checksums-full"
            )
            assert len(incremental.ran) == CHANGED, incremental.ran
            assert len(full.ran) == DATUMS
            per_datum_full = full_s / DATUMS
            unchanged = DATUMS - CHANGED
            overhead_ms = max(0.0, incremental_s - CHANGED * per_datum_full) / unchanged * 1000
            print(
                json.dumps(
                    {
                        "bench": "incremental",
                        "datums": DATUMS,
                        "datum_kib": DATUM_BYTES // 1024,
                        "changed": CHANGED,
                        "first_run_s": round(first_s, 2),
                        "full_rerun_s": round(full_s, 2),
                        "incremental_rerun_s": round(incremental_s, 2),
                        "incremental_vs_full": round(incremental_s / full_s, 3),
                        "target_incremental_vs_full": 0.10,
                        "overhead_per_unchanged_datum_ms": round(overhead_ms, 2),
                        "target_overhead_ms": 5.0,
                        "client_peak_rss_mb": round(peak_rss_mb(), 1),
                        "server_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
                        "first_run_datums": len(first.ran),
                    }
                )
            )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
