"""S3 gateway throughput against the gRPC path, on the same local server in the same run.

Prints one JSON line: MB/s of writing and reading one object (1 GiB unless ``BENCH_S3_MB``)
through boto3 (``put_object``, ``get_object``, and the transfer manager's multipart
``upload_file`` / ranged ``download_file``) and through pachyderm_sdk over gRPC
(``put_file_from_file`` in a commit, ``pfs_file`` read), plus the server's peak RSS after the S3
operations (they run first), which shows that no request holds a whole object in memory, and
the median latency of PutObject, GetObject and HeadObject on 200 objects of 4 KiB (target:
GetObject within 2x of HeadObject, measured in the same run), and the time
CompleteMultipartUpload takes for 8 parts of 32 MiB and of 5 MiB (it writes no byte again, so
it does not grow with the size; before, it wrote the object a second time). The
server runs as its own process (``kfp-pachyderm local serve --s3-port``); the client is this
process.

    .venv/bin/python bench/bench_s3.py
    BENCH_S3_MB=256 .venv/bin/python bench/bench_s3.py
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import peak_rss_mb, start_server, timed

SIZE_MB = int(os.environ.get("BENCH_S3_MB", "1024"))
MB = 1 << 20
SMALL_OBJECTS, SMALL_BYTES = 200, 4096
TRANSFER_CHUNK = 8 * MB  # TransferConfig's default multipart_chunksize


def median_ms(call, count: int = SMALL_OBJECTS) -> float:
    """The median time of ``call(i)`` for i in range(count), in milliseconds."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def multipart_etag(digests: list[bytes]) -> str:
    """S3's multipart ETag over the gateway's part ETags (their BLAKE3 digests)."""
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


def complete_seconds(s3, key: str, parts: int, part_mb: int) -> float:
    """Upload ``parts`` parts of ``part_mb`` MiB, then time CompleteMultipartUpload alone."""
    upload = s3.create_multipart_upload(Bucket="s3bench", Key=key)["UploadId"]
    listed = []
    for number in range(1, parts + 1):
        body = os.urandom(part_mb * MB)
        etag = s3.upload_part(
            Bucket="s3bench", Key=key, UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        listed.append({"PartNumber": number, "ETag": etag})
    start = time.perf_counter()
    s3.complete_multipart_upload(
        Bucket="s3bench", Key=key, UploadId=upload, MultipartUpload={"Parts": listed}
    )
    seconds = time.perf_counter() - start
    size = s3.head_object(Bucket="s3bench", Key=key)["ContentLength"]
    assert size == parts * part_mb * MB, size
    return seconds


def main() -> None:
    import boto3
    from blake3 import blake3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        root = Path(tmp)
        source = root / "source.bin"
        digest = blake3()
        part_digests, part = [], blake3()
        with open(source, "wb") as f:
            for i in range(SIZE_MB):
                block = os.urandom(MB)
                digest.update(block)
                part.update(block)
                if (i + 1) % (TRANSFER_CHUNK // MB) == 0 or i + 1 == SIZE_MB:
                    part_digests.append(part.digest())
                    part = blake3()
                f.write(block)
        expected_etag = f'"{digest.hexdigest()}"'
        (root / "pfs").mkdir()
        proc, address, endpoint = start_server(root / "pfs" / "data", s3=True)
        try:
            client = Client.from_pachd_address(address)
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}, read_timeout=600),
            )
            s3.create_bucket(Bucket="s3bench")
            client.pfs.create_repo(repo=pfs.Repo(name="grpcbench"))
            grpc_branch = pfs.Branch(repo=pfs.Repo(name="grpcbench"), name="master")
            transfer = TransferConfig()

            def s3_put() -> None:
                with open(source, "rb") as f:
                    etag = s3.put_object(Bucket="s3bench", Key="put.bin", Body=f)["ETag"]
                assert etag == expected_etag, etag

            def s3_upload() -> None:
                s3.upload_file(str(source), "s3bench", "upload.bin", Config=transfer)

            def s3_get() -> None:
                body = s3.get_object(Bucket="s3bench", Key="put.bin")["Body"]
                size = sum(len(chunk) for chunk in body.iter_chunks(MB))
                assert size == SIZE_MB * MB, size

            def s3_download() -> None:
                target = root / "download.bin"
                s3.download_file("s3bench", "upload.bin", str(target), Config=transfer)
                target.unlink()

            def grpc_put() -> None:
                with client.pfs.commit(branch=grpc_branch) as commit, open(source, "rb") as f:
                    commit.put_file_from_file(path="/put.bin", file=f)

            def grpc_get() -> None:
                file = pfs.File(commit=pfs.Commit(branch=grpc_branch), path="/put.bin")
                size = 0
                with client.pfs.pfs_file(file) as f:
                    while data := f.read(4 * MB):
                        size += len(data)
                assert size == SIZE_MB * MB, size

            seconds = {
                "s3_put_object": timed(s3_put),
                "s3_upload_file": timed(s3_upload),
                "s3_get_object": timed(s3_get),
                "s3_download_file": timed(s3_download),
            }
            head = s3.head_object(Bucket="s3bench", Key="upload.bin")
            assert head["ETag"] == multipart_etag(part_digests), head["ETag"]
            complete_s = {
                "8_parts_of_32_mib": round(complete_seconds(s3, "complete-256.bin", 8, 32), 4),
                "8_parts_of_5_mib": round(complete_seconds(s3, "complete-40.bin", 8, 5), 4),
            }
            small = b"x" * SMALL_BYTES
            latency_ms = {
                "put_object": median_ms(
                    lambda i: s3.put_object(Bucket="s3bench", Key=f"small/{i}", Body=small)
                ),
                "get_object": median_ms(
                    lambda i: s3.get_object(Bucket="s3bench", Key=f"small/{i}")["Body"].read()
                ),
                "head_object": median_ms(
                    lambda i: s3.head_object(Bucket="s3bench", Key=f"small/{i}")
                ),
            }
            rss_after_s3 = peak_rss_mb(proc.pid)
            seconds["grpc_put"] = timed(grpc_put)
            seconds["grpc_get"] = timed(grpc_get)
            rss_after_all = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        mb_s = {f"{name}_mb_s": round(SIZE_MB / s, 1) for name, s in seconds.items()}
        print(
            json.dumps(
                {
                    "object_mb": SIZE_MB,
                    **mb_s,
                    "ratio_s3_put_object_vs_grpc": round(
                        mb_s["s3_put_object_mb_s"] / mb_s["grpc_put_mb_s"], 2
                    ),
                    "ratio_s3_get_object_vs_grpc": round(
                        mb_s["s3_get_object_mb_s"] / mb_s["grpc_get_mb_s"], 2
                    ),
                    "small_object_p50_ms": latency_ms,
                    "get_vs_head_p50": round(
                        latency_ms["get_object"] / latency_ms["head_object"], 2
                    ),
                    "target_get_vs_head_p50": 2.0,
                    "complete_multipart_upload_s": complete_s,
                    "server_peak_rss_mb_s3": round(rss_after_s3, 1),
                    "server_peak_rss_mb_s3_and_grpc": round(rss_after_all, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )


if __name__ == "__main__":
    main()
