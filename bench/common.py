"""What every benchmark needs: the local server as its own process, peak memory, a timer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def start_server(data_dir: Path, s3: bool = False) -> tuple[subprocess.Popen, str, str | None]:
    """``kfp-pachyderm local serve`` as a child process; (process, gRPC address, S3 URL)."""
    grpc_port = free_port()
    s3_port = free_port() if s3 else None
    address_file = data_dir.parent / f"address-{grpc_port}"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "kfp_pachyderm.cli", "local", "serve"]
    command += ["--port", str(grpc_port), "--data-dir", str(data_dir)]
    command += ["--address-file", str(address_file), "--create"]
    if s3_port:
        command += ["--s3-port", str(s3_port)]
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not address_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the local server did not start")
        time.sleep(0.05)
    s3_url = f"http://127.0.0.1:{s3_port}" if s3_port else None
    return proc, f"grpc://127.0.0.1:{grpc_port}", s3_url
