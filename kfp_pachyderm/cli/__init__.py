"""The ``kfp-pachyderm`` command line: run, watch, compile, trace and the local server."""

from kfp_pachyderm.cli.main import main

__all__ = ["main"]
