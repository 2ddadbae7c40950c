"""resolve_commit: pin a branch to its head commit once, optionally committing data first.

Generated from the contract in :mod:`kfp_pachyderm.bodies.resolve_commit`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.resolve_commit import CONTRACT

resolve_commit = CONTRACT.component()
