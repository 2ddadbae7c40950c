"""Commit and read-back throughput, and peak memory, against the local server.

Prints one JSON line. Each figure of the library (``put_tree`` / ``read_tree``) is measured in
the same run as its baselines: the pachyderm_sdk's own helpers (``put_files``, one stream per
file; ``pfs_tar_file`` for reading) and a plain file copy on the same disk (the physical limit
here). The server runs as its own process; every client run is a fresh process, so peak RSS
(VmHWM) is per operation. Every timed figure but the plain copy of the small files is the
median of ``BENCH_REPEATS`` runs (3).

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
- ``client_alone``: each client against a *sink*, a gRPC server in its own process (this
  file's ``--sink`` mode) whose ModifyFile reads and drops every message and whose GetFileTAR
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
from collections.abc import Iterator
from pathlib import Path

from common import peak_rss_mb, start_server, timed

LARGE_MB = int(os.environ.get("BENCH_LARGE_MB", "1024"))
SMALL_FILES = int(os.environ.get("BENCH_SMALL_FILES", "10000"))
SMALL_BYTES = 4096
# The large file's put, read and plain copies run this many times and report the median run:
# one run of each varies by 10% or more here, as much as the figures compared.
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
MESSAGE_BYTES = 1 << 20  # the local server's GetFile message size


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
    seconds, cpu = time.perf_counter() - start, cpu_s() - start_cpu
    out = {"seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps({**out, "import_rss_mb": baseline_rss}))


def large_messages(encode) -> tuple[bytes, int]:
    """One pre-encoded message of a :data:`MESSAGE_BYTES` random block, and how many of them
    (plus a shorter last one, when the size is not a multiple) make the large file."""
    block = os.urandom(MESSAGE_BYTES)
    return encode(block), (LARGE_MB << 20) // MESSAGE_BYTES


def raw_requests(commit) -> Iterator[bytes]:
    """A ModifyFile stream of the large file's size, encoded before the clock starts counting
    (the same message over and over), so only the server's cost remains."""
    from pachyderm_sdk.api import pfs

    from kfp_pachyderm.pfs.wire import encode_add_file_raw

    message, count = large_messages(lambda block: encode_add_file_raw("/blob.bin", block))
    yield bytes(pfs.ModifyFileRequest(set_commit=commit))
    yield from itertools.repeat(message, count)
    if (LARGE_MB << 20) % MESSAGE_BYTES:
        yield encode_add_file_raw("/blob.bin", os.urandom((LARGE_MB << 20) % MESSAGE_BYTES))


def sink_main(address_file: str) -> None:
    """A gRPC server that costs its client as little as a server can: ModifyFile reads and
    drops every message, GetFileTAR sends a tar of one large file (``/blob.bin``) from
    messages built once, in the local server's layout (the header, then 1 MiB messages)."""
    import tarfile
    from concurrent import futures

    import grpc

    from kfp_pachyderm.pfs.wire import encode_bytes_value

    size = LARGE_MB << 20
    info = tarfile.TarInfo("/blob.bin")
    info.size, info.mode = size, 0o644
    header = encode_bytes_value(info.tobuf(format=tarfile.PAX_FORMAT))
    message, count = large_messages(encode_bytes_value)
    rest = os.urandom(size % MESSAGE_BYTES) + b"\0" * (-size % tarfile.BLOCKSIZE)
    end = encode_bytes_value(rest + b"\0" * (2 * tarfile.BLOCKSIZE))

    def modify_file(requests, ctx) -> bytes:
        for _ in requests:
            pass
        return b""

    def get_file_tar(request, ctx) -> Iterator[bytes]:
        yield header
        yield from itertools.repeat(message, count)
        yield end

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        handlers=[
            grpc.method_handlers_generic_handler(
                "pfs_v2.API",
                {
                    "ModifyFile": grpc.stream_unary_rpc_method_handler(modify_file),
                    "GetFileTAR": grpc.unary_stream_rpc_method_handler(get_file_tar),
                },
            )
        ],
        options=[("grpc.max_receive_message_length", 64 << 20)],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(address_file).write_text(f"grpc://127.0.0.1:{port}")
    server.wait_for_termination()


def start_sink(root: Path) -> tuple[subprocess.Popen, str]:
    """:func:`sink_main` as a child process; (process, address)."""
    address_file = root / "sink-address"
    proc = subprocess.Popen([sys.executable, __file__, "--sink", str(address_file)])
    deadline = time.monotonic() + 60
    while not address_file.exists() or not address_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the sink did not start")
        time.sleep(0.05)
    return proc, address_file.read_text()


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


def median_seconds(operation, cleanup, warm: Path) -> float:
    """The median seconds of :data:`REPEATS` runs of ``operation``, each after
    :func:`settle` (``warm``) and followed by ``cleanup``."""
    runs = []
    for _ in range(REPEATS):
        settle(warm)
        runs.append({"seconds": timed(operation)})
        cleanup()
    return median_run(runs)["seconds"]


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


def repeated_puts(server: subprocess.Popen, mode: str, address: str, source: Path) -> dict:
    """The median of :data:`REPEATS` :func:`served_run` puts (``mode``) of ``source``, each
    into a new repo (``<source name>``, ``<source name>1``, ...)."""
    names = [source.name] + [f"{source.name}{i}" for i in range(1, REPEATS)]
    return median_run([served_run(server, mode, address, source, name, source) for name in names])


def repeated_reads(
    server: subprocess.Popen,
    mode: str,
    address: str,
    back: Path,
    data_dir: Path | None,
    keep: bool = False,
) -> dict:
    """The median of :data:`REPEATS` :func:`served_run` reads (``mode``) of the repo named
    like ``back`` (``large`` or ``small``) from the server whose data is in ``data_dir``
    (None: the sink), each into a new folder ``<back>-<n>``, removed after the run unless
    ``keep``. Keep many small files until the end: ext4's inode allocator skips inodes deleted
    in the last minutes, so creating 10,000 files just after deleting 10,000 took two to three
    times the CPU here, more with every round."""
    runs = []
    for n in range(REPEATS):
        into = back.with_name(f"{back.name}-{n}")
        runs.append(served_run(server, mode, address, into, back.name, data_dir))
        if not keep:
            shutil.rmtree(into, ignore_errors=True)
    return median_run(runs)


def cpu_split(run: dict) -> dict:
    """CPU seconds of each side of one run."""
    return {"client": round(run["cpu_s"], 2), "server": round(run["server_cpu_s"], 2)}


def read_without_digest(
    server: subprocess.Popen,
    impl: str,
    address: str,
    back: Path,
    data_dir: Path | None,
    suffix: str = "",
) -> dict:
    """The library's large read with ``digest=False`` (no hash of the files) into ``back``
    (named ``large``), as a figure; nothing for the SDK, which never hashes."""
    if impl != "library":
        return {}
    run = repeated_reads(server, f"read-library-nodigest{suffix}", address, back, data_dir)
    return {
        "large_read_no_digest_mb_s": round(LARGE_MB / run["seconds"], 1),
        "large_read_no_digest_client_cpu_s": round(run["cpu_s"], 2),
    }


def client_alone(root: Path, large: Path) -> dict:
    """Each client's put and read of the large file against the sink: its own cost, with the
    server's as small as it gets."""
    sink, address = start_sink(root)
    figures: dict[str, dict] = {}
    try:
        for impl in ("library", "sdk"):
            back = root / "back-sink" / "large"
            put = repeated_puts(sink, f"put-{impl}-sink", address, large)
            read = repeated_reads(sink, f"read-{impl}-sink", address, back, None)
            figures[impl] = {
                "large_put_mb_s": round(LARGE_MB / put["seconds"], 1),
                "large_read_mb_s": round(LARGE_MB / read["seconds"], 1),
                **read_without_digest(sink, impl, address, back, None, "-sink"),
                "large_put": cpu_split(put),
                "large_read": cpu_split(read),
                "client_peak_rss_mb_large_read": round(read["peak_rss_mb"], 1),
            }
    finally:
        sink.terminate()
        sink.wait()
    return figures


def server_alone(root: Path, large: Path) -> dict:
    """The local server's put and read of the large file with clients that cost as little as
    a client can: pre-encoded ModifyFile messages in, GetFileTAR messages received and
    dropped."""
    data_dir = root / "pfs-alone"
    server, address, _ = start_server(data_dir)
    try:
        put = repeated_puts(server, "put-raw", address, large)
        read = repeated_reads(server, "read-raw", address, root / "back-alone" / "large", data_dir)
        return {
            "large_put_mb_s": round(LARGE_MB / put["seconds"], 1),
            "large_read_mb_s": round(LARGE_MB / read["seconds"], 1),
            "large_put": cpu_split(put),
            "large_read": cpu_split(read),
            "server_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
        }
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        large, small = make_data(root)
        large_bytes = LARGE_MB << 20
        copy = root / "copy.bin"
        source = large / "blob.bin"
        copy_large_s = median_seconds(lambda: shutil.copyfile(source, copy), copy.unlink, source)
        disk_copy_large_s = median_seconds(lambda: copy_to_disk(source, copy), copy.unlink, source)
        settle(small)
        copy_small_s = timed(lambda: shutil.copytree(small, root / "copy-small"))

        results: dict[str, dict] = {}
        cpu: dict[str, dict] = {}
        for impl in ("library", "sdk"):
            data_dir = root / f"pfs-{impl}"
            server, address, _ = start_server(data_dir)
            try:
                put_large = repeated_puts(server, f"put-{impl}", address, large)
                server_rss_large = peak_rss_mb(server.pid)
                put_small = repeated_puts(server, f"put-{impl}", address, small)
                back = root / f"back-{impl}"
                read_large = repeated_reads(
                    server, f"read-{impl}", address, back / "large", data_dir
                )
                no_digest = read_without_digest(server, impl, address, back / "large", data_dir)
                read_small = repeated_reads(
                    server, f"read-{impl}", address, back / "small", data_dir, keep=True
                )
                cpu[impl] = {"large_put": cpu_split(put_large), "large_read": cpu_split(read_large)}
                results[impl] = {
                    "large_put_mb_s": round(LARGE_MB / put_large["seconds"], 1),
                    "small_put_files_s": round(SMALL_FILES / put_small["seconds"], 1),
                    "large_read_mb_s": round(LARGE_MB / read_large["seconds"], 1),
                    **no_digest,
                    "small_read_files_s": round(SMALL_FILES / read_small["seconds"], 1),
                    "client_peak_rss_mb_large_put": round(put_large["peak_rss_mb"], 1),
                    "client_peak_rss_mb_large_read": round(read_large["peak_rss_mb"], 1),
                    "server_peak_rss_mb_large_put": round(server_rss_large, 1),
                    "server_peak_rss_mb_all": round(peak_rss_mb(server.pid), 1),
                }
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(data_dir, ignore_errors=True)

        alone = {"client": client_alone(root, large), "server": server_alone(root, large)}
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
                **{
                    f"client_alone_large_{op}_vs_sdk": round(
                        alone["client"]["library"][f"large_{op}_mb_s"]
                        / alone["client"]["sdk"][f"large_{op}_mb_s"],
                        2,
                    )
                    for op in ("put", "read")
                },
            },
            "cpu_s_with_local_server": cpu,
            "client_alone": alone["client"],
            "server_alone": alone["server"],
            "bytes_large": large_bytes,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "--sink":
        sink_main(sys.argv[2])
    else:
        main()
