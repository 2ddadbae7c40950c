"""The Seldon Core 1 model class that serves a TensorFlow SavedModel.

This file is copied on its own into the Seldon serving image (``images/seldon/Dockerfile``) and
into every build context, and runs there as the Python wrapper's user model::

    seldon-core-microservice savedmodel_server.SavedModelServer --service-type MODEL

so it imports only the standard library, NumPy and TensorFlow (which seldon-core's
``protobuf<4`` and ``numpy<2`` pins allow), never kfp_pachyderm.

``model_uri`` (a Seldon parameter, default ``/mnt/models``, where the image layer puts the
model) holds either a SavedModel or TensorFlow Serving's layout of numbered versions (the
highest is served), plus the ``provenance.json`` the image build wrote: the model commit it
came from, which every prediction's ``meta.tags`` and the ``/metadata`` endpoint carry.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, like TensorFlow: the build components read only the
    import numpy as np  # constants here, in an image that has neither

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"
PROVENANCE_FILE = "provenance.json"


def find_saved_model(model_uri: str | os.PathLike) -> Path:
    """The SavedModel directory at ``model_uri``: itself, or its highest numbered version."""
    root = Path(model_uri)
    if (root / "saved_model.pb").is_file():
        return root
    versions = sorted(
        (int(p.name), p)
        for p in (root.iterdir() if root.is_dir() else [])
        if p.name.isdigit() and (p / "saved_model.pb").is_file()
    )
    if not versions:
        raise FileNotFoundError(
            f"no SavedModel at {root}: expected {root}/saved_model.pb or "
            f"{root}/<version>/saved_model.pb"
        )
    return versions[-1][1]


class SavedModelServer:
    """A SavedModel behind Seldon's Python wrapper contract (``load``, ``predict``,
    ``init_metadata``, ``health_status``, ``tags``).

    The served signature must take one tensor; a request's array is cast to its dtype (text
    for a string input), and flattened rows (e.g. 784 values for a 28x28 input) are reshaped
    to it; string outputs come back as text. With several
    outputs, ``output`` picks one (default: the only one, else the first by name).
    """

    def __init__(
        self,
        model_uri: str = DEFAULT_MODEL_URI,
        signature_name: str = "serving_default",
        output: str = "",
    ):
        self.model_uri = model_uri
        self.signature_name = signature_name
        self.output = output
        self.provenance = self._read_provenance()
        self._model = None
        self._signature = None
        self._output_name = ""
        self._input_name = ""
        self._input_dtype = None
        self._input_shape: tuple = ()

    def _read_provenance(self) -> dict:
        path = Path(self.model_uri) / PROVENANCE_FILE
        if not path.is_file():
            return {}
        return json.loads(path.read_text())

    @property
    def model_commit(self) -> str:
        """The Pachyderm commit ID of the model, or "" when the provenance is unknown."""
        return self.provenance.get("model", {}).get("commit", "")

    def load(self) -> None:
        """Load the SavedModel and its signature (Seldon calls this once per worker)."""
        import tensorflow as tf

        path = find_saved_model(self.model_uri)
        model = tf.saved_model.load(str(path))
        if self.signature_name not in model.signatures:
            raise KeyError(
                f"the SavedModel at {path} has no signature {self.signature_name!r} "
                f"(it has {', '.join(sorted(model.signatures)) or 'none'})"
            )
        signature = model.signatures[self.signature_name]
        _, inputs = signature.structured_input_signature
        if len(inputs) != 1:
            raise ValueError(
                f"signature {self.signature_name!r} of {path} takes {len(inputs)} inputs "
                f"({', '.join(sorted(inputs))}); this server feeds exactly one"
            )
        outputs = signature.structured_outputs
        self._output_name = self.output or sorted(outputs)[0]
        if self._output_name not in outputs:
            raise KeyError(f"output {self.output!r} is not among {', '.join(sorted(outputs))}")
        ((self._input_name, spec),) = inputs.items()
        self._input_dtype = spec.dtype.as_numpy_dtype
        self._input_shape = tuple(spec.shape.as_list())
        self._model = model  # the signature's variables live as long as the loaded object
        self._signature = signature
        log.info(
            "loaded %s (model commit %s): input %s %s %s",
            path,
            self.model_commit or "unknown",
            self._input_name,
            self._input_shape,
            spec.dtype.name,
        )

    @property
    def signature(self):
        """The loaded serving signature (None before :meth:`load`)."""
        return self._signature

    @property
    def output_name(self) -> str:
        """The signature output this server answers with ("" before :meth:`load`)."""
        return self._output_name

    def _batch(self, X) -> np.ndarray:
        import numpy as np

        array = np.asarray(X)
        wanted = tuple(self._input_shape[1:])
        if array.ndim == 0 or (
            None not in wanted and np.prod(array.shape[1:]) != np.prod(wanted, dtype=int)
        ):
            raise ValueError(
                f"input of shape {array.shape} does not fit the model's input "
                f"{self._input_name!r} of shape {self._input_shape}"
            )
        if None not in wanted and array.shape[1:] != wanted:
            array = array.reshape((array.shape[0], *wanted))
        return array.astype(self._input_dtype, copy=False)

    def predict(self, X, features_names=None, meta=None) -> np.ndarray:
        """The model's output for the batch ``X`` (rows are examples)."""
        import numpy as np
        import tensorflow as tf

        if self._signature is None:
            self.load()
        outputs = self._signature(**{self._input_name: tf.constant(self._batch(X))})
        result = outputs[self._output_name].numpy()
        if result.dtype == object:  # tf.string: bytes, which JSON cannot carry; text it is
            return np.array([v.decode("utf-8", "replace") for v in result.ravel()]).reshape(
                result.shape
            )
        return result

    def init_metadata(self) -> dict:
        """Seldon's model metadata (``/api/v1.0/metadata``): the model commit is the version."""
        model = self.provenance.get("model", {})
        custom = {
            key: str(model[key]) for key in ("uri", "project", "repo", "commit") if model.get(key)
        }
        return {
            "name": model.get("repo") or "model",
            "versions": [self.model_commit] if self.model_commit else [],
            "platform": "tensorflow",
            "custom": custom,
        }

    def health_status(self) -> dict:
        """Healthy once the model is loaded; Seldon's readiness check calls this."""
        if self._signature is None:
            raise RuntimeError(f"the model at {self.model_uri} is not loaded yet")
        return {"ready": True, "model_commit": self.model_commit}

    def tags(self) -> dict:
        """Tags on every response: the Pachyderm model commit this image serves."""
        model = self.provenance.get("model", {})
        return {
            f"model_{key}": str(model[key])
            for key in ("commit", "repo", "project", "uri")
            if model.get(key)
        }
