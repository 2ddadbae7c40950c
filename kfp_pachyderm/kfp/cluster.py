"""Cluster settings for tasks, in the style of kfp-kubernetes: each helper takes a task and
returns it, so calls chain. ``kfp.local`` runs ignore the Kubernetes parts.

Example:
    >>> task = use_pachyderm(commit_data(...), address="grpc://pachd.pachyderm:30650",
    ...                      token_secret="pachd-token")                  # doctest: +SKIP
"""

from __future__ import annotations

from kfp import dsl, kubernetes

from kfp_pachyderm.errors import ConnectionSettingsError, UsageError
from kfp_pachyderm.kfp.pod import EXPECTED_GPUS_ENV
from kfp_pachyderm.pfs.connection import (
    ADDRESS_ENV,
    DEFAULT_TOKEN_FILE,
    TOKEN_FILE_ENV,
    check_address,
)
from kfp_pachyderm.pfs.provenance import RUN_ID_ENV, TASK_ID_ENV

TOKEN_MOUNT_DIR = str(DEFAULT_TOKEN_FILE.parent)
SETTINGS_CONFIG_MAP = "kfp-pachyderm"
REGISTRY_MOUNT_DIR = "/var/run/secrets/kfp-pachyderm/registry"


def use_pachyderm(
    task: dsl.PipelineTask,
    address: str | None = None,
    token_secret: str | None = None,
    token_key: str = DEFAULT_TOKEN_FILE.name,
    config_map: str | None = SETTINGS_CONFIG_MAP,
) -> dsl.PipelineTask:
    """Point ``task`` at pachd and give it the token from a Kubernetes Secret.

    The token is mounted as a file (``<TOKEN_MOUNT_DIR>/<token_key>``) and only the secret's
    name appears in the compiled YAML, never its value. The step also learns its KFP run and
    task from the pod's metadata (``KFP_RUN_ID``, ``KFP_TASK_ID``) for its provenance record.
    The Secret is optional, so one
    pipeline serves clusters with and without Pachyderm auth; the library reads the file when
    it is there.

    Args:
        task: the task to configure.
        address: pachd address, e.g. ``grpc://pachd.pachyderm.svc.cluster.local:30650``, fixed
            at compile time. Without it the address comes from the optional ConfigMap
            ``config_map`` (key ``pachd-address``), which a cluster admin creates once per
            namespace: ``kubectl create configmap kfp-pachyderm
            --from-literal=pachd-address=grpc://pachd.pachyderm:30650``.
        token_secret: name of the Secret in the run's namespace holding the token (a pipeline
            parameter works too).
        token_key: the key of the token in that Secret.
    """
    if address is not None:
        if not isinstance(address, str):
            raise ConnectionSettingsError(
                f"use_pachyderm(address=...) got {type(address).__name__} {address!r}: the "
                "address is fixed at compile time (KFP cannot set an environment variable from a "
                "pipeline parameter); pass a string, or leave it out and create the ConfigMap "
                f"{config_map or SETTINGS_CONFIG_MAP!r} with key pachd-address"
            )
        task.set_env_variable(ADDRESS_ENV, check_address(address, "use_pachyderm(address=...)"))
    elif config_map:
        kubernetes.use_config_map_as_env(
            task, config_map, config_map_key_to_env={"pachd-address": ADDRESS_ENV}, optional=True
        )
    kubernetes.use_field_path_as_env(task, RUN_ID_ENV, "metadata.labels['pipeline/runid']")
    kubernetes.use_field_path_as_env(
        task, TASK_ID_ENV, "metadata.annotations['workflows.argoproj.io/node-name']"
    )
    if token_secret:
        kubernetes.use_secret_as_volume(
            task, secret_name=token_secret, mount_path=TOKEN_MOUNT_DIR, optional=True
        )
        if token_key != DEFAULT_TOKEN_FILE.name:
            task.set_env_variable(TOKEN_FILE_ENV, f"{TOKEN_MOUNT_DIR}/{token_key}")
    return task


def with_gpu(
    task: dsl.PipelineTask,
    count: int = 1,
    accelerator: str = "nvidia.com/gpu",
    node_selector: dict[str, str] | None = None,
    toleration: dict[str, str] | None = None,
) -> dsl.PipelineTask:
    """Give ``task`` ``count`` GPUs of resource ``accelerator``, optionally pinned to nodes by
    label and allowed onto tainted GPU nodes.

    The step also learns how many GPUs it asked for (``KFP_PACHYDERM_EXPECTED_GPUS``), so a pod
    scheduled without them fails at once with a clear message instead of training for hours on
    a CPU. ``toleration`` takes kfp-kubernetes' ``add_toleration`` arguments, e.g.
    ``{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}``.

    Example:
        >>> with_gpu(train(...), count=1, node_selector={"cloud.google.com/gke-accelerator":
        ...          "nvidia-tesla-t4"})                                    # doctest: +SKIP
    """
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"invalid GPU count {count!r}: must be at least 1")
    if not accelerator or "/" not in accelerator:
        raise UsageError(
            f"invalid accelerator {accelerator!r}: use an extended resource name such as "
            "nvidia.com/gpu or amd.com/gpu"
        )
    task.set_accelerator_type(accelerator).set_accelerator_limit(count)
    task.set_env_variable(EXPECTED_GPUS_ENV, str(count))
    for label, value in (node_selector or {}).items():
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    if toleration:
        kubernetes.add_toleration(task, **toleration)
    return task


def use_registry_credentials(
    task: dsl.PipelineTask, secret_name: str, mount_path: str = REGISTRY_MOUNT_DIR
) -> dsl.PipelineTask:
    """Mount the ``kubernetes.io/dockerconfigjson`` Secret ``secret_name`` into the step and
    point ``DOCKER_CONFIG`` at it; return the task, for chaining like the other helpers.
    Create the Secret with ``kubectl create secret docker-registry``; without it the registry
    is used anonymously."""
    kubernetes.use_secret_as_volume(
        task, secret_name=secret_name, mount_path=mount_path, optional=True
    )
    task.set_env_variable("DOCKER_CONFIG", mount_path)
    return task
