"""kfp-pachyderm: Kubeflow Pipelines components whose artifacts are Pachyderm commits.

The public API, importable from here:

>>> from kfp_pachyderm import CommitRef, connect, output_commit, put_tree, use_pachyderm
... # doctest: +SKIP

Names load on first use, so a TFJob replica or the local server that needs only the client
layer does not import KFP. The layers below (``pfs``, ``oci``, ``kfp``, ``lineage``, the
capability packages, ``bodies``, ``cli``) are described in the README's Architecture section.
"""

import importlib as _importlib
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("kfp-pachyderm")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "KfpPachydermError": "kfp_pachyderm.errors",
    "NotFoundError": "kfp_pachyderm.errors",
    "CommitRef": "kfp_pachyderm.pfs.refs",
    "connect": "kfp_pachyderm.pfs.connection",
    "ensure_branch": "kfp_pachyderm.pfs.commits",
    "ensure_repo": "kfp_pachyderm.pfs.commits",
    "inspect_commit": "kfp_pachyderm.pfs.commits",
    "output_commit": "kfp_pachyderm.pfs.commits",
    "resolve": "kfp_pachyderm.pfs.commits",
    "ProvenanceRecord": "kfp_pachyderm.pfs.provenance",
    "read_provenance": "kfp_pachyderm.pfs.provenance",
    "put_tree": "kfp_pachyderm.pfs.transfer",
    "read_tree": "kfp_pachyderm.pfs.transfer",
    "commit_data": "kfp_pachyderm.pfs.ingest",
    "S3Data": "kfp_pachyderm.pfs.s3",
    "s3_env": "kfp_pachyderm.pfs.s3",
    "trace": "kfp_pachyderm.lineage.trace",
    "commit_of": "kfp_pachyderm.kfp.artifacts",
    "describe_commit": "kfp_pachyderm.kfp.artifacts",
    "load_component": "kfp_pachyderm.kfp.compile",
    "runtime_image": "kfp_pachyderm.kfp.images",
    "use_pachyderm": "kfp_pachyderm.kfp.cluster",
    "use_registry_credentials": "kfp_pachyderm.kfp.cluster",
    "with_gpu": "kfp_pachyderm.kfp.cluster",
    "LocalPachyderm": "kfp_pachyderm.local.server",
    "pfs_step": "kfp_pachyderm.steps.component",
    "PfsStep": "kfp_pachyderm.steps.component",
    "BuildOptions": "kfp_pachyderm.modelimage.build",
    "build_seldon_image": "kfp_pachyderm.seldon.build",
    "build_mlserver_image": "kfp_pachyderm.mlserver.build",
    "ModelDeployer": "kfp_pachyderm.kserve.deploy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kfp_pachyderm' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The API (what ``__all__`` lists) and the version, not the module's own helpers."""
    return sorted([*__all__, "__version__"])
