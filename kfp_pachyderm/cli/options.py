"""Argument types and shared options of the ``kfp-pachyderm`` command line: each type turns a
bad value into argparse's one-line usage error naming it and what is valid."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_REGISTRY_RE = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*/?$"
)


def port_number(text: str) -> int:
    """A TCP port for argparse: 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: 0 to 65535")
    return port


def kfp_host(text: str) -> str:
    """A KFP API endpoint for argparse: an http(s) URL."""
    if not re.match(r"^https?://[^\s/]+", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a KFP API URL: http(s)://host[:port], e.g. http://localhost:8080"
        )
    return text


def directory(text: str) -> Path:
    """A directory for argparse: one that exists, or a path where one can be made."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return path


def positive(text: str) -> int:
    """A whole number >= 1 for argparse."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def image_registry(text: str) -> str:
    """A registry and organisation for argparse, e.g. registry.example.com/ml."""
    if not _REGISTRY_RE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a registry: host[:port][/path] in lower case, e.g. "
            "registry.example.com/ml"
        )
    return text.rstrip("/")


ADDRESS_HELP = "pachd address (default: PACHD_ADDRESS, the pachctl config, or in-cluster settings)"


def add_address_option(parser: argparse.ArgumentParser) -> None:
    """``--address`` on a subcommand; given before the subcommand instead, it is kept."""
    parser.add_argument("--address", default=argparse.SUPPRESS, help=ADDRESS_HELP)
