"""A model commit as a serving image: what every serving flavour (Seldon Core 1, MLServer)
shares.

- :mod:`.build`: commit the build context, append the model as one reproducible layer at
  :data:`~.build.IMAGE_MODEL_DIR` onto a base image, push ``<image>:<model commit ID>`` and
  record the image in the provenance of the model and build commits. A flavour
  (:class:`~.build.ImageFlavor`) supplies only its base image, its build context and its
  names.
"""
