"""Serving a model commit on Kubernetes with KServe (or Seldon Core 2).

- :mod:`.manifests`: the InferenceService, ServingRuntime, ServiceAccount and Secret for a
  model commit; :mod:`.credentials`: the storage Secret, made at deploy time;
- :mod:`.deploy`: apply such manifests with the ``kubernetes`` client (create, adopt or replace)
  and wait until the model serves; :mod:`.plan` checks the manifests before any request, and
  :mod:`.readiness` reads a serving resource's status, failing early on the failures KServe and
  Seldon Core 2 report as final.
"""
