"""The model directory MLServer serves: a SavedModel, its provenance, its ``model-settings.json``
and the runtime, with nothing else needed on the path::

    model-settings.json      name, implementation, parameters.uri "./1", parameters.version
    savedmodel_runtime.py    the MLServer runtime (kfp_pachyderm/mlserver/runtime.py)
    savedmodel_server.py     the SavedModel loading it reuses (kfp_pachyderm/seldon/...)
    provenance.json          the model commit and what made it
    1/saved_model.pb ...     the SavedModel

``mlserver start <dir>`` serves it as is; the MLServer image's layer holds it at
``/mnt/models``, and a KServe InferenceService's ``storageUri`` can point at it in a commit
through pachd's S3 gateway (``s3://<commit>.<branch>.<repo>/<path>``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.modelimage.context import check_saved_model, link_or_copy
from kfp_pachyderm.seldon.context import MODEL_CLASS_FILE, model_class_source
from kfp_pachyderm.seldon.savedmodel_server import PROVENANCE_FILE
from kfp_pachyderm.validation import check_kubernetes_name

MODEL_SETTINGS_FILE = "model-settings.json"
RUNTIME_FILE = "savedmodel_runtime.py"
RUNTIME_CLASS = "SavedModelRuntime"
IMPLEMENTATION = f"{Path(RUNTIME_FILE).stem}.{RUNTIME_CLASS}"
MODEL_VERSION_DIR = "1"
MODEL_URI = f"./{MODEL_VERSION_DIR}"
HTTP_PORT = 8080
GRPC_PORT = 8081
# The MLServer image's pins; images/mlserver/requirements.txt lists the same (a test checks).
# MLServer 1.7.1's inference workers die at start with uvloop 0.22 (asyncio.get_event_loop()
# outside a loop; SeldonIO/MLServer#2286), so uvloop stays at 0.21.
SERVING_REQUIREMENTS = (
    "mlserver==1.7.1",
    "tensorflow-cpu==2.21.0",
    "uvloop==0.21.0",
)


def runtime_source() -> str:
    """The text of the runtime module, as it is copied into images and model directories."""
    return Path(__file__).with_name("runtime.py").read_text()


def model_settings(name: str, commit: str, uri: str = MODEL_URI) -> dict:
    """The ``model-settings.json`` of model ``name`` (a DNS label, as KServe names what it
    serves), version ``commit`` (its commit ID), whose SavedModel is at ``uri`` (relative to
    the settings file's folder)."""
    return {
        "name": check_kubernetes_name("model name", name),
        "implementation": IMPLEMENTATION,
        "platform": "tensorflow",
        "parameters": {"uri": uri, "version": commit},
    }


def write_model_dir(dest: Path, saved_model_dir: Path, provenance: dict, name: str) -> Path:
    """Write the MLServer model directory for the SavedModel in ``saved_model_dir`` into the
    empty or absent directory ``dest`` (model files hard-linked where possible); return ``dest``.

    ``provenance`` becomes ``provenance.json`` and must name ``model.uri`` and
    ``model.commit``; ``name`` is the served model's name (a DNS label).
    """
    dest, saved_model_dir = Path(dest), Path(saved_model_dir)
    check_saved_model(saved_model_dir)
    check_kubernetes_name("model name", name)
    model = provenance.get("model", {}) if isinstance(provenance, dict) else {}
    missing = [key for key in ("uri", "commit") if not model.get(key)]
    if missing:
        named = " and ".join(f"model.{key}" for key in missing)
        raise UsageError(f"the provenance of a model directory must name {named}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"model directory {dest} is not empty")
    shutil.copytree(saved_model_dir, dest / MODEL_VERSION_DIR, copy_function=link_or_copy)
    settings = model_settings(name, str(model["commit"]))
    (dest / MODEL_SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    (dest / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    (dest / RUNTIME_FILE).write_text(runtime_source())
    (dest / MODEL_CLASS_FILE).write_text(model_class_source())
    return dest
