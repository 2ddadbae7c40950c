"""What a local run of a training pipeline prints at its end (the reporters of the pipelines'
specs, :mod:`kfp_pachyderm.kfp.pipeline_spec`): the MNIST model's predictions for held-out
digits next to their labels, and the serving image the run built (or its build context)."""

from __future__ import annotations

import os

from kfp_pachyderm.kfp.pipeline_spec import LocalResult, OutputBranch
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.transfer import read_tree


def report_predictions(result: LocalResult, count: int = 10) -> None:
    """The trained model's predictions for the first ``count`` test digits of the data commit
    the run read, above their true labels."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up INFO lines
    import numpy as np
    import tensorflow as tf

    from kfp_pachyderm.trainer.data import load_mnist_npz

    model, scratch = result.commit, result.scratch
    read_tree(result.client, model.with_path("/model"), scratch / "model", digest=False)
    read_tree(result.client, result.data, scratch / "data", digest=False)
    arrays = load_mnist_npz(next((scratch / "data").rglob("*.npz")))
    served = tf.saved_model.load(str(scratch / "model"))
    images, labels = arrays["x_test"][:count], arrays["y_test"][:count]
    predicted = np.argmax(served.serve(tf.constant(images, tf.float32)).numpy(), axis=1)
    print(f"prediction from {model}: {predicted.tolist()}")
    print(f"true labels:{' ' * (len(str(model)) + 6)}{labels.tolist()}")


def report_serving(result: LocalResult, builds: OutputBranch) -> None:
    """The Seldon serving image the run pushed, from the model's provenance record; without
    one (no registry given), the build context it committed to ``builds``."""
    from kfp_pachyderm.seldon.build import IMAGE_RECORD_KEY

    record = read_provenance(inspect_commit(result.client, result.commit))
    image = record.extra.get(IMAGE_RECORD_KEY) if record else None
    if image:
        print(f"serving image: {image}")
        return
    branch = result.branch(builds)
    head = inspect_commit(result.client, branch)
    print(
        f"Seldon build context: {branch.repo}@{head.commit.id} (no registry given; "
        "--param serving_image=<registry>/<repo> --param push_image=true pushes the image)"
    )
