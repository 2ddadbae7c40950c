"""Training throughput of the library's training loop (what the train component and the TFJob
replicas run) against Keras ``model.fit`` of the same model on the same data, same run.

Prints one JSON line. Target (issue 6): the library at >= 0.95x ``model.fit``'s examples/s.
The data is the digits demo set repeated ``BENCH_TRAIN_REPEAT`` times (default 10, ~14k
examples); both sides train the same epochs with the same batch size, compile time included.

    .venv/bin/python bench/bench_train.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kfp_pachyderm.trainer.data import digits_as_mnist
from kfp_pachyderm.trainer.device import inspect_devices
from kfp_pachyderm.trainer.model import build_model, train

REPEAT = int(os.environ.get("BENCH_TRAIN_REPEAT", "10"))
EPOCHS = int(os.environ.get("BENCH_TRAIN_EPOCHS", "3"))
BATCH = 64


def main() -> None:
    arrays = digits_as_mnist()
    arrays["x_train"] = np.concatenate([arrays["x_train"]] * REPEAT)
    arrays["y_train"] = np.concatenate([arrays["y_train"]] * REPEAT)
    examples = EPOCHS * len(arrays["x_train"])

    with tempfile.TemporaryDirectory() as tmp:
        library = train(arrays, Path(tmp) / "model", EPOCHS, BATCH)["examples_per_second"]

    model = build_model()
    start = time.perf_counter()
    model.fit(arrays["x_train"], arrays["y_train"], batch_size=BATCH, epochs=EPOCHS, verbose=0)
    fit = examples / (time.perf_counter() - start)

    device = inspect_devices()
    print(
        json.dumps(
            {
                "benchmark": "train",
                "examples": examples,
                "batch_size": BATCH,
                "device": f"{device.gpu_count} GPU" if device.gpus else "CPU",
                "library_examples_per_s": round(library, 1),
                "baseline_model_fit_examples_per_s": round(fit, 1),
                "ratio": round(library / fit, 3),
                "target_ratio": 0.95,
            }
        )
    )


if __name__ == "__main__":
    main()
