"""Building and pushing the images the components run in, from a checkout's ``images/``:
locked wheelhouses, a Debian-only base, daemonless podman builds with fixed timestamps."""

from kfp_pachyderm.imagebuild.base import DEBIAN_BASE, debian_base
from kfp_pachyderm.imagebuild.builder import (
    BuildSettings,
    BuiltImage,
    build_images,
    podman_binary,
    push_image,
)
from kfp_pachyderm.imagebuild.catalog import ImageSource, image_sources
from kfp_pachyderm.imagebuild.wheelhouse import default_cache, library_wheel, wheelhouse

__all__ = [
    "DEBIAN_BASE",
    "BuildSettings",
    "BuiltImage",
    "ImageSource",
    "build_images",
    "debian_base",
    "default_cache",
    "image_sources",
    "library_wheel",
    "podman_binary",
    "push_image",
    "wheelhouse",
]
