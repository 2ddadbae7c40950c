"""Kubeflow Pipelines pipelines of kfp-pachyderm, importable as ``kfp_pachyderm.pipelines``.

Each module defines one pipeline and, next to it, its ``SPEC``
(:class:`~kfp_pachyderm.kfp.pipeline_spec.PipelineSpec`: its data parameter, the branches its
steps write, its demo data and what prints its local result); its compiled YAML, for the KFP
UI, sits beside it. ``SPECS`` lists them, and everything that needs to know a pipeline (the
catalogue, the command line, local runs) reads it from there.

>>> from kfp_pachyderm.pipelines import mnist_tfjob            # doctest: +SKIP
>>> kfp.Client(host).create_run_from_pipeline_func(mnist_tfjob, arguments={...})
"""

from kfp_pachyderm.pipelines.gpu_check import SPEC as GPU_CHECK
from kfp_pachyderm.pipelines.issue_summarization import SPEC as ISSUE_SUMMARIZATION
from kfp_pachyderm.pipelines.mnist_gpu import SPEC as MNIST_GPU
from kfp_pachyderm.pipelines.mnist_tfjob import SPEC as MNIST_TFJOB
from kfp_pachyderm.pipelines.tf_distributed_sample import SPEC as TF_DISTRIBUTED_SAMPLE

SPECS = {
    spec.name: spec
    for spec in (MNIST_TFJOB, MNIST_GPU, TF_DISTRIBUTED_SAMPLE, GPU_CHECK, ISSUE_SUMMARIZATION)
}
PIPELINES = {name: spec.pipeline for name, spec in SPECS.items()}

gpu_check = GPU_CHECK.pipeline
issue_summarization = ISSUE_SUMMARIZATION.pipeline
mnist_gpu = MNIST_GPU.pipeline
mnist_tfjob = MNIST_TFJOB.pipeline
tf_distributed_sample = TF_DISTRIBUTED_SAMPLE.pipeline

__all__ = [
    "PIPELINES",
    "SPECS",
    "gpu_check",
    "issue_summarization",
    "mnist_gpu",
    "mnist_tfjob",
    "tf_distributed_sample",
]
