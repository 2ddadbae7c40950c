"""The OCI registry client layer: image references, credentials, the Distribution API, and
appending one reproducible layer to a base image (no Docker daemon).

Builds on :mod:`kfp_pachyderm.pfs` only for commit references in image labels.
"""
