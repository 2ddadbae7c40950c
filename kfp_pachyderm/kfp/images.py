"""Names of the container images the components run in, pinned to the package version.

The registry and organisation are chosen at compile time, through ``--image-registry`` of
``kfp-pachyderm compile`` or ``KFP_PACHYDERM_IMAGE_REGISTRY``, so a team can push the images to
its own (possibly air-gapped) registry and compile YAML that points there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from kfp_pachyderm import __version__

RUNTIME_IMAGE = "kfp-pachyderm-runtime"  # the image every component runs on by default

REGISTRY_ENV = "KFP_PACHYDERM_IMAGE_REGISTRY"
DEFAULT_REGISTRY = "ghcr.io/kfp-pachyderm"
# Not "python3...": kfp.local rewrites every "python3" in a command line, image arguments included.
PYTHON_TAG = "python-3.11"


def image(name: str, registry: str | None = None) -> str:
    """``<registry>/<name>:<version>-python-3.11``, e.g. the runtime image of this version.

    >>> image("kfp-pachyderm-runtime", "registry.example.com/ml")
    'registry.example.com/ml/kfp-pachyderm-runtime:...-python-3.11'  # doctest: +SKIP
    """
    registry = (registry or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY).rstrip("/")
    return f"{registry}/{name}:{__version__}-{PYTHON_TAG}"


@contextmanager
def image_registry(registry: str | None) -> Iterator[None]:
    """Images named while the block runs come from ``registry`` (through ``REGISTRY_ENV``,
    which modules read as they load); afterwards the variable is as it was. No registry: no
    change."""
    if not registry:
        yield
        return
    before = os.environ.get(REGISTRY_ENV)
    os.environ[REGISTRY_ENV] = registry
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(REGISTRY_ENV, None)
        else:
            os.environ[REGISTRY_ENV] = before


def runtime_image(registry: str | None = None) -> str:
    """The image every lightweight component of this library runs in (images/runtime)."""
    return image(RUNTIME_IMAGE, registry)


RUNNING_IMAGE_ENV = "KFP_PACHYDERM_IMAGE"


def running_image() -> str:
    """The image this step runs in, for the provenance record: ``KFP_PACHYDERM_IMAGE`` (set at
    image build time, ideally to the pushed reference with its digest), else the runtime image
    this version of the library names."""
    return os.environ.get(RUNNING_IMAGE_ENV) or runtime_image()


def sibling_image(name: str) -> str:
    """Image ``name`` of this library version, from the registry the running step's own image
    came from (``KFP_PACHYDERM_IMAGE``), so a default image follows the registry the YAML was
    compiled for; else as :func:`image` names it."""
    running = os.environ.get(RUNNING_IMAGE_ENV, "")
    return image(name, running.rsplit("/", 1)[0] if "/" in running else None)
