"""Kubeflow Pipelines components of kfp-pachyderm, importable as ``kfp_pachyderm.components``.

Each component lives in its own folder with a thin ``component.py``, its compiled
``component.yaml`` and a README. The work each one does is in the ``kfp_pachyderm`` library.
"""
