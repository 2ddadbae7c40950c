"""The Pachyderm client layer: connecting to pachd, commit references, repos, branches and
output commits, streaming transfers, sources to ingest, and the provenance record.

Imports only :mod:`kfp_pachyderm.errors` and itself; every other layer builds on it.
"""
