"""Kubeflow Pipelines pipelines of kfp-pachyderm, importable as ``kfp_pachyderm.pipelines``."""
