"""start_tfjob: run a kubeflow.org/v1 TFJob on input commits; its result is a new commit.

Generated from the contract in :mod:`kfp_pachyderm.bodies.start_tfjob`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.start_tfjob import CONTRACT

start_tfjob = CONTRACT.component()
