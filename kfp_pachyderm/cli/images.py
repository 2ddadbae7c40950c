"""``kfp-pachyderm images``: build the images under ``images/`` and push them, tagged as the
compiled YAML names them (``<registry>/kfp-pachyderm-<name>:<version>-python-3.11``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp_pachyderm.cli.options import image_registry


def _build(args: argparse.Namespace) -> int:
    from kfp_pachyderm.imagebuild import (
        BuildSettings,
        build_images,
        debian_base,
        default_cache,
        image_sources,
        podman_binary,
        push_image,
    )

    images = image_sources(args.source, args.only)
    podman = podman_binary()
    cache = args.cache or default_cache()
    base = debian_base(cache, podman) if args.debian_base else args.base
    settings = BuildSettings(
        source=args.source,
        registry=args.registry,
        base=base,
        cache=cache,
        podman=podman,
        no_cache=args.no_cache,
    )
    for built in build_images(images, settings):
        print(
            f"built {built.tag} ({built.image_id[:12]}, {built.size_bytes / 1e6:.0f} MB, "
            f"{built.seconds:.0f} s)",
            flush=True,
        )
        if args.push:
            digest = push_image(built.tag, podman, tls_verify=args.tls_verify)
            print(f"pushed {built.tag}@{digest}", flush=True)
    return 0


def _list(args: argparse.Namespace) -> int:
    from kfp_pachyderm.imagebuild import image_sources

    for image in image_sources(args.source, args.only):
        print(f"{image.short_name}\t{image.tag(args.registry)}\tbase {image.default_base}")
    return 0


def add_image_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``images build`` and ``images list``; ``image_registry`` checks ``--registry``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        type=image_registry,
        help="registry/organisation to tag for, as `compile --image-registry` takes it",
    )
    common.add_argument(
        "--only", nargs="+", metavar="NAME", help="just these images (runtime, trainer, ...)"
    )
    common.add_argument(
        "--source", type=Path, default=Path("."), help="the kfp-pachyderm checkout (default: .)"
    )
    group = commands.add_parser("images", help="build and push the components' images")
    actions = group.add_subparsers(dest="images_command", required=True)

    build = actions.add_parser(
        "build",
        parents=[common],
        help="build the images with podman, from locked wheelhouses",
        description="Build every image under images/ (or --only some) with podman. Python "
        "packages come from a wheelhouse made on this machine from each image's "
        "requirements.lock (hash-checked), so the build itself downloads nothing; timestamps "
        "are fixed, so two builds of one checkout give the same image.",
    )
    bases = build.add_mutually_exclusive_group()
    bases.add_argument("--base", help="base image for every build (default: each Dockerfile's)")
    bases.add_argument(
        "--debian-base",
        action="store_true",
        help="build the base from Debian's packages with mmdebstrap (no public registry needed)",
    )
    build.add_argument(
        "--no-cache", action="store_true", help="rebuild every step (podman build --no-cache)"
    )
    build.add_argument("--push", action="store_true", help="push each image once built")
    build.add_argument(
        "--no-tls-verify",
        dest="tls_verify",
        action="store_false",
        help="push over plain HTTP or without checking the certificate (a loopback registry)",
    )
    build.add_argument(
        "--cache", type=Path, help="wheelhouse cache (default ~/.cache/kfp-pachyderm)"
    )
    build.set_defaults(run=_build)

    listing = actions.add_parser("list", parents=[common], help="the images and their tags")
    listing.set_defaults(run=_list)
