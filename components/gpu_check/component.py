"""gpu_check: record which devices TensorFlow sees, next to the listing of the input commit.

Generated from the contract in :mod:`kfp_pachyderm.bodies.gpu_check`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.gpu_check import CONTRACT

gpu_check = CONTRACT.component()
