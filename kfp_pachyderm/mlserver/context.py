"""The build context of a model's MLServer image: everything needed to build, run or audit it.

Committed to the builds repo before the image is built::

    Dockerfile         FROM <base@digest>; COPY model/ /mnt/models/ and /models/; the labels
    requirements.txt   the serving requirements (MLServer, TensorFlow CPU)
    README.md          what this is, and how to serve it without a cluster
    model/             the self-contained MLServer model directory (:mod:`.settings`):
                       model-settings.json, the runtime, provenance.json, 1/ (the SavedModel)

``model/`` is exactly what the image layer holds at ``/mnt/models`` (and, as hard links, at
``/models``, where a KServe modelcar serves it from), and what KServe's storage initializer
or Seldon Core 2's agent downloads through the S3 gateway.
"""

from __future__ import annotations

import json
from pathlib import Path

from kfp_pachyderm import __version__
from kfp_pachyderm.mlserver.settings import SERVING_REQUIREMENTS, write_model_dir
from kfp_pachyderm.modelimage.build import CONTEXT_MODEL_DIR, IMAGE_MODEL_DIR, MODELCAR_MODEL_DIR
from kfp_pachyderm.modelimage.context import dockerfile, model_uri_for_context
from kfp_pachyderm.oci.reference import ImageRef

# The MLServer image also holds its model where a KServe modelcar reads it.
MLSERVER_LINKED_MODEL_DIRS = (MODELCAR_MODEL_DIR,)


def readme(model: str, name: str, base: ImageRef, image: str) -> str:
    """The README of an MLServer build context."""
    request = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "data": "..."}]}
    )
    return f"""# MLServer serving image of {model}

Built by kfp-pachyderm {__version__} (`build_mlserver_image`) on `{base}`; pushed as
`{image or "(no image pushed)"}`, tagged with the model's commit ID.

- `{CONTEXT_MODEL_DIR}/`: the MLServer model `{name}` (in the image at `{IMAGE_MODEL_DIR}/`, and
  as hard links at `{MODELCAR_MODEL_DIR}/` for KServe's `storageUri: oci://<image>`):
  `model-settings.json`, the runtime that serves a TensorFlow SavedModel, `provenance.json`
  (the model commit and what made it) and the SavedModel in `1/`. Every response's
  `model_version` is the model commit ID.

Serve it here, without a cluster (Python 3.11), over the Open Inference Protocol (V2):

```sh
python -m venv venv && venv/bin/pip install -r requirements.txt
venv/bin/mlserver start {CONTEXT_MODEL_DIR}
curl -s localhost:8080/v2/models/{name}/infer -H 'Content-Type: application/json' \\
    -d '{request}'   # data: the input's values, row-major
```

MLServer is licensed under the Apache License 2.0.
"""


def write_mlserver_context(
    dest: Path,
    model_dir: Path,
    provenance: dict,
    base: ImageRef,
    labels: dict[str, str],
    image: str = "",
    *,
    name: str,
) -> Path:
    """Write the MLServer build context for the SavedModel in ``model_dir`` into the empty or
    absent directory ``dest``, serving it as model ``name``; return ``dest``.

    ``provenance`` becomes ``model/provenance.json`` (it must name ``model.uri``); ``base``
    should be pinned to a digest; ``image`` is where the image is pushed, for the README.
    """
    uri = model_uri_for_context(dest, provenance)
    write_model_dir(dest / CONTEXT_MODEL_DIR, model_dir, provenance, name)
    (dest / "Dockerfile").write_text(
        dockerfile(
            base, labels, uri, "MLServer", "build_mlserver_image", MLSERVER_LINKED_MODEL_DIRS
        )
    )
    (dest / "requirements.txt").write_text("\n".join(SERVING_REQUIREMENTS) + "\n")
    (dest / "README.md").write_text(readme(uri, name, base, image))
    return dest
