"""The serving images as a cluster runs them: the Seldon and MLServer images under images/,
built here with podman and pushed to a real registry on loopback, get a trained model's layer
appended by build_seldon_image / build_mlserver_image (against the real local Pachyderm
server); podman pulls what they pushed and runs it, and the container answers real
predictions, compared with the same SavedModel run in this process:

- Seldon Core 1's protocol (``/api/v1.0/predictions``) for the digit model and the issue
  summarizer;
- the Open Inference Protocol V2 (``/v2/models/<name>/infer``) on MLServer for the digit
  model, from the image itself (KServe's custom-container form), whose layer also holds the
  model at ``/models`` as hard links to ``/mnt/models``;
- and the issue summarizer as a KServe modelcar (``storageUri: oci://<image>@<digest>``): the
  containers KServe's webhook makes for that manifest (the init check, the modelcar sidecar
  linking ``/mnt/models`` to ``/proc/<pid>/root/models``, and the ServingRuntime's container
  sharing its process namespace and ``/mnt``), run with podman.

Containers use the host network on free ports (Seldon's wrapper reads
``PREDICTIVE_UNIT_{HTTP,GRPC,METRICS}_SERVICE_PORT``, MLServer ``MLSERVER_*_PORT``) and are
always removed. A missing tool fails the test (tests/images.py, tests/registry.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from pachyderm_sdk import Client

from kfp_pachyderm import __version__
from kfp_pachyderm.kserve.manifests import modelcar_inference_service, serving_runtime
from kfp_pachyderm.mlserver.build import build_mlserver_image
from kfp_pachyderm.modelimage.build import IMAGE_MODEL_DIR, MODELCAR_MODEL_DIR, BuildOptions
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.oci.registry import RegistryClient
from kfp_pachyderm.pfs.transfer import read_tree
from kfp_pachyderm.seldon.build import build_seldon_image
from kfp_pachyderm.summarizer.model import summarize

from .conftest import free_port
from .images import build_test_images, podman
from .test_mlserver_serving import check_digits, files_of
from .trained_models import commit_model, reference_probabilities, trained_mnist, trained_summarizer

READY_TIMEOUT = 300  # TensorFlow's import and the model's load, on two CPUs
TEXTS = [
    "The installer crashes when the path has a space in it",
    "Add a dark theme to the settings page, please",
    "Säve fails with a stack trace: see https://example.com/trace",
]
# What KServe's webhook runs (pkg/utils CreateModelcarInitContainer / CreateModelcarContainer),
# after the kubelet's $$ -> $ expansion of container args.
MODELCAR_CHECK = (
    "echo 'Pre-fetching modelcar {image}: ' && [ -d /models ] && [ \"$(ls -A /models)\" ] && "
    "echo 'OK ... Prefetched and valid (/models exists)' || (echo 'NOK ... Prefetched but "
    "modelcar is invalid (/models does not exist or is empty)' && exit 1)"
)
MODELCAR_LINK = "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"


@pytest.fixture(autouse=True)
def _no_ambient_docker_config(monkeypatch, tmp_path: Path):
    """No credentials from this machine, for the library nor for podman (both read it)."""
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config/config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def ok(*args: str, timeout: float = 600) -> str:
    """``podman ARGS`` (tests/images.py's settings), which must succeed; its stdout."""
    done = podman(*args, check=False, timeout=timeout)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def push_base(plain, short: str) -> str:
    """The image ``short`` built from images/, pushed to the loopback registry; its name."""
    built = build_test_images()[short]
    pushed = f"{plain.host}/kfp-pachyderm/kfp-pachyderm-{short}:{__version__}-python-3.11"
    started = time.monotonic()
    ok("push", "--tls-verify=false", built.tag, pushed, timeout=900)
    print(
        f"\n{short} base: {built.size_bytes / 1e9:.2f} GB in podman's store, pushed in "
        f"{time.monotonic() - started:.0f} s"
    )
    return pushed


@pytest.fixture(scope="module")
def seldon_base(plain) -> str:
    return push_base(plain, "seldon")


@pytest.fixture(scope="module")
def mlserver_base(plain) -> str:
    return push_base(plain, "mlserver")


def pull(image: ImageRef) -> str:
    """``podman pull`` the pushed ``image`` by its tag (else its digest); check it is the
    digest pushed; return the reference pulled."""
    tag = str(image.with_tag(image.tag)) if image.tag else f"{image.name}@{image.digest}"
    started = time.monotonic()
    ok("pull", "--tls-verify=false", "--quiet", tag)
    inspected = json.loads(ok("image", "inspect", tag))[0]
    assert (
        inspected["Digest"] == image.digest
        or f"{image.name}@{image.digest}" in (inspected["RepoDigests"])
    ), inspected["RepoDigests"]
    print(
        f"pulled {tag} in {time.monotonic() - started:.1f} s: {inspected['Size'] / 1e9:.2f} GB, "
        f"{len(inspected['RootFS']['Layers'])} layers"
    )
    return tag


def last_layer_size(plain, image: ImageRef) -> int:
    """The compressed size of the model layer the build appended."""
    client = RegistryClient(plain.host, plain_http=True)
    try:
        return client.get_manifest(image.repository, image.digest).layers[-1].size
    finally:
        client.close()


class Container:
    """A ``podman run -d`` container, by name; a context manager that removes it."""

    def __init__(self, role: str):
        self.name = f"kfp-pachyderm-test-{role}-{secrets.token_hex(4)}"

    def start(self, image: str, *args: str, env: dict[str, str] | None = None, flags=()):
        env_flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        ok("run", "-d", "--name", self.name, *env_flags, *flags, image, *args)
        return self

    def running(self) -> bool:
        done = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return done.stdout.strip() == "true"

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-6000:]

    def wait_ready(self, url: str, timeout: float = READY_TIMEOUT) -> float:
        """Poll ``url`` until it answers 200 (seconds it took), or fail with the logs. A refused
        connection or a slow answer while the model loads means "not yet"."""
        started = time.monotonic()
        deadline = started + timeout
        last = "no answer"
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.running():
                last = "the container exited"
                break
            try:
                answer = requests.get(url, timeout=min(5, remaining))
                if answer.status_code == 200:
                    return time.monotonic() - started
                last = f"HTTP {answer.status_code}"
            except requests.RequestException as err:
                last = f"{type(err).__name__}: {err}"
            time.sleep(0.5)
        pytest.fail(f"{self.name} not ready at {url} in {timeout} s ({last}):\n{self.logs()}")

    def remove(self) -> None:
        podman("rm", "-f", "--time", "0", self.name, check=False)


@contextmanager
def containers(*roles: str) -> Iterator[list[Container]]:
    made = [Container(role) for role in roles]
    try:
        yield made
    finally:
        for container in reversed(made):
            container.remove()


@contextmanager
def pulled(image: ImageRef, remove: bool = True) -> Iterator[str]:
    """The pushed image pulled into podman's store, and removed afterwards unless ``remove``
    is false (only its model layer goes: the base's layers are the built base's)."""
    tag = pull(image)
    try:
        yield tag
    finally:
        if remove:
            podman("rmi", "--force", tag, check=False)


def seldon_env() -> tuple[int, dict[str, str]]:
    http = free_port()
    return http, {
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(free_port()),
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(free_port()),
    }


def mlserver_ports() -> tuple[int, dict[str, str]]:
    http = free_port()
    return http, {
        "MLSERVER_HTTP_PORT": str(http),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
    }


class _At:
    """What check_digits needs of a server: its URLs."""

    def __init__(self, port: int):
        self.port = port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def seldon_predict(port: int, rows) -> dict:
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1.0/predictions",
        json={"data": {"ndarray": rows}},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def files_in(tag: str, *directories: str) -> dict[str, list[str]]:
    """``sha256sum``, inode and link count of every file under each of ``directories`` in a
    container of ``tag``, as the image's own shell sees them."""
    script = (
        'for d in "$@"; do echo "== $d"; cd "$d" && find . -type f | sort | '
        "while read -r f; do printf '%s %s ' \"$(stat -c '%i %h' \"$f\")\" "
        '"$(sha256sum "$f" | cut -d" " -f1)"; echo "$f"; done; done'
    )
    out = ok(
        "run", "--rm", "--network", "none", tag, "sh", "-c", script, "sh", *directories
    )  # fmt: skip
    listing: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("== "):
            current = listing.setdefault(line[3:], [])
        else:
            current.append(line)
    return listing


@pytest.mark.slow
@pytest.mark.timeout(1800)  # pushes the Seldon base (1.7 GB) the first time in this module
def test_the_pushed_seldon_image_serves_the_digit_model(
    client: Client, plain, seldon_base: str, tmp_path_factory
):
    model_dir, arrays = trained_mnist(tmp_path_factory)
    _, model = commit_model(client, model_dir)
    result = build_seldon_image(
        client,
        model,
        f"{plain.host}/models/mnist",
        BuildOptions(base_image=seldon_base, plain_http=True),
    )
    print(f"model layer {last_layer_size(plain, result.image) / 1e3:.0f} kB")
    http, env = seldon_env()
    with pulled(result.image) as tag, containers("seldon-mnist") as (server,):
        absent = podman(
            "run", "--rm", "--network", "none", tag, "test", "-e", "/models", check=False
        )
        assert absent.returncode == 1, "the Seldon layer is as it was: no /models"
        server.start(tag, env=env, flags=["--network", "host"])
        took = server.wait_ready(f"http://127.0.0.1:{http}/health/status")
        print(f"seldon-core-microservice ready in {took:.0f} s")
        images = arrays["x_test"][:5]
        body = seldon_predict(http, images.tolist())
        probabilities = np.array(body["data"]["ndarray"])
        assert probabilities.shape == (5, 10)
        np.testing.assert_allclose(
            probabilities, reference_probabilities(model_dir, images), atol=1e-5
        )
        assert body["meta"]["tags"]["model_commit"] == model.commit
        flat = seldon_predict(http, images.reshape(5, -1).tolist())
        np.testing.assert_allclose(np.array(flat["data"]["ndarray"]), probabilities, atol=1e-6)
        metadata = requests.get(f"http://127.0.0.1:{http}/api/v1.0/metadata", timeout=10).json()
        assert metadata["versions"] == [model.commit]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_pushed_seldon_image_serves_the_issue_summarizer(
    client: Client, plain, seldon_base: str, tmp_path_factory
):
    model_dir = trained_summarizer(tmp_path_factory)
    expected = summarize(model_dir, TEXTS)
    assert all(expected), "the model writes titles"
    _, model = commit_model(client, model_dir)
    result = build_seldon_image(
        client,
        model,
        f"{plain.host}/models/titles",
        BuildOptions(base_image=seldon_base, plain_http=True),
    )
    http, env = seldon_env()
    with pulled(result.image) as tag, containers("seldon-titles") as (server,):
        server.start(tag, env=env, flags=["--network", "host"])
        server.wait_ready(f"http://127.0.0.1:{http}/health/status")
        body = seldon_predict(http, TEXTS)
        assert body["data"]["ndarray"] == expected
        assert body["meta"]["tags"]["model_commit"] == model.commit
        (one,) = seldon_predict(http, TEXTS[:1])["data"]["ndarray"]
        assert one == expected[0]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # pushes the MLServer base (2 GB) the first time in this module
def test_the_pushed_mlserver_image_serves_v2_and_holds_the_model_at_models_too(
    client: Client, plain, mlserver_base: str, tmp_path_factory, tmp_path: Path
):
    model_dir, arrays = trained_mnist(tmp_path_factory)
    _, model = commit_model(client, model_dir)
    result = build_mlserver_image(
        client,
        model,
        f"{plain.host}/models/mnist-v2",
        "mnist",
        BuildOptions(base_image=mlserver_base, plain_http=True),
    )
    context = tmp_path / "context"
    read_tree(client, result.build_commit, context)
    committed = files_of(context / "model")
    layer = last_layer_size(plain, result.image)
    print(f"model layer {layer / 1e3:.0f} kB for {sum(map(len, committed.values())) / 1e3:.0f} kB")
    assert layer < sum(map(len, committed.values())) + 64_000, "the model's bytes once"
    http, env = mlserver_ports()
    with pulled(result.image) as tag, containers("mlserver-mnist") as (server,):
        listing = files_in(tag, IMAGE_MODEL_DIR, MODELCAR_MODEL_DIR)
        in_mnt, in_models = listing[IMAGE_MODEL_DIR], listing[MODELCAR_MODEL_DIR]
        assert in_mnt == in_models, "the same inodes, contents and names"
        digests = {line.split()[3][2:]: line.split()[2] for line in in_mnt}
        assert digests == {
            name: hashlib.sha256(data).hexdigest() for name, data in committed.items()
        }
        assert {line.split()[1] for line in in_mnt} == {"2"}, "each file has two names"
        server.start(tag, env=env, flags=["--network", "host"])
        took = server.wait_ready(f"http://127.0.0.1:{http}/v2/models/mnist/ready")
        print(f"mlserver ready in {took:.0f} s")
        check_digits(_At(http), "mnist", model_dir, arrays, model.commit)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_mlserver_image_serves_the_summarizer_as_a_kserve_modelcar(
    client: Client, plain, mlserver_base: str, tmp_path_factory, tmp_path: Path
):
    model_dir = trained_summarizer(tmp_path_factory)
    expected = summarize(model_dir, TEXTS)
    _, model = commit_model(client, model_dir)
    result = build_mlserver_image(
        client,
        model,
        f"{plain.host}/models/titles-v2",
        "titles",
        BuildOptions(base_image=mlserver_base, plain_http=True),
    )
    service = modelcar_inference_service("titles", result.image, result.model)
    runtime = serving_runtime(str(result.base))
    storage_uri = service["spec"]["predictor"]["model"]["storageUri"]
    assert service["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    car_image = storage_uri.removeprefix("oci://")  # as KServe's webhook derives it
    (spec,) = runtime["spec"]["containers"]
    base = ImageRef.parse(spec["image"])
    runtime_image = f"{base.name}@{base.digest}"  # podman 4.3 takes no tag with a digest

    empty_dir = tmp_path / "storage-initializer-volume"  # KServe's emptyDir at /mnt
    empty_dir.mkdir()
    empty_dir.chmod(0o777)  # as Kubernetes makes an emptyDir
    http, ports = mlserver_ports()
    env = {**{e["name"]: e["value"] for e in spec["env"]}, **ports}
    with (
        pulled(ImageRef.parse(car_image)) as car,
        pulled(ImageRef.parse(runtime_image), remove=False) as served_by,  # the built base
        containers("modelcar", "kserve-container") as (modelcar, server),
    ):
        inspected = json.loads(ok("image", "inspect", car))[0]["Config"]
        assert not inspected.get("Entrypoint"), "KServe sets the modelcar's args, not command"
        check = podman(
            "run", "--rm", "--network", "none", car,
            "sh", "-c", MODELCAR_CHECK.format(image=car_image), check=False,
        )  # fmt: skip
        assert check.returncode == 0 and "OK ... Prefetched and valid" in check.stdout, check
        modelcar.start(car, "sh", "-c", MODELCAR_LINK, flags=["--volume", f"{empty_dir}:/mnt"])
        deadline = time.monotonic() + 30
        while not (empty_dir / "models").is_symlink() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (empty_dir / "models").readlink() == Path("/proc/1/root/models"), modelcar.logs()
        server.start(
            served_by,
            env=env,
            flags=["--network", "host", "--pid", f"container:{modelcar.name}",
                   "--volume", f"{empty_dir}:/mnt"],
        )  # fmt: skip
        took = server.wait_ready(f"http://127.0.0.1:{http}/v2/models/titles/ready")
        print(f"mlserver ready through the modelcar in {took:.0f} s")
        request = {"name": "body", "datatype": "BYTES", "shape": [3], "data": TEXTS}
        response = requests.post(
            f"http://127.0.0.1:{http}/v2/models/titles/infer",
            json={"inputs": [request]},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == model.commit
        ((output,),) = [body["outputs"]]
        assert output["name"] == "title" and output["data"] == expected
        seen = ok("exec", server.name, "ls", "/mnt/models/").split()
        assert "model-settings.json" in seen and "1" in seen, seen
