"""finish_open_commits: the exit handler that leaves no commit of a failed run open.

Generated from the contract in :mod:`kfp_pachyderm.bodies.finish_open_commits`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.finish_open_commits import CONTRACT

finish_open_commits = CONTRACT.component()
