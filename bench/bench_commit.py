"""Commit and read-back throughput, and peak memory, against the local server.

Prints one JSON line. Each figure of the library (``put_tree`` / ``read_tree``) is measured in
the same run as its baselines: the pachyderm_sdk's own helpers (``put_files``, one stream per
file; ``pfs_tar_file`` for reading) and a plain file copy on the same disk (the physical limit
here). The server runs as its own process; every client run is a fresh process, so peak RSS
(VmHWM) is per operation.

    .venv/bin/python bench/bench_commit.py            # 1 GiB file and 10,000 x 4 KiB files
    BENCH_LARGE_MB=256 BENCH_SMALL_FILES=2000 .venv/bin/python bench/bench_commit.py

Targets (issue 2): library >= 1.0x the SDK helper; large file >= 50% of the plain copy;
small files >= 2,000 files/s; peak RSS < 200 MB for client and server. The plain copy is
measured twice: into the page cache (what ``copyfile`` returns after) and to the disk (with
fsync), since either may be "the physical limit" depending on the machine's memory and disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import peak_rss_mb, start_server, timed

LARGE_MB = int(os.environ.get("BENCH_LARGE_MB", "1024"))
SMALL_FILES = int(os.environ.get("BENCH_SMALL_FILES", "10000"))
SMALL_BYTES = 4096


def make_data(root: Path) -> tuple[Path, Path]:
    large = root / "large"
    large.mkdir()
    with open(large / "blob.bin", "wb") as f:
        for _ in range(LARGE_MB // 64):
            f.write(os.urandom(64 << 20))
        f.write(os.urandom((LARGE_MB % 64) << 20))
    small = root / "small"
    for i in range(SMALL_FILES):
        d = small / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(os.urandom(SMALL_BYTES))
    return large, small


def client_run(mode: str, address: str, path: Path, repo: str) -> dict:
    """Run one client operation in a fresh process, after :func:`settle`; return its seconds
    and peak RSS."""
    settle()
    out = subprocess.run(
        [sys.executable, __file__, "--client", mode, address, str(path), repo],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def client_main(mode: str, address: str, path: str, repo: str) -> None:
    import logging

    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    from kfp_pachyderm.pfs.refs import CommitRef
    from kfp_pachyderm.pfs.transfer import put_tree, read_tree

    logging.disable(logging.INFO)
    client = Client.from_pachd_address(address)
    branch = pfs.Branch.from_uri(f"{repo}@master")
    baseline_rss = peak_rss_mb()
    start = time.perf_counter()
    if mode in ("put-library", "put-sdk"):
        client.pfs.create_repo(repo=pfs.Repo(name=repo))
        with client.pfs.commit(branch=branch) as commit:
            if mode == "put-library":
                put_tree(client, commit, Path(path))
            else:
                commit.put_files(source=path, path="/")
        client.pfs.wait_commit(commit)
    elif mode == "read-library":
        read_tree(client, CommitRef.parse(f"{repo}@master"), Path(path))
    elif mode == "read-sdk":
        client.pfs.pfs_tar_file(pfs.File.from_uri(f"{repo}@master:/")).extractall(path)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": baseline_rss}
        )
    )


def settle() -> None:
    """Flush dirty pages before a measured phase: the gigabytes earlier phases wrote would
    otherwise be written back during this one and throttle its writes."""
    os.sync()


def copy_to_disk(source: Path, target: Path) -> None:
    """A plain copy that ends when the bytes are on the disk, not only in the page cache: the
    disk's own limit, which a copy into memory does not show."""
    shutil.copyfile(source, target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        large, small = make_data(root)
        large_bytes = LARGE_MB << 20
        settle()
        copy_large_s = timed(lambda: shutil.copyfile(large / "blob.bin", root / "copy.bin"))
        (root / "copy.bin").unlink()
        settle()
        disk_copy_large_s = timed(lambda: copy_to_disk(large / "blob.bin", root / "copy.bin"))
        settle()
        copy_small_s = timed(lambda: shutil.copytree(small, root / "copy-small"))
        (root / "copy.bin").unlink()
        shutil.rmtree(root / "copy-small")

        results: dict[str, dict] = {}
        for impl in ("library", "sdk"):
            data_dir = root / f"pfs-{impl}"
            server, address, _ = start_server(data_dir)
            try:
                put_large = client_run(f"put-{impl}", address, large, "large")
                server_rss_large = peak_rss_mb(server.pid)
                put_small = client_run(f"put-{impl}", address, small, "small")
                read_large = client_run(f"read-{impl}", address, root / f"back-{impl}-l", "large")
                read_small = client_run(f"read-{impl}", address, root / f"back-{impl}-s", "small")
                results[impl] = {
                    "large_put_mb_s": round(LARGE_MB / put_large["seconds"], 1),
                    "small_put_files_s": round(SMALL_FILES / put_small["seconds"], 1),
                    "large_read_mb_s": round(LARGE_MB / read_large["seconds"], 1),
                    "small_read_files_s": round(SMALL_FILES / read_small["seconds"], 1),
                    "client_peak_rss_mb_large_put": round(put_large["peak_rss_mb"], 1),
                    "client_peak_rss_mb_large_read": round(read_large["peak_rss_mb"], 1),
                    "server_peak_rss_mb_large_put": round(server_rss_large, 1),
                }
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(data_dir, ignore_errors=True)
                for back in root.glob(f"back-{impl}-*"):
                    shutil.rmtree(back, ignore_errors=True)

        lib, sdk = results["library"], results["sdk"]
        copy_mb_s = LARGE_MB / copy_large_s
        disk_copy_mb_s = LARGE_MB / disk_copy_large_s
        figures = {
            "benchmark": "commit",
            "large_file_mb": LARGE_MB,
            "small_files": SMALL_FILES,
            "small_file_bytes": SMALL_BYTES,
            "library": lib,
            "baseline_sdk": sdk,
            "baseline_plain_copy": {
                "large_mb_s": round(copy_mb_s, 1),
                "large_to_disk_mb_s": round(disk_copy_mb_s, 1),
                "small_files_s": round(SMALL_FILES / copy_small_s, 1),
            },
            "ratios": {
                "large_put_vs_sdk": round(lib["large_put_mb_s"] / sdk["large_put_mb_s"], 2),
                "small_put_vs_sdk": round(lib["small_put_files_s"] / sdk["small_put_files_s"], 2),
                "large_put_vs_plain_copy": round(lib["large_put_mb_s"] / copy_mb_s, 2),
                "large_put_vs_copy_to_disk": round(lib["large_put_mb_s"] / disk_copy_mb_s, 2),
                "large_read_vs_sdk": round(lib["large_read_mb_s"] / sdk["large_read_mb_s"], 2),
                "small_read_vs_sdk": round(
                    lib["small_read_files_s"] / sdk["small_read_files_s"], 2
                ),
            },
            "bytes_large": large_bytes,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:6])
    else:
        main()
