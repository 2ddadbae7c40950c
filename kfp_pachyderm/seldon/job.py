"""A Kubernetes Job that builds an image from a committed Dockerfile context with BuildKit.

For images that need arbitrary build steps (``RUN``), which appending a layer cannot do. It is
not the default: it needs a BuildKit image, several minutes, and a node that lets the pod run
with seccomp and AppArmor unconfined (rootless BuildKit creates user namespaces). It never runs
privileged or as root. kaniko, the usual choice, was archived in 2025; BuildKit is maintained.

The Job's init container (the library's runtime image) reads the context commit into an
``emptyDir``; ``buildctl-daemonless.sh`` builds it and pushes to ``destination`` with the
registry credentials of a ``kubernetes.io/dockerconfigjson`` Secret. Create it with
``kubectl create -f`` (or the ``kubernetes`` client) and wait for it to complete.

Example:
    >>> context = CommitRef.parse("seldon-builds@0123456789ab4def0123456789abcdef")
    >>> job = dockerfile_build_job(context, ImageRef.parse("registry.example.com/ml/mnist:v1"),
    ...                            "build-mnist")
    >>> job["spec"]["template"]["spec"]["containers"][0]["image"]
    'moby/buildkit:v0.24.0-rootless'
"""

from __future__ import annotations

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.cluster import TOKEN_MOUNT_DIR
from kfp_pachyderm.kfp.images import runtime_image
from kfp_pachyderm.modelimage.metadata import object_metadata
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.connection import ADDRESS_ENV, check_address
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.validation import check_kubernetes_name

BUILDKIT_IMAGE = "moby/buildkit:v0.24.0-rootless"
WORKSPACE = "/workspace"
DOCKER_CONFIG_DIR = "/home/user/.docker"
# Read the context commit with the library (PACHD_ADDRESS and the mounted token, as steps do).
FETCH_CONTEXT = (
    "import sys; from pathlib import Path; from kfp_pachyderm.pfs.connection import connect; "
    "from kfp_pachyderm.pfs.refs import CommitRef; "
    "from kfp_pachyderm.pfs.transfer import read_tree; "
    "read_tree(connect(), CommitRef.parse(sys.argv[1]), Path(sys.argv[2]), digest=False)"
)


def dockerfile_build_job(
    context: CommitRef,
    destination: ImageRef,
    name: str,
    namespace: str = "",
    registry_secret: str = "registry-credentials",
    pachd_address: str = "grpc://pachd.pachyderm:30650",
    token_secret: str = "",
    builder_image: str = BUILDKIT_IMAGE,
    fetch_image: str = "",
    dockerfile: str = "Dockerfile",
    plain_http: bool = False,
    deadline_seconds: int = 3600,
) -> dict:
    """The ``batch/v1`` Job that builds ``context`` (a commit, optionally a path in it) with
    rootless BuildKit and pushes ``destination``.

    ``registry_secret`` holds the docker config for the push; ``token_secret`` (optional) the
    pachd token, mounted as the steps mount it; ``plain_http`` pushes to an HTTP registry.
    """
    check_kubernetes_name("Job name", name)
    if not context.commit:
        raise UsageError(
            f"build context {context} names no commit ID; pin the commit the Job should build"
        )
    if not destination.tag or destination.digest:
        raise UsageError(f"destination {destination} must name a tag and no digest")
    if "/" in dockerfile or not dockerfile:
        raise UsageError(f"dockerfile {dockerfile!r} must be a file name in the context")
    if deadline_seconds < 1:
        raise UsageError(f"deadline_seconds {deadline_seconds} must be positive")
    address = check_address(pachd_address, "pachd_address")
    output = f"type=image,name={destination},push=true"
    if plain_http:
        output += ",registry.insecure=true"
    user = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True}
    workspace = {"name": "workspace", "mountPath": WORKSPACE}
    fetch = {
        "name": "fetch-context",
        "image": fetch_image or runtime_image(),
        "command": ["python", "-c", FETCH_CONTEXT, str(context), WORKSPACE],
        "env": [{"name": ADDRESS_ENV, "value": address}],
        "securityContext": {**user, "allowPrivilegeEscalation": False},
        "volumeMounts": [workspace],
    }
    volumes: list[dict] = [
        {"name": "workspace", "emptyDir": {}},
        {"name": "buildkitd", "emptyDir": {}},
        {
            "name": "docker-config",
            "secret": {
                "secretName": registry_secret,
                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
            },
        },
    ]
    if token_secret:
        volumes.append({"name": "pachd-token", "secret": {"secretName": token_secret}})
        fetch["volumeMounts"].append(
            {"name": "pachd-token", "mountPath": TOKEN_MOUNT_DIR, "readOnly": True}
        )
    build = {
        "name": "buildkit",
        "image": builder_image,
        "command": ["buildctl-daemonless.sh"],
        "args": [
            "build",
            "--frontend",
            "dockerfile.v0",
            "--local",
            f"context={WORKSPACE}",
            "--local",
            f"dockerfile={WORKSPACE}",
            "--opt",
            f"filename={dockerfile}",
            "--output",
            output,
        ],
        "env": [
            {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
            {"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG_DIR},
        ],
        "securityContext": {
            **user,
            "seccompProfile": {"type": "Unconfined"},
            "appArmorProfile": {"type": "Unconfined"},
        },
        "volumeMounts": [
            {**workspace, "readOnly": True},
            {"name": "buildkitd", "mountPath": "/home/user/.local/share/buildkit"},
            {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True},
        ],
    }
    metadata = {
        **object_metadata(name, namespace),
        "labels": {"app.kubernetes.io/name": "kfp-pachyderm-dockerfile-build"},
        "annotations": {
            "kfp-pachyderm/context": context.uri,
            "kfp-pachyderm/image": str(destination),
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "annotations": {
                        # Clusters older than Kubernetes 1.30 read AppArmor from annotations.
                        "container.apparmor.security.beta.kubernetes.io/buildkit": "unconfined"
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [fetch],
                    "containers": [build],
                    "volumes": volumes,
                },
            },
        },
    }
