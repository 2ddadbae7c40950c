"""What every flavour's build context holds besides its model: a Dockerfile that makes the
same image contents, and model files hard-linked rather than copied."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.modelimage.build import CONTEXT_MODEL_DIR, IMAGE_MODEL_DIR
from kfp_pachyderm.oci.reference import ImageRef


def dockerfile(
    base: ImageRef,
    labels: dict[str, str],
    model: str,
    server: str,
    step: str,
    linked_dirs: tuple[str, ...] = (),
) -> str:
    """A Dockerfile that builds the same image contents from the context: ``server``'s image of
    ``model``, made by the component ``step``; the model also in each of ``linked_dirs``."""
    label_lines = " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    linked = "".join(f"COPY {CONTEXT_MODEL_DIR}/ {d}/\n" for d in linked_dirs)
    if linked:
        linked = (
            f"# The same files again (the appended layer hard-links them, adding no bytes;\n"
            f"# a Dockerfile cannot, so this image holds them twice).\n{linked}"
        )
    return (
        f"# The {server} serving image of {model}.\n"
        f"# kfp-pachyderm's {step} makes it without a Docker daemon, by appending\n"
        "# model/ as one reproducible layer onto the base; a Dockerfile builder (see\n"
        "# kfp_pachyderm.seldon.job) makes the same files from this context, with other\n"
        "# timestamps and so another digest.\n"
        f"FROM {base}\n"
        f"COPY {CONTEXT_MODEL_DIR}/ {IMAGE_MODEL_DIR}/\n"
        f"{linked}"
        f"LABEL {label_lines}\n"
    )


def link_or_copy(source: str, dest: str) -> None:
    """Hard-link ``source`` to ``dest``, or copy it where a link is impossible (another file
    system); a ``copy_function`` for :func:`shutil.copytree`."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def model_uri_for_context(dest: Path, provenance: dict) -> str:
    """The model URI ``provenance`` names, once ``dest`` is known to be an empty or absent
    directory for a build context; KfpPachydermError otherwise."""
    uri = provenance.get("model", {}).get("uri")
    if not uri:
        raise UsageError("the provenance of a build context must name model.uri")
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"build context directory {dest} is not empty")
    return uri


def check_saved_model(model_dir: Path) -> Path:
    """``model_dir`` if it holds a TensorFlow SavedModel (``saved_model.pb``), else
    KfpPachydermError saying how to export one."""
    if not (Path(model_dir) / "saved_model.pb").is_file():
        raise UsageError(
            f"{model_dir} holds no saved_model.pb: the model must be a TensorFlow SavedModel "
            "(Keras 3: model.export(path, format='tf_saved_model'))"
        )
    return Path(model_dir)
