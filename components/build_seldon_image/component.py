"""build_seldon_image: a model commit to a Seldon Core 1 serving image tagged with its ID.

Generated from the contract in :mod:`kfp_pachyderm.bodies.build_seldon_image`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.build_seldon_image import CONTRACT

build_seldon_image = CONTRACT.component()
