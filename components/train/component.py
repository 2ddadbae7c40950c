"""train: the MNIST trainer run inside the pipeline's own pod, on a GPU when it has one.

Generated from the contract in :mod:`kfp_pachyderm.bodies.train`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.train import CONTRACT

train = CONTRACT.component()
