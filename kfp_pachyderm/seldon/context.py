"""The build context of a model's Seldon image: everything needed to build, run or audit it.

As the seed did, the context is committed to a builds repo before the image is built::

    Dockerfile            FROM <base@digest>; COPY model/ /mnt/models/; the image's labels
    savedmodel_server.py  the Seldon Core 1 model class (also in the base image)
    requirements.txt      the serving requirements (seldon-core 1.18, TensorFlow CPU)
    README.md             what this is, and how to run it without a cluster
    model/1/...           the SavedModel, in TensorFlow Serving's numbered-version layout
    model/provenance.json the model commit and what made it

``model/`` is exactly what the appended image layer holds at ``/mnt/models``, and what the
prepackaged ``TENSORFLOW_SERVER`` reads through the S3 gateway.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kfp_pachyderm import __version__
from kfp_pachyderm.modelimage.build import CONTEXT_MODEL_DIR, IMAGE_MODEL_DIR
from kfp_pachyderm.modelimage.context import (
    check_saved_model,
    dockerfile,
    link_or_copy,
    model_uri_for_context,
)
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.seldon.savedmodel_server import PROVENANCE_FILE

MODEL_CLASS = "savedmodel_server.SavedModelServer"
MODEL_CLASS_FILE = "savedmodel_server.py"
MODEL_VERSION = "1"
# The serving image's pins; images/seldon/requirements.txt lists the same (a test checks).
# seldon-core 1.18 pins protobuf<4 and numpy<2, and its gunicorn 20 needs pkg_resources
# (setuptools<81); TensorFlow 2.19 is the last release that accepts protobuf 3.20.
SERVING_REQUIREMENTS = (
    "seldon-core==1.18.2",
    "setuptools<81",
    "tensorflow-cpu==2.19.1",
    "protobuf==3.20.3",
    "numpy==1.26.4",
)


def model_class_source() -> str:
    """The text of the model class module, as it is copied into images and contexts."""
    return Path(__file__).with_name(MODEL_CLASS_FILE).read_text()


def readme(model: str, base: ImageRef, image: str) -> str:
    """The README of a build context."""
    parameters = json.dumps(
        [{"name": "model_uri", "value": CONTEXT_MODEL_DIR, "type": "STRING"}], separators=(",", ":")
    )
    return f"""# Seldon serving image of {model}

Built by kfp-pachyderm {__version__} (`build_seldon_image`) on `{base}`; pushed as
`{image or "(no image pushed)"}`, tagged with the model's commit ID.

- `{CONTEXT_MODEL_DIR}/{MODEL_VERSION}/`: the TensorFlow SavedModel; in the image at
  `{IMAGE_MODEL_DIR}/{MODEL_VERSION}/`.
- `{CONTEXT_MODEL_DIR}/{PROVENANCE_FILE}`: the model commit and what made it; every prediction's
  `meta.tags` carries the commit.
- `{MODEL_CLASS_FILE}`: the Seldon Core 1 model class `{MODEL_CLASS}`.

Run it here, without a cluster (Python 3.11):

```sh
python -m venv venv && venv/bin/pip install -r requirements.txt
venv/bin/seldon-core-microservice {MODEL_CLASS} --service-type MODEL \\
    --http-port 9000 --parameters '{parameters}'
curl -s localhost:9000/api/v1.0/predictions -H 'Content-Type: application/json' \\
    -d '{{"data": {{"ndarray": ROWS}}}}'   # ROWS: one array per example, as the model takes
```

Seldon Core 1.x is licensed under the Business Source License 1.1 (BSL 1.1), not an open source
license: check its terms before serving it in production.
"""


def write_build_context(
    dest: Path,
    model_dir: Path,
    provenance: dict,
    base: ImageRef,
    labels: dict[str, str],
    image: str = "",
) -> Path:
    """Write the build context for the SavedModel in ``model_dir`` into the empty or absent
    directory ``dest`` (model files are hard-linked where possible) and return ``dest``.

    ``provenance`` becomes ``model/provenance.json`` (it must name ``model.uri``); ``base``
    should be pinned to a digest; ``image`` is where the image is pushed, for the README.
    """
    check_saved_model(model_dir)
    uri = model_uri_for_context(dest, provenance)
    model = dest / CONTEXT_MODEL_DIR
    shutil.copytree(model_dir, model / MODEL_VERSION, copy_function=link_or_copy)
    (model / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    (dest / "Dockerfile").write_text(
        dockerfile(base, labels, uri, "Seldon Core 1", "build_seldon_image")
    )
    (dest / MODEL_CLASS_FILE).write_text(model_class_source())
    (dest / "requirements.txt").write_text("\n".join(SERVING_REQUIREMENTS) + "\n")
    (dest / "README.md").write_text(readme(uri, base, image))
    return dest
