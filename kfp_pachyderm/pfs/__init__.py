"""The Pachyderm client layer: connecting to pachd, commit references, repos, branches and
output commits, streaming transfers, sources to ingest, and the provenance record.

Imports only :mod:`kfp_pachyderm.errors`, :mod:`kfp_pachyderm.codec` and itself; every other
layer above them builds on it.
"""
