"""Commit and read-back throughput, and peak memory, against the local server.

Prints one JSON line. Each figure of the library (``put_tree`` / ``read_tree``) is measured in
the same run as its baselines: the pachyderm_sdk's own helpers (``put_files``, one stream per
file; ``pfs_tar_file`` for reading) and a plain file copy on the same disk (the physical limit
here). The server runs as its own process; every client run is a fresh process, so peak RSS
(VmHWM) is per operation. Every timed figure is the median of ``BENCH_REPEATS`` runs (3), and
the operations compared take turns, round after round (the library, the SDK and, for the large
put, the plain copies): on this VM one operation run after another paid for what the earlier one
left behind, memory to fault in again and recently deleted inodes, by up to half its speed.

    .venv/bin/python bench/bench_commit.py            # 1 GiB file and 10,000 x 4 KiB files
    BENCH_LARGE_MB=256 BENCH_SMALL_FILES=2000 .venv/bin/python bench/bench_commit.py

Targets (issues 2 and 17): library >= 1.0x the SDK helper for commit and read; large file
>= 50% of the plain copy; small files >= 2,000 files/s; peak RSS < 200 MB for client and
server. The plain copy is measured twice: into the page cache (what ``copyfile`` returns after)
and to the disk (with fsync), since either may be "the physical limit" depending on the
machine's memory and disk.

Which side limits (issue 17), for the large file, both directions:

- ``cpu_s_with_local_server``: CPU seconds (user + system) of the client process during the
  operation and of the server process meanwhile, for the library and the SDK.
- ``client_alone``: each client against a *sink*, a gRPC server in its own process
  (``bench/sink.py``) whose ModifyFile reads and drops every message and whose GetFileTAR
  sends a tar of one large file from 1 MiB messages built once, in the local server's layout.
  Its throughput is the client's own limit; the sink's CPU is listed next to it.
- ``server_alone``: the local server with clients that cost as little as a client can: a
  ModifyFile stream of one pre-encoded 1 MiB message repeated, and a GetFileTAR stream read and
  dropped. Its throughput is the server's own limit.

Client and server share the machine's cores in every figure, so on a 2-core machine neither
"alone" figure is free of the other side's cost; the CPU seconds say how the work divides.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from common import peak_rss_mb, start_server, timed
from sink import MESSAGE_BYTES, large_messages, start_sink

LARGE_MB = int(os.environ.get("BENCH_LARGE_MB", "1024"))
SMALL_FILES = int(os.environ.get("BENCH_SMALL_FILES", "10000"))
SMALL_BYTES = 4096
# The large file's put, read and plain copies run this many times and report the median run:
# one run of each varies by 10% or more here, as much as the figures compared.
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


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


def client_run(mode: str, address: str, path: Path, repo: str, warm: Path | None) -> dict:
    """Run one client operation in a fresh process, after :func:`settle` (``warm``: what
    the operation reads); return its seconds and peak RSS."""
    settle(warm)
    out = subprocess.run(
        [sys.executable, __file__, "--client", mode, address, str(path), repo],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_s(pid: int | str = "self") -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_main(mode: str, address: str, path: str, repo: str) -> None:
    import logging

    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    from kfp_pachyderm.pfs.refs import CommitRef
    from kfp_pachyderm.pfs.transfer import BytesChannel, put_tree, read_tree

    logging.disable(logging.INFO)
    client = Client.from_pachd_address(address)
    branch = pfs.Branch.from_uri(f"{repo}@master")
    # against the sink, a commit nobody opened: the sink answers ModifyFile and GetFileTAR only
    sink_commit = pfs.Commit(id="0" * 32, branch=branch, repo=branch.repo)
    baseline_rss = peak_rss_mb()
    start, start_cpu = time.perf_counter(), cpu_s()
    if mode == "put-library-sink":
        put_tree(client, sink_commit, Path(path))
    elif mode == "put-sdk-sink":
        client.pfs.put_files(commit=sink_commit, source=path, path="/")
    elif mode == "put-raw":
        client.pfs.create_repo(repo=pfs.Repo(name=repo))
        with client.pfs.commit(branch=branch) as commit, BytesChannel(client) as channel:
            channel.modify_file(raw_requests(commit))
        client.pfs.wait_commit(commit)
    elif mode == "read-raw":
        with BytesChannel(client) as channel:
            for _ in channel.get_file_tar(pfs.File.from_uri(f"{repo}@master:/")):
                pass
    elif mode in ("put-library", "put-sdk"):
        client.pfs.create_repo(repo=pfs.Repo(name=repo))
        with client.pfs.commit(branch=branch) as commit:
            if mode == "put-library":
                put_tree(client, commit, Path(path))
            else:
                commit.put_files(source=path, path="/")
        client.pfs.wait_commit(commit)
    elif mode in ("read-library", "read-library-sink"):
        read_tree(client, CommitRef.parse(f"{repo}@master"), Path(path))
    elif mode in ("read-library-nodigest", "read-library-nodigest-sink"):
        read_tree(client, CommitRef.parse(f"{repo}@master"), Path(path), digest=False)
    elif mode in ("read-sdk", "read-sdk-sink"):
        client.pfs.pfs_tar_file(pfs.File.from_uri(f"{repo}@master:/")).extractall(path)
    else:
        raise SystemExit(f"unknown client mode {mode!r}")
    seconds, cpu = time.perf_counter() - start, cpu_s() - start_cpu
    out = {"seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps({**out, "import_rss_mb": baseline_rss}))


def raw_requests(commit) -> Iterator[bytes]:
    """A ModifyFile stream of the large file's size, encoded before the clock starts counting
    (the same message over and over), so only the server's cost remains."""
    from pachyderm_sdk.api import pfs

    from kfp_pachyderm.codec.wire import encode_add_file_raw

    message, count = large_messages(partial(encode_add_file_raw, "/blob.bin"), LARGE_MB << 20)
    yield bytes(pfs.ModifyFileRequest(set_commit=commit))
    yield from itertools.repeat(message, count)
    if (LARGE_MB << 20) % MESSAGE_BYTES:
        yield encode_add_file_raw("/blob.bin", os.urandom((LARGE_MB << 20) % MESSAGE_BYTES))


def settle(warm: Path | None = None) -> None:
    """Flush dirty pages before a measured phase: the gigabytes earlier phases wrote would
    otherwise be written back during this one and throttle its writes. Then read ``warm`` (a
    file, or every file under a folder) into the page cache: this VM's kernel pages out memory
    nobody touched for a while (DAMON, action ``pageout``), so the first phase to read a file
    written a minute earlier read it from the disk, and the next ones did not."""
    os.sync()
    if warm is None:
        return
    buffer = bytearray(1 << 20)
    for path in [warm] if warm.is_file() else sorted(p for p in warm.rglob("*") if p.is_file()):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def median_run(runs: list[dict]) -> dict:
    """The run of ``runs`` with the median time (the upper one of an even count)."""
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def copy_to_disk(source: Path, target: Path) -> None:
    """A plain copy that ends when the bytes are on the disk, not only in the page cache: the
    disk's own limit, which a copy into memory does not show."""
    shutil.copyfile(source, target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())


def served_run(
    server: subprocess.Popen, mode: str, address: str, path: Path, repo: str, warm: Path | None
) -> dict:
    """:func:`client_run`, plus the CPU seconds the server spent meanwhile."""
    before = cpu_s(server.pid)
    run = client_run(mode, address, path, repo, warm)
    return {**run, "server_cpu_s": cpu_s(server.pid) - before}


IMPLS = ("library", "sdk")


def rounds(operations: dict[str, Callable[[int], dict]]) -> dict[str, dict]:
    """Run each of ``operations`` (name: a run given its number) :data:`REPEATS` times, one of
    each per round, and return each one's median run. Taking turns makes every operation meet
    the machine in the same states: run one after the other, whichever ran later paid for what
    the earlier ones left (memory to fault in again, inodes recently deleted)."""
    runs: dict[str, list[dict]] = {name: [] for name in operations}
    for n in range(REPEATS):
        for name, operation in operations.items():
            runs[name].append(operation(n))
    return {name: median_run(done) for name, done in runs.items()}


def repo_name(source: Path, n: int) -> str:
    """The repo the ``n``-th put of ``source`` creates: ``large``, ``large1``, ..."""
    return source.name if n == 0 else f"{source.name}{n}"


def put(server: subprocess.Popen, mode: str, address: str, source: Path) -> Callable:
    """The ``n``-th :func:`served_run` put (``mode``) of ``source``, into a new repo."""
    return lambda n: served_run(server, mode, address, source, repo_name(source, n), source)


def read(
    server: subprocess.Popen,
    mode: str,
    address: str,
    repo: str,
    into: Path,
    data_dir: Path | None,
    keep: bool = False,
) -> Callable:
    """The ``n``-th :func:`served_run` read (``mode``) of ``repo`` from the server whose data
    is in ``data_dir`` (None: the sink), into the new folder ``<into>/<repo>-<n>``, removed
    after the run unless ``keep``. Keep many small files until the end: ext4's inode allocator
    skips inodes deleted in the last minutes, so creating 10,000 files just after deleting
    10,000 took two to three times the CPU here, more with every round."""

    def run(n: int) -> dict:
        folder = into / f"{repo}-{n}"
        done = served_run(server, mode, address, folder, repo, data_dir)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        return done

    return run


def copy_run(copy: Callable[[Path], object], source: Path, target: Path, remove: bool) -> Callable:
    """The ``n``-th plain copy of ``source`` to ``<target>-<n>`` by ``copy``, after
    :func:`settle`; the copy is removed after the run when ``remove``."""

    def run(n: int) -> dict:
        settle(source)
        into = target.with_name(f"{target.name}-{n}")
        seconds = timed(lambda: copy(into))
        if remove:
            into.unlink()
        return {"seconds": seconds}

    return run


def cpu_split(run: dict) -> dict:
    """CPU seconds of each side of one run."""
    return {"client": round(run["cpu_s"], 2), "server": round(run["server_cpu_s"], 2)}


def client_alone(root: Path, large: Path) -> dict:
    """Each client's put and read of the large file against the sink: its own cost, with the
    server's as small as it gets."""
    sink, address = start_sink(root, LARGE_MB << 20)
    try:
        puts = rounds({impl: put(sink, f"put-{impl}-sink", address, large) for impl in IMPLS})
        back = root / "back-sink"
        reads = rounds(
            {
                "library": read(sink, "read-library-sink", address, "large", back, None),
                "sdk": read(sink, "read-sdk-sink", address, "large", back, None),
                "no_digest": read(sink, "read-library-nodigest-sink", address, "large", back, None),
            }
        )
    finally:
        sink.terminate()
        sink.wait()
    figures = {
        impl: {
            "large_put_mb_s": round(LARGE_MB / puts[impl]["seconds"], 1),
            "large_read_mb_s": round(LARGE_MB / reads[impl]["seconds"], 1),
            "large_put": cpu_split(puts[impl]),
            "large_read": cpu_split(reads[impl]),
            "client_peak_rss_mb_large_read": round(reads[impl]["peak_rss_mb"], 1),
        }
        for impl in IMPLS
    }
    figures["library"].update(no_digest_figures(reads["no_digest"]))
    return figures


def no_digest_figures(run: dict) -> dict:
    """The library's large read with ``digest=False`` (no hash of the files) as figures."""
    return {
        "large_read_no_digest_mb_s": round(LARGE_MB / run["seconds"], 1),
        "large_read_no_digest_client_cpu_s": round(run["cpu_s"], 2),
    }


def server_alone(root: Path, large: Path) -> dict:
    """The local server's put and read of the large file with clients that cost as little as
    a client can: pre-encoded ModifyFile messages in, GetFileTAR messages received and
    dropped."""
    data_dir = root / "pfs-alone"
    server, address, _ = start_server(data_dir)
    try:
        put_raw = rounds({"put": put(server, "put-raw", address, large)})["put"]
        back = root / "back-alone"
        read_raw = rounds({"read": read(server, "read-raw", address, "large", back, data_dir)})
        return {
            "large_put_mb_s": round(LARGE_MB / put_raw["seconds"], 1),
            "large_read_mb_s": round(LARGE_MB / read_raw["read"]["seconds"], 1),
            "large_put": cpu_split(put_raw),
            "large_read": cpu_split(read_raw["read"]),
            "server_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
        }
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def with_servers(root: Path, large: Path, small: Path) -> dict:
    """Both clients against a local server each, taking turns with each other and, for the
    large put, with the plain copies; the median figures of each. Everything they wrote is
    removed afterwards: gigabytes left in the page cache made the later phases reclaim memory
    as they wrote (a server alone spent 4 CPU seconds on a 1 GiB commit instead of 1.4)."""
    servers = {impl: start_server(root / f"pfs-{impl}")[:2] for impl in IMPLS}
    data_dirs = {impl: root / f"pfs-{impl}" for impl in IMPLS}
    source = large / "blob.bin"
    try:
        large_puts = rounds(
            {
                "copy": copy_run(lambda to: shutil.copyfile(source, to), source, root / "c", True),
                "copy_to_disk": copy_run(
                    lambda to: copy_to_disk(source, to), source, root / "d", True
                ),
                **{
                    impl: put(proc, f"put-{impl}", addr, large)
                    for impl, (proc, addr) in servers.items()
                },
            }
        )
        server_rss_large = {impl: peak_rss_mb(proc.pid) for impl, (proc, _) in servers.items()}
        small_puts = rounds(
            {
                "copy": copy_run(lambda to: shutil.copytree(small, to), small, root / "s", False),
                **{
                    impl: put(proc, f"put-{impl}", addr, small)
                    for impl, (proc, addr) in servers.items()
                },
            }
        )
        readers = {
            "library": ("read-library", "library"),
            "sdk": ("read-sdk", "sdk"),
            "no_digest": ("read-library-nodigest", "library"),
        }
        large_reads = rounds(
            {
                name: read(proc, mode, addr, "large", root / f"back-{name}", data_dirs[impl])
                for name, (mode, impl) in readers.items()
                for proc, addr in [servers[impl]]
            }
        )
        small_reads = rounds(
            {
                impl: read(
                    proc,
                    f"read-{impl}",
                    addr,
                    "small",
                    root / f"back-{impl}",
                    data_dirs[impl],
                    True,
                )
                for impl, (proc, addr) in servers.items()
            }
        )
        server_rss_all = {impl: peak_rss_mb(proc.pid) for impl, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
        for folder in [*data_dirs.values(), *root.glob("back-*"), *root.glob("s-*")]:
            shutil.rmtree(folder, ignore_errors=True)
    results = {
        impl: {
            "large_put_mb_s": round(LARGE_MB / large_puts[impl]["seconds"], 1),
            "small_put_files_s": round(SMALL_FILES / small_puts[impl]["seconds"], 1),
            "large_read_mb_s": round(LARGE_MB / large_reads[impl]["seconds"], 1),
            "small_read_files_s": round(SMALL_FILES / small_reads[impl]["seconds"], 1),
            "client_peak_rss_mb_large_put": round(large_puts[impl]["peak_rss_mb"], 1),
            "client_peak_rss_mb_large_read": round(large_reads[impl]["peak_rss_mb"], 1),
            "server_peak_rss_mb_large_put": round(server_rss_large[impl], 1),
            "server_peak_rss_mb_all": round(server_rss_all[impl], 1),
        }
        for impl in IMPLS
    }
    results["library"].update(no_digest_figures(large_reads["no_digest"]))
    results["plain_copy"] = {
        "large_mb_s": round(LARGE_MB / large_puts["copy"]["seconds"], 1),
        "large_to_disk_mb_s": round(LARGE_MB / large_puts["copy_to_disk"]["seconds"], 1),
        "small_files_s": round(SMALL_FILES / small_puts["copy"]["seconds"], 1),
    }
    results["cpu"] = {
        impl: {"large_put": cpu_split(large_puts[impl]), "large_read": cpu_split(large_reads[impl])}
        for impl in IMPLS
    }
    return results


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        large, small = make_data(root)
        results = with_servers(root, large, small)
        alone = {"client": client_alone(root, large), "server": server_alone(root, large)}
        lib, sdk, plain = results["library"], results["sdk"], results["plain_copy"]
        figures = {
            "benchmark": "commit",
            "large_file_mb": LARGE_MB,
            "small_files": SMALL_FILES,
            "small_file_bytes": SMALL_BYTES,
            "library": lib,
            "baseline_sdk": sdk,
            "baseline_plain_copy": plain,
            "ratios": {
                "large_put_vs_sdk": round(lib["large_put_mb_s"] / sdk["large_put_mb_s"], 2),
                "small_put_vs_sdk": round(lib["small_put_files_s"] / sdk["small_put_files_s"], 2),
                "large_put_vs_plain_copy": round(lib["large_put_mb_s"] / plain["large_mb_s"], 2),
                "large_put_vs_copy_to_disk": round(
                    lib["large_put_mb_s"] / plain["large_to_disk_mb_s"], 2
                ),
                "large_read_vs_sdk": round(lib["large_read_mb_s"] / sdk["large_read_mb_s"], 2),
                "small_read_vs_sdk": round(
                    lib["small_read_files_s"] / sdk["small_read_files_s"], 2
                ),
                **{
                    f"client_alone_large_{op}_vs_sdk": round(
                        alone["client"]["library"][f"large_{op}_mb_s"]
                        / alone["client"]["sdk"][f"large_{op}_mb_s"],
                        2,
                    )
                    for op in ("put", "read")
                },
            },
            "cpu_s_with_local_server": results["cpu"],
            "client_alone": alone["client"],
            "server_alone": alone["server"],
            "bytes_large": LARGE_MB << 20,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:6])
    else:
        main()
