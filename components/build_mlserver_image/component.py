"""build_mlserver_image: a model commit to an MLServer (Open Inference Protocol) serving image
tagged with its ID, and the KServe and Seldon Core 2 manifests that serve it.

Generated from the contract in :mod:`kfp_pachyderm.bodies.build_mlserver_image`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.build_mlserver_image import CONTRACT

build_mlserver_image = CONTRACT.component()
