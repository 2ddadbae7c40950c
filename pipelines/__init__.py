"""Kubeflow Pipelines pipelines of kfp-pachyderm, importable as ``kfp_pachyderm.pipelines``.

Each module defines one pipeline; its compiled YAML, for the KFP UI, sits beside it.

>>> from kfp_pachyderm.pipelines import mnist_tfjob            # doctest: +SKIP
>>> kfp.Client(host).create_run_from_pipeline_func(mnist_tfjob, arguments={...})
"""

from .gpu_check import gpu_check
from .mnist_gpu import mnist_gpu
from .mnist_tfjob import mnist_tfjob
from .tf_distributed_sample import tf_distributed_sample

PIPELINES = {
    "mnist_tfjob": mnist_tfjob,
    "mnist_gpu": mnist_gpu,
    "tf_distributed_sample": tf_distributed_sample,
    "gpu_check": gpu_check,
}

__all__ = ["PIPELINES", "gpu_check", "mnist_gpu", "mnist_tfjob", "tf_distributed_sample"]
