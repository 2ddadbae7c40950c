"""A gRPC server that costs its client as little as a server can, for ``bench_commit``'s
"client alone" figures: ModifyFile drops what it reads, GetFileTAR sends one large file from
messages built once.

    python bench/sink.py <address file> <file size in bytes>
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

MESSAGE_BYTES = 1 << 20  # the local server's GetFile message size


def large_messages(encode, size: int) -> tuple[bytes, int]:
    """One pre-encoded message of a :data:`MESSAGE_BYTES` random block, and how many of them
    (plus a shorter last one, when ``size`` is not a multiple) make a file of ``size`` bytes."""
    block = os.urandom(MESSAGE_BYTES)
    return encode(block), size // MESSAGE_BYTES


def sink_main(address_file: str, size: int) -> None:
    """A gRPC server that costs its client as little as a server can: ModifyFile reads and
    drops every message, GetFileTAR sends a tar of one large file (``/blob.bin``) from
    messages built once, in the local server's layout (the header, then 1 MiB messages)."""
    import tarfile
    from concurrent import futures

    import grpc

    from kfp_pachyderm.codec.wire import encode_bytes_value

    info = tarfile.TarInfo("/blob.bin")
    info.size, info.mode = size, 0o644
    header = encode_bytes_value(info.tobuf(format=tarfile.PAX_FORMAT))
    message, count = large_messages(encode_bytes_value, size)
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


def start_sink(root: Path, size: int) -> tuple[subprocess.Popen, str]:
    """:func:`sink_main` as a child process, serving a file of ``size`` bytes; (process,
    address)."""
    address_file = root / "sink-address"
    proc = subprocess.Popen([sys.executable, __file__, str(address_file), str(size)])
    deadline = time.monotonic() + 60
    while not address_file.exists() or not address_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the sink did not start")
        time.sleep(0.05)
    return proc, address_file.read_text()


if __name__ == "__main__":
    sink_main(sys.argv[1], int(sys.argv[2]))
