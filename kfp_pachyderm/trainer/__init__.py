"""An MNIST-style classifier for TFJobs and the train step: data, model, and the entry point
replicas run (``python -m kfp_pachyderm.trainer``). Needs the ``train`` extra (TensorFlow)."""
