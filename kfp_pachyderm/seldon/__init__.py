"""Serving a model commit with Seldon Core 1: the model class, the image build and the manifests.

- :mod:`.savedmodel_server`: the Seldon Core 1 model class serving a TensorFlow SavedModel
  (runs in the serving image, imports no kfp_pachyderm).
- :mod:`.context`: the build context (the SavedModel, the model class, a Dockerfile).
- :mod:`.build`: ``build_seldon_image``, model commit to ``<image>:<commit ID>`` with no Docker
  daemon: the Seldon flavour of :mod:`kfp_pachyderm.modelimage.build`.
- :mod:`.deploy`: SeldonDeployment manifests for the image, or for the prepackaged
  ``TENSORFLOW_SERVER`` reading the model through the S3 gateway.
- :mod:`.job`: a Kubernetes Job building a Dockerfile context with rootless BuildKit, for
  images that need build steps (not the default).

Seldon Core 1.x is licensed under the Business Source License 1.1 (BSL 1.1).
"""
