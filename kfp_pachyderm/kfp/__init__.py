"""The KFP glue: the commit artifact, the component images, and the chainable cluster helpers
(``use_pachyderm``, ``with_gpu``, ``use_registry_credentials``).

Builds on :mod:`kfp_pachyderm.pfs`; the capability packages and component bodies build on it.
"""
