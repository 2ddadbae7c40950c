"""The environment start_tfjob gives the code in each replica: which commits to read, which
open commit to write, and how to reach them."""

from __future__ import annotations

import os
from collections.abc import Mapping

from kfp_pachyderm.pfs.refs import CommitRef

INPUT_ENV = "KFP_PACHYDERM_INPUT"
INPUTS_ENV = "KFP_PACHYDERM_INPUTS"
OUTPUT_ENV = "KFP_PACHYDERM_OUTPUT"
DATA_MODE_ENV = "KFP_PACHYDERM_DATA_MODE"


def replica_inputs(inputs: list[CommitRef]) -> dict[str, str]:
    """The variables naming the input commits: ``KFP_PACHYDERM_INPUT`` the first one (what
    single-input training code reads), ``KFP_PACHYDERM_INPUTS`` all of them, one per line
    (paths may contain spaces)."""
    return {INPUT_ENV: str(inputs[0]), INPUTS_ENV: "\n".join(str(ref) for ref in inputs)}


def input_commits(environ: Mapping[str, str] = os.environ) -> list[CommitRef]:
    """Every input commit start_tfjob gave this replica, the first input first.

    Example, in training code that joins two datasets::

        images, labels = input_commits()
    """
    listed = environ.get(INPUTS_ENV) or environ.get(INPUT_ENV) or ""
    return [CommitRef.parse(ref) for ref in listed.splitlines() if ref]
