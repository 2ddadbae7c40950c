"""TFJob completion-detection latency: from the Succeeded condition to ``run()`` returning.

Prints one JSON line. Each of the runs (20 unless ``BENCH_TFJOB_RUNS``) creates a TFJob on the
test Kubernetes API server (``tests/k8s_api.py``, real HTTP on loopback, in this process), runs a
chief pod that logs and exits, then flips the job's condition to Succeeded; the latency is the
time from that flip until ``TFJobLauncher.run`` returns (which includes forwarding the last log
lines and the DELETE). The target is a median under 1 s.

The same-run baseline is the old KFP launcher's approach, a GET of the TFJob every period: it is
measured with a 1 s period (the flip lands at a random phase of the poll) and scaled to the old
launcher's 30 s period, whose latency grows linearly with the period.

    .venv/bin/python bench/bench_tfjob.py
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING

from common import REPO_ROOT
from kubernetes.client import V1DeleteOptions

from kfp_pachyderm.tfjob.launcher import TFJobLauncher, kubernetes_clients
from kfp_pachyderm.tfjob.spec import GROUP, PLURAL, VERSION, ReplicaSpec, TFJobSpec

if TYPE_CHECKING:
    from tests.k8s_api import K8sApi

RUNS = int(os.environ.get("BENCH_TFJOB_RUNS", "20"))
NS = "bench"
POLL_PERIOD_S = 1.0
OLD_PERIOD_S = 30.0


def spec(name: str) -> TFJobSpec:
    replica = ReplicaSpec(image="registry.example.com/trainer:1")
    return TFJobSpec(name=name, namespace=NS, replicas={"Chief": replica, "Worker": replica})


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def watched(api: K8sApi, launcher: TFJobLauncher, name: str) -> float:
    """One run of the launcher; seconds from the Succeeded flip to run() returning."""
    returned: list[float] = []

    def target() -> None:
        launcher.run(spec(name), timeout_s=600)
        returned.append(time.perf_counter())

    thread = threading.Thread(target=target)
    thread.start()
    for collection, selector in (("tfjobs", "fieldSelector"), ("pods", "labelSelector")):
        api.wait_for(
            lambda c=collection, s=selector: any(
                r.query.get("watch") and r.query.get(s, "").endswith(f"={name}")
                for r in api.requests("GET", f"/{c}$")
            )
        )
    pod = api.add_pod(NS, name, "Chief", 0)
    api.transition(NS, name, "Running")
    api.append_log(NS, pod, "epoch 1\nsaved model\n")
    api.finish_pod(NS, pod)
    time.sleep(random.uniform(0.05, 0.2))
    flipped = time.perf_counter()
    api.transition(NS, name, "Succeeded")
    thread.join(60)
    return returned[0] - flipped


def polled(api: K8sApi, name: str) -> float:
    """The old launcher's loop with a 1 s period; seconds from the flip to its return."""
    custom, _ = kubernetes_clients(api.configuration())
    api.create_tfjob(spec(name).manifest())
    returned: list[float] = []

    def target() -> None:
        while True:
            job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
            conditions = (job.get("status") or {}).get("conditions") or []
            if conditions and conditions[-1]["type"] in ("Succeeded", "Failed"):
                break
            time.sleep(POLL_PERIOD_S)
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, name, body=V1DeleteOptions(propagation_policy="Foreground")
        )
        returned.append(time.perf_counter())

    thread = threading.Thread(target=target)
    thread.start()
    time.sleep(random.uniform(0.05, 0.05 + POLL_PERIOD_S))
    flipped = time.perf_counter()
    api.transition(NS, name, "Succeeded")
    thread.join(60)
    return returned[0] - flipped


def main() -> None:
    sys.path.insert(0, str(REPO_ROOT))  # the test API server lives in tests/
    from tests.k8s_api import K8sApi

    random.seed(7)
    with K8sApi() as api:
        launcher = TFJobLauncher(*kubernetes_clients(api.configuration()), log=lambda _: None)
        watch = [watched(api, launcher, f"watch-{i}") for i in range(RUNS)]
        poll = [polled(api, f"poll-{i}") for i in range(RUNS)]
    figures = {
        "benchmark": "tfjob_completion_latency",
        "runs": RUNS,
        "watch_median_s": round(statistics.median(watch), 4),
        "watch_p90_s": round(percentile(watch, 0.9), 4),
        "watch_max_s": round(max(watch), 4),
        "target_median_s": 1.0,
        "meets_target": statistics.median(watch) < 1.0,
        "poll_1s_median_s": round(statistics.median(poll), 4),
        "poll_1s_p90_s": round(percentile(poll, 0.9), 4),
        "poll_30s_modelled_median_s": round(statistics.median(poll) * OLD_PERIOD_S, 2),
        "poll_30s_modelled_p90_s": round(percentile(poll, 0.9) * OLD_PERIOD_S, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
