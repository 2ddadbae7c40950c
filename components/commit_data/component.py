"""commit_data: put a local path, URL, S3 prefix or commit into a finished Pachyderm commit.

Generated from the contract in :mod:`kfp_pachyderm.bodies.commit_data`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.commit_data import CONTRACT

commit_data = CONTRACT.component()
