"""The manifests a model deploy applies, checked before the first request.

:func:`plan_deploy` takes the documents (a ServiceAccount, optionally a KServe ServingRuntime
or a Seldon Core 2 Server, and last the serving resource: a KServe InferenceService or a Seldon
Core 2 Model) and the Secret built in process, checks them, and returns the
:class:`DeployPlan` the deployer follows: one namespace, the Secret first (the ServiceAccount
may name it), the supporting objects in order, and the serving resource with the model commit
it is labelled with. A problem raises :class:`ManifestError` naming it; the Secret's values
never appear in a message.
"""

from __future__ import annotations

import base64
import binascii
import copy
from contextlib import suppress
from dataclasses import dataclass
from typing import NamedTuple

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.modelimage.metadata import LABEL_COMMIT


@dataclass(frozen=True)
class Kind:
    """A kind of object the deployer applies; ``installed_by`` names what installs its CRD."""

    api_version: str
    kind: str
    plural: str
    installed_by: str = ""

    @property
    def group(self) -> str:
        """The API group; empty for the core API (``v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """The API version within the group."""
        return self.api_version.rpartition("/")[2]

    @property
    def resource(self) -> str:
        """The resource as RBAC names it: ``plural`` or ``plural.group``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
SECRET = Kind("v1", "Secret", "secrets")
SERVING_RUNTIME = Kind("serving.kserve.io/v1alpha1", "ServingRuntime", "servingruntimes", "KServe")
INFERENCE_SERVICE = Kind(
    "serving.kserve.io/v1beta1", "InferenceService", "inferenceservices", "KServe"
)
SELDON_MODEL = Kind("mlops.seldon.io/v1alpha1", "Model", "models", "Seldon Core 2")
SELDON_SERVER = Kind("mlops.seldon.io/v1alpha1", "Server", "servers", "Seldon Core 2")
SUPPORTING = {(k.api_version, k.kind): k for k in (SERVICE_ACCOUNT, SERVING_RUNTIME, SELDON_SERVER)}
SERVING = {(k.api_version, k.kind): k for k in (INFERENCE_SERVICE, SELDON_MODEL)}


class ManifestError(UsageError):
    """The documents to deploy are not what the deployer applies (found before any request)."""


class DeployPlan(NamedTuple):
    """What a deploy applies, checked: the namespace, the supporting objects in order (the
    Secret first), and the serving resource with the model commit it is labelled with."""

    namespace: str
    supporting: list[tuple[Kind, dict]]
    kind: Kind
    serving: dict
    commit: str


def _check_document(doc: object, where: str, allowed: dict[tuple[str, str], Kind]) -> Kind:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where} is a {type(doc).__name__}, not a Kubernetes manifest")
    meta = doc.get("metadata")
    fields = {
        "apiVersion": doc.get("apiVersion"),
        "kind": doc.get("kind"),
        "metadata.name": meta.get("name") if isinstance(meta, dict) else None,
    }
    for field, value in fields.items():
        if not isinstance(value, str) or not value:
            raise ManifestError(f"{where} has no {field}")
    kind = allowed.get((fields["apiVersion"], fields["kind"]))
    if kind is None:
        expected = ", ".join(f"{k.api_version} {k.kind}" for k in allowed.values())
        raise ManifestError(
            f"{where} is a {fields['apiVersion']} {fields['kind']} ({fields['metadata.name']}); "
            f"expected one of: {expected}"
        )
    if not isinstance(meta.get("namespace", ""), str):
        raise ManifestError(f"{where} has a metadata.namespace that is not a string")
    return kind


def plan_deploy(documents: list[dict], secret: dict | None, namespace: str = "") -> DeployPlan:
    """Check ``documents`` and ``secret`` (see
    :meth:`~kfp_pachyderm.kserve.deploy.ModelDeployer.deploy`) and order what to apply;
    ``namespace`` is for manifests that name none. Raise ManifestError naming the first
    problem."""
    if not isinstance(documents, list) or not documents:
        raise ManifestError(
            "no documents to deploy: expected a list of manifests ending with the serving "
            "resource (an InferenceService or a Seldon Core 2 Model)"
        )
    allowed = {**SUPPORTING, **SERVING}
    kinds = [_check_document(d, f"document {i + 1}", allowed) for i, d in enumerate(documents)]
    *supporting, serving = zip(kinds, documents, strict=True)
    if serving[0] not in SERVING.values():
        raise ManifestError(
            f"the last document must be the serving resource (an InferenceService or a Seldon "
            f"Core 2 Model), not the {serving[0].kind} {serving[1]['metadata']['name']}"
        )
    for index, (kind, doc) in enumerate(supporting):
        if kind in SERVING.values():
            raise ManifestError(
                f"document {index + 1} ({kind.kind} {doc['metadata']['name']}) is a second "
                "serving resource: deploy exactly one, last"
            )
    if secret is not None:
        _check_document(secret, "the secret", {(SECRET.api_version, SECRET.kind): SECRET})
        for field in ("data", "stringData"):
            values = secret.get(field) or {}
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ManifestError(f"the secret's {field} must map keys to strings")
        supporting.insert(0, (SECRET, secret))
    seen: set[tuple[str, str]] = set()
    for kind, doc in supporting:
        key = (kind.kind, doc["metadata"]["name"])
        if key in seen:
            raise ManifestError(f"the {key[0]} {key[1]} is given twice")
        seen.add(key)
    named = {doc["metadata"].get("namespace") for _, doc in [*supporting, serving]}
    named = sorted(n for n in named | {namespace} if n)
    if len(named) > 1:
        raise ManifestError(f"the manifests name several namespaces {named}; a deploy uses one")
    if not named:
        raise ManifestError("no namespace: set metadata.namespace or pass namespace=")
    kind, doc = serving
    labels = doc["metadata"].get("labels") or {}
    commit = labels.get(LABEL_COMMIT) if isinstance(labels, dict) else None
    if not isinstance(commit, str) or not commit:
        raise ManifestError(
            f"the {kind.kind} {doc['metadata']['name']} has no label {LABEL_COMMIT}: the "
            "deployer adopts or replaces a serving resource by the model commit it serves"
        )
    return DeployPlan(
        namespace=named[0],
        supporting=[(k, copy.deepcopy(d)) for k, d in supporting],
        kind=kind,
        serving=copy.deepcopy(doc),
        commit=commit,
    )


def secret_values(secret: dict | None) -> tuple[str, ...]:
    """Every form in which the secret's values could show up in a text (as given, base64 and
    decoded), longest first, so that a scrubber can take them out."""
    values: set[str] = set()
    for value in ((secret or {}).get("stringData") or {}).values():
        values |= {value, base64.b64encode(value.encode()).decode()}
    for value in ((secret or {}).get("data") or {}).values():
        values.add(value)
        with suppress(binascii.Error, UnicodeDecodeError):
            values.add(base64.b64decode(value, validate=True).decode())
    return tuple(sorted((v for v in values if v), key=len, reverse=True))
