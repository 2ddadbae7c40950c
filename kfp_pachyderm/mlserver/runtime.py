"""The MLServer custom runtime that serves a TensorFlow SavedModel over the Open Inference
Protocol (V2).

This file is copied on its own, as ``savedmodel_runtime.py``, into the MLServer serving image
(``images/mlserver/Dockerfile``) and into every model directory, next to a copy of the Seldon
model class module ``savedmodel_server.py``, whose :class:`SavedModelServer` does the loading
(a SavedModel, or numbered versions of which the highest is served), the input adaptation
(cast to the signature's dtype, flattened rows reshaped, text for a string input) and the
string outputs. So it imports only the standard library, NumPy, TensorFlow, MLServer and that
sibling, never kfp_pachyderm. A model directory's ``model-settings.json`` names it::

    {"name": "mnist", "implementation": "savedmodel_runtime.SavedModelRuntime",
     "parameters": {"uri": "./1", "version": "<model commit ID>"}}

``parameters.uri`` (relative to the ``model-settings.json`` folder) is the SavedModel;
``parameters.extra`` may name a ``signature_name`` and an ``output``. The ``provenance.json``
next to the SavedModel, or in the folder above it, names the model commit: every response
carries it as ``model_version`` (from ``parameters.version``) and in its ``parameters``, and
the metadata endpoint (``GET /v2/models/<name>``) shows it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.codecs.numpy import to_datatype
from mlserver.errors import InferenceError
from mlserver.types import (
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataTensor,
    Parameters,
    RequestInput,
    ResponseOutput,
)
from mlserver.utils import get_model_uri
from savedmodel_server import PROVENANCE_FILE, SavedModelServer

log = logging.getLogger(__name__)

PLATFORM = "tensorflow"


def _datatype(dtype) -> str:
    """The V2 datatype of a TensorFlow dtype (BYTES for strings), else the dtype's name."""
    try:
        return to_datatype(np.dtype(dtype.as_numpy_dtype)).value
    except (KeyError, TypeError):
        return dtype.name.upper()


def _tensor(name: str, spec) -> MetadataTensor:
    shape = [-1 if size is None else size for size in (spec.shape.as_list() or [])]
    return MetadataTensor(name=name, datatype=_datatype(spec.dtype), shape=shape)


def _decode(request_input: RequestInput) -> np.ndarray:
    """The request's one tensor as an array of its shape (text for BYTES)."""
    try:
        if request_input.datatype == "BYTES":
            texts = StringCodec.decode_input(request_input)
            return np.array(texts, dtype=object).reshape(request_input.shape)
        return NumpyCodec.decode_input(request_input)
    except (ValueError, TypeError, KeyError) as error:
        raise InferenceError(
            f"input {request_input.name!r} ({request_input.datatype}, shape "
            f"{request_input.shape}) cannot be read: {error}"
        ) from None


def _encode(name: str, result: np.ndarray) -> ResponseOutput:
    """The model's output as one V2 output: BYTES text for strings, else its numeric type."""
    if result.dtype.kind in "OUS":
        texts = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in result.ravel()
        ]
        output = StringCodec.encode_output(name, texts)
        if result.ndim > 1:
            output.shape = list(result.shape)
        return output
    return NumpyCodec.encode_output(name, result)


class SavedModelRuntime(MLModel):
    """A SavedModel behind MLServer's runtime contract (``load``, ``predict``, ``metadata``).

    A request carries one input: numbers (FP32, INT64, ...) as the signature's input wants
    them, or rows flattened (784 values for a 28x28 input); or BYTES text for a string input.
    The response carries one output (FP32 probabilities, BYTES text for a string output).
    """

    async def load(self) -> bool:
        """Load the SavedModel at ``parameters.uri`` and its provenance."""
        uri = Path(await get_model_uri(self.settings))
        extra = (self.settings.parameters.extra if self.settings.parameters else None) or {}
        self._server = SavedModelServer(
            model_uri=str(uri),
            signature_name=extra.get("signature_name", "serving_default"),
            output=extra.get("output", ""),
        )
        beside = uri.parent / PROVENANCE_FILE  # uri "./1": provenance.json is next to the settings
        if not self._server.provenance and beside.is_file():
            self._server.provenance = json.loads(beside.read_text())
        self._server.load()
        signature = self._server.signature
        _, inputs = signature.structured_input_signature
        outputs = signature.structured_outputs
        self._output = self._server.output_name
        self.inputs = [_tensor(name, spec) for name, spec in inputs.items()]
        self.outputs = [_tensor(self._output, outputs[self._output])]
        log.info("serving %s as %s version %s", uri, self.name, self.version or "unknown")
        return True

    def _parameters(self) -> Parameters:
        return Parameters(**self._server.tags())

    async def metadata(self) -> MetadataModelResponse:
        """The V2 model metadata; its ``parameters`` name the model commit."""
        response = await super().metadata()
        response.platform = response.platform or PLATFORM
        response.versions = response.versions or ([self.version] if self.version else [])
        response.parameters = self._parameters()
        return response

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """The model's output for the request's one input (rows are examples)."""
        if len(payload.inputs) != 1:
            raise InferenceError(
                f"model {self.name} takes exactly one input, the request has {len(payload.inputs)}"
            )
        wanted = [output.name for output in payload.outputs or []]
        if any(name != self._output for name in wanted):
            raise InferenceError(
                f"model {self.name} answers only output {self._output!r}, not "
                f"{', '.join(repr(name) for name in wanted)}"
            )
        (request_input,), (model_input,) = payload.inputs, self.inputs
        if (request_input.datatype == "BYTES") != (model_input.datatype == "BYTES"):
            raise InferenceError(
                f"model {self.name} takes {model_input.datatype} input {model_input.name!r} "
                f"of shape {model_input.shape}, not {request_input.datatype}"
            )
        batch = _decode(request_input)
        try:
            result = await asyncio.to_thread(self._server.predict, batch)
        except ValueError as error:  # the server's own message: "input of shape ... does not fit"
            raise InferenceError(str(error)) from None
        except Exception as error:  # TensorFlow refusing the tensor (e.g. wrong dtype)
            if type(error).__module__.startswith("tensorflow"):
                raise InferenceError(f"model {self.name} refused the input: {error}") from None
            raise
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            parameters=self._parameters(),
            outputs=[_encode(self._output, result)],
        )
