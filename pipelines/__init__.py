"""Kubeflow Pipelines pipelines of kfp-pachyderm, importable as ``kfp_pachyderm.pipelines``.

Each module defines one pipeline; its compiled YAML, for the KFP UI, sits beside it.

>>> from kfp_pachyderm.pipelines import mnist_tfjob            # doctest: +SKIP
>>> kfp.Client(host).create_run_from_pipeline_func(mnist_tfjob, arguments={...})
"""

from kfp_pachyderm.pipelines.gpu_check import gpu_check
from kfp_pachyderm.pipelines.issue_summarization import issue_summarization
from kfp_pachyderm.pipelines.mnist_gpu import mnist_gpu
from kfp_pachyderm.pipelines.mnist_tfjob import mnist_tfjob
from kfp_pachyderm.pipelines.tf_distributed_sample import tf_distributed_sample

PIPELINES = {
    "mnist_tfjob": mnist_tfjob,
    "mnist_gpu": mnist_gpu,
    "tf_distributed_sample": tf_distributed_sample,
    "gpu_check": gpu_check,
    "issue_summarization": issue_summarization,
}

__all__ = [
    "PIPELINES",
    "gpu_check",
    "issue_summarization",
    "mnist_gpu",
    "mnist_tfjob",
    "tf_distributed_sample",
]
