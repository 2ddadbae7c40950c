"""What each TFJob replica runs: ``python -m kfp_pachyderm.trainer [--epochs N] [--batch-size N]``.

Reads the input commit (``KFP_PACHYDERM_INPUT``) directly from Pachyderm or, with
``KFP_PACHYDERM_DATA_MODE=s3``, through the S3 gateway (the ``S3_*`` variables of
:func:`kfp_pachyderm.pfs.s3.s3_env`); trains under ``MultiWorkerMirroredStrategy`` when
``TF_CONFIG`` names several replicas; and the chief writes ``/model`` (a SavedModel) and
``/metrics.json`` into the open output commit (``KFP_PACHYDERM_OUTPUT``), which the launcher
opened and will finish. Parameter servers and evaluators have no part in this strategy and
exit at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from kfp_pachyderm.tfjob.env import DATA_MODE_ENV, INPUT_ENV, OUTPUT_ENV
from kfp_pachyderm.trainer.data import load_mnist_npz
from kfp_pachyderm.trainer.io import fetch_input, publish
from kfp_pachyderm.trainer.model import train, write_metrics
from kfp_pachyderm.validation import DATA_MODES

STRATEGY_TYPES = ("chief", "worker")

log = logging.getLogger("kfp_pachyderm.trainer")


def replica_role(tf_config: dict) -> tuple[str, int, bool]:
    """(task type, index, is_chief) from TF_CONFIG; the chief is ``chief``, else worker 0."""
    task = tf_config.get("task", {})
    task_type, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)
    return task_type, index, is_chief


def strategy_for(tf_config: dict):
    """MultiWorkerMirroredStrategy over the chief and workers when there are several, else the
    default strategy. TF_CONFIG is narrowed to those replicas first."""
    import tensorflow as tf

    cluster = {k: v for k, v in tf_config.get("cluster", {}).items() if k in STRATEGY_TYPES}
    if sum(len(v) for v in cluster.values()) <= 1:
        return tf.distribute.get_strategy()
    os.environ["TF_CONFIG"] = json.dumps({**tf_config, "cluster": cluster})
    return tf.distribute.MultiWorkerMirroredStrategy()


def whole_number(text: str) -> int:
    """``"2"`` or ``"2.0"`` (KFP can render an integer parameter either way) as 2."""
    value = float(text)
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a replica."""
    parser = argparse.ArgumentParser(prog="python -m kfp_pachyderm.trainer")
    parser.add_argument("--epochs", type=whole_number, default=2)
    parser.add_argument("--batch-size", type=whole_number, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task_type, index, is_chief = replica_role(tf_config)
    if task_type not in STRATEGY_TYPES:
        log.info("%s-%d has no part in MultiWorkerMirroredStrategy; exiting", task_type, index)
        return 0
    strategy = strategy_for(tf_config)
    mode = os.environ.get(DATA_MODE_ENV, "pfs")
    if mode not in DATA_MODES:
        raise SystemExit(f"{DATA_MODE_ENV}={mode!r} is invalid: one of {', '.join(DATA_MODES)}")
    input_ref, output_ref = os.environ.get(INPUT_ENV, ""), os.environ.get(OUTPUT_ENV, "")
    if mode == "pfs" and not (input_ref and output_ref):
        raise SystemExit(f"set {INPUT_ENV} and {OUTPUT_ENV} (commit references)")

    with tempfile.TemporaryDirectory() as tmp:
        arrays = load_mnist_npz(fetch_input(mode, input_ref, Path(tmp) / "input"))
        out = Path(tmp) / "output"
        out.mkdir()
        model_dir = out / "model" if is_chief else Path(tmp) / f"model-{task_type}-{index}"
        metrics = train(arrays, model_dir, args.epochs, args.batch_size, strategy)
        log.info("%s-%d metrics: %s", task_type, index, json.dumps(metrics))
        if is_chief:
            write_metrics(out / "metrics.json", metrics)
            publish(mode, output_ref, out)
            log.info("chief wrote the model and metrics to %s", output_ref or "the output bucket")
    return 0


if __name__ == "__main__":
    sys.exit(main())
