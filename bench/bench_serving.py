"""MLServer serving: the image build and push against ``skopeo copy``, and Open Inference
Protocol (V2) latency against the Seldon Core 1 microservice and TensorFlow in process, in the
same run.

Build: the MLServer build context of a real SavedModel of about 30 MB
(``BENCH_SERVING_MODEL_MB``) appended to a base with one ~16 MB layer and pushed to a fresh
registry, against ``skopeo copy`` of the finished image (bench/image_push.py; target: at most
1.5x; ``BENCH_SERVING_RUNS``, default 3).

Latency: the library's digit model (trained on the digits) served three ways, each asked
``BENCH_SERVING_REQUESTS`` times (default 300, after 20 warm-up requests) for one 28x28 image,
one request at a time over loopback HTTP: ``mlserver start`` on the model directory
(``POST /v2/models/mnist/infer``), ``seldon-core-microservice`` on the Seldon build context
(``POST /api/v1.0/predictions``), and the SavedModel's signature called in this process. Both
servers run from the test suite's cached virtualenvs (images/mlserver and images/seldon
requirements). p50 and p99 in milliseconds.

    .venv/bin/python bench/bench_serving.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common import REPO_ROOT
from image_push import COMMIT, measure_push

sys.path.insert(0, str(REPO_ROOT))

MODEL_MB = float(os.environ.get("BENCH_SERVING_MODEL_MB", "30"))
BASE_MB = float(os.environ.get("BENCH_SERVING_BASE_MB", "16"))
RUNS = int(os.environ.get("BENCH_SERVING_RUNS", "3"))
REQUESTS = int(os.environ.get("BENCH_SERVING_REQUESTS", "300"))
WARMUP = 20


def percentiles(call: Callable[[], object]) -> dict:
    """p50 and p99 of ``call`` in milliseconds, after a warm-up."""
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(times, n=100)
    return {"p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2)}


def main() -> None:
    import numpy as np
    import requests
    import tensorflow as tf
    from bench_seldon import export_model

    from kfp_pachyderm.mlserver.context import write_mlserver_context
    from kfp_pachyderm.mlserver.settings import SERVING_REQUIREMENTS, write_model_dir
    from kfp_pachyderm.oci.reference import ImageRef
    from kfp_pachyderm.seldon.context import write_build_context
    from kfp_pachyderm.trainer.data import digits_as_mnist
    from kfp_pachyderm.trainer.model import train
    from tests.serving_venv import MLServerProcess, serving_venv
    from tests.test_mlserver_serving import KSERVE_STORAGE
    from tests.test_seldon_serving import Microservice, seldon_venv

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        big = export_model(root / "saved_model")
        build = measure_push(
            root / "push", big, partial(write_mlserver_context, name="mnist"), BASE_MB, RUNS
        )

        arrays = digits_as_mnist()
        model_dir = root / "digits"
        train(arrays, model_dir, epochs=1, batch_size=64)
        image = arrays["x_test"][:1].astype(np.float32)
        provenance = {"model": {"uri": f"pfs://default/models@{COMMIT}", "commit": COMMIT}}
        served = write_model_dir(root / "mlserver-model", model_dir, provenance, "mnist")
        context = write_build_context(
            root / "seldon", model_dir, provenance, ImageRef.parse("python:3.11-slim"), {}
        )
        v2_body = {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": [1, 28, 28],
                    "data": image.ravel().tolist(),
                }
            ]
        }
        seldon_body = {"data": {"ndarray": image.tolist()}}
        session = requests.Session()

        def post(url: str, body: dict) -> None:
            response = session.post(url, json=body, timeout=30)
            response.raise_for_status()

        venv = serving_venv("mlserver", [*SERVING_REQUIREMENTS, KSERVE_STORAGE])
        with MLServerProcess(venv, served, "mnist") as server:
            mlserver = percentiles(partial(post, server.url("/v2/models/mnist/infer"), v2_body))
        microservice = Microservice(seldon_venv(), context)
        try:
            microservice.wait_ready()
            seldon = percentiles(
                partial(post, microservice.url("/api/v1.0/predictions"), seldon_body)
            )
        finally:
            microservice.stop()
        loaded = tf.saved_model.load(str(model_dir))  # holds the signature's variables
        in_process = percentiles(lambda: loaded.serve(tf.constant(image)).numpy())

    print(
        json.dumps(
            {
                "benchmark": "serving",
                "mlserver_image": build,
                "requests": REQUESTS,
                "v2_mlserver": mlserver,
                "seldon_core1_microservice": seldon,
                "tensorflow_in_process": in_process,
            }
        )
    )


if __name__ == "__main__":
    main()
