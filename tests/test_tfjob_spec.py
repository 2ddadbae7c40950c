"""TFJob spec: the kubeflow.org/v1 manifest's shape, and bad input refused naming the value."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.tfjob.spec import ReplicaSpec, TFJobSpec, TFJobSpecError

IMAGE = "registry.example.com/ml/trainer:1.0"


def job(**kwargs) -> TFJobSpec:
    settings = {
        "name": "mnist-1",
        "namespace": "kubeflow",
        "replicas": {"Chief": ReplicaSpec(image=IMAGE), "Worker": ReplicaSpec(IMAGE, replicas=2)},
        **kwargs,
    }
    return TFJobSpec(**settings)


def test_a_single_worker_makes_the_minimal_tfjob_manifest() -> None:
    spec = TFJobSpec(
        name="mnist-1", namespace="kubeflow", replicas={"Worker": ReplicaSpec(image=IMAGE)}
    )
    assert spec.manifest() == {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "mnist-1", "namespace": "kubeflow"},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "Running"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": 1,
                    "restartPolicy": "OnFailure",
                    "template": {"spec": {"containers": [{"name": "tensorflow", "image": IMAGE}]}},
                }
            },
        },
    }
    assert spec.master_type == "Worker"


def test_run_policy_lives_under_spec_run_policy() -> None:
    manifest = job(clean_pod_policy="All", ttl_seconds_after_finished=0, backoff_limit=3).manifest()
    assert manifest["spec"]["runPolicy"] == {
        "cleanPodPolicy": "All",
        "ttlSecondsAfterFinished": 0,
        "backoffLimit": 3,
    }
    assert set(manifest["spec"]) == {"runPolicy", "tfReplicaSpecs"}


def test_replica_types_in_operator_order_with_counts() -> None:
    replica = ReplicaSpec(image=IMAGE)
    spec = TFJobSpec(
        name="all-types",
        namespace="ml",
        replicas={
            "Evaluator": replica,
            "PS": replica.with_replicas(2),
            "Worker": replica.with_replicas(4),
            "Chief": replica,
        },
    )
    replicas = spec.manifest()["spec"]["tfReplicaSpecs"]
    assert list(replicas) == ["Chief", "Worker", "PS", "Evaluator"]
    assert [r["replicas"] for r in replicas.values()] == [1, 4, 2, 1]
    assert spec.master_type == "Chief"


def test_gpus_resources_and_env_on_the_tensorflow_container() -> None:
    replica = ReplicaSpec(
        image=IMAGE,
        env={"B": "2"},
        cpu="500m",
        memory="1.5Gi",
        gpus=2,
        gpu_resource="amd.com/gpu",
    )
    spec = job(replicas={"Worker": replica}, env={"A": "1", "B": "job"})
    container = spec.manifest()["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"][
        "containers"
    ][0]
    assert container["name"] == "tensorflow"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "job"}]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1.5Gi"},
        "limits": {"cpu": "500m", "memory": "1.5Gi", "amd.com/gpu": "2"},
    }


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Trainer:1",
        "registry.example.com/trainer:",
        "trainer@sha256:abc",
        "a b",
        "-x/y",
    ],
)
def test_invalid_image_reference(image: str) -> None:
    with pytest.raises(UsageError, match=f"invalid image reference {image!r}"):
        ReplicaSpec(image=image)


@pytest.mark.parametrize(
    "image",
    [
        "trainer",
        "trainer:1.0",
        "localhost:5000/ml/trainer:v2",
        "ghcr.io/org/trainer@sha256:" + "a" * 64,
    ],
)
def test_valid_image_references(image: str) -> None:
    assert ReplicaSpec(image=image).image == image


@pytest.mark.parametrize("count", [0, -1, 1.5])
def test_replica_count_must_be_positive(count: object) -> None:
    with pytest.raises(TFJobSpecError, match=f"invalid replica count {count!r}"):
        ReplicaSpec(image=IMAGE, replicas=count)


def test_unknown_replica_type() -> None:
    with pytest.raises(TFJobSpecError, match="unknown replica type 'Master'"):
        job(replicas={"Master": ReplicaSpec(image=IMAGE)})


def test_chief_count_must_be_one() -> None:
    with pytest.raises(TFJobSpecError, match="invalid Chief replica count 2: must be exactly 1"):
        job(replicas={"Chief": ReplicaSpec(image=IMAGE, replicas=2)})


def test_needs_chief_or_worker() -> None:
    with pytest.raises(TFJobSpecError, match="needs a Chief or a Worker"):
        job(replicas={"PS": ReplicaSpec(image=IMAGE)})
    with pytest.raises(TFJobSpecError, match="at least one replica type"):
        job(replicas={})


@pytest.mark.parametrize(
    ("field", "value"),
    [("cpu", "two"), ("cpu", "1.5 cores"), ("memory", "4GB"), ("memory", "-1Gi")],
)
def test_a_bad_cpu_or_memory_quantity_is_refused_by_name(field: str, value: str) -> None:
    with pytest.raises(UsageError, match=f"invalid {field} quantity {value!r}"):
        ReplicaSpec(image=IMAGE, **{field: value})


def test_bad_gpu_count_and_policies() -> None:
    with pytest.raises(TFJobSpecError, match="invalid GPU count -1"):
        ReplicaSpec(image=IMAGE, gpus=-1)
    with pytest.raises(TFJobSpecError, match="invalid restart policy 'Sometimes'"):
        ReplicaSpec(image=IMAGE, restart_policy="Sometimes")
    with pytest.raises(TFJobSpecError, match="invalid cleanPodPolicy 'Some'"):
        job(clean_pod_policy="Some")
    with pytest.raises(TFJobSpecError, match="invalid backoffLimit -1"):
        job(backoff_limit=-1)
    with pytest.raises(TFJobSpecError, match="invalid ttlSecondsAfterFinished '60'"):
        job(ttl_seconds_after_finished="60")


@pytest.mark.parametrize("name", ["", "MNIST", "mnist_1", "-mnist", "mnist-", "a" * 64, "a.b"])
def test_a_bad_tfjob_name_or_namespace_is_refused_by_name(name: str) -> None:
    with pytest.raises(UsageError, match=f"invalid TFJob name {name!r}"):
        job(name=name)
    with pytest.raises(UsageError, match=f"invalid namespace {name!r}"):
        job(namespace=name)


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_any_dns_label_is_a_valid_name(name: str) -> None:
    assert job(name=name).manifest()["metadata"]["name"] == name


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        ReplicaSpec(image="")


def _start_tfjob_inputs(**given):
    """The start_tfjob inputs KFP would hand its body: the signature's defaults, then
    ``given``."""
    from kfp_pachyderm.bodies.start_tfjob import CONTRACT
    from kfp_pachyderm.kfp.compile import load_component

    signature = inspect.signature(load_component("start_tfjob").python_func)
    namespace = {n: p.default for n, p in signature.parameters.items()}
    namespace |= {"commit": None, "output_repo": "model", "data_ref": "mnist@" + "a" * 32}
    return CONTRACT.inputs.of(namespace | given, "start_tfjob")


def test_only_minus_one_and_empty_are_unset_so_another_negative_value_is_refused_by_name():
    unset = _start_tfjob_inputs()
    assert (unset.backoff_limit, unset.ttl_seconds_after_finished, unset.cpu) == (None, None, None)
    assert unset.gpus_per_replica == 0 and unset.delete_after is True
    worker = {"Worker": ReplicaSpec(image=IMAGE)}
    negative = _start_tfjob_inputs(backoff_limit=-5)
    with pytest.raises(TFJobSpecError, match="invalid backoffLimit -5"):
        TFJobSpec(
            name="a", namespace="kubeflow", replicas=worker, backoff_limit=negative.backoff_limit
        )
