"""What the component bodies share beyond their contract: writing manifests."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_manifests(artifact, documents: list[dict], note: str = "") -> None:
    """Write ``documents`` to ``artifact`` as one multi-document YAML file (a comment when
    there are none)."""
    text = yaml.safe_dump_all(documents, sort_keys=False) if documents else f"# {note}\n"
    Path(artifact.path).write_text(text)
