"""deploy_model: apply serving manifests and wait until the model commit serves.

Generated from the contract in :mod:`kfp_pachyderm.bodies.deploy_model`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.deploy_model import CONTRACT

deploy_model = CONTRACT.component()
