"""inspect_provenance: the full upstream graph of a commit, as JSON, Markdown and HTML.

Generated from the contract in :mod:`kfp_pachyderm.bodies.inspect_provenance`, the one place its
parameters are declared.
"""

from kfp_pachyderm.bodies.inspect_provenance import CONTRACT

inspect_provenance = CONTRACT.component()
