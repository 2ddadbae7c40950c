"""When a KServe InferenceService or a Seldon Core 2 Model serves, and when it never will.

:func:`serving_state` reads the status of a serving resource the deployer wrote: Ready, failed
for good, or still on its way. The facts it relies on, from the projects' sources:

- KServe (``pkg/apis/serving/v1beta1/inference_service_status.go``): the ``Ready`` condition is
  the aggregate; ``status.modelStatus.transitionStatus`` is ``BlockedByFailedLoad`` when the
  target model failed to load (the storage initializer or the server container ended in error
  or crash-loops) and ``InvalidSpec`` when the predictor spec failed validation, with the cause
  in ``status.modelStatus.lastFailureInfo`` (reason, message, exit code, location). InvalidSpec
  with reason ``RuntimeNotRecognized`` reads "Waiting for runtime to become available": the
  ServingRuntime may simply not be in the controller's cache yet, so it is waited on. In raw
  deployment mode KServe copies a Deployment's Progressing=False condition, usually
  ``ProgressDeadlineExceeded`` (a stalled rollout), into Ready.
- Seldon Core 2 (``operator/scheduler/model.go``, ``docs-gb/models/scheduling.md``): the
  operator writes condition ``ModelReady`` (and the aggregate ``Ready``) with the scheduler's
  model state as the condition's *message* and the explanation as its *reason*; the states
  ``ScheduleFailed`` (no Server can host the model) and ``ModelFailed`` (it failed to load) are
  failures. Seldon sets no ``observedGeneration`` on a Model.
"""

from __future__ import annotations

from dataclasses import dataclass

INFERENCE_SERVICE = "InferenceService"

KSERVE_FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})
KSERVE_WAITING_FAILURES = frozenset({"RuntimeNotRecognized"})
KSERVE_FAILED_REASONS = frozenset({"ProgressDeadlineExceeded"})
SELDON_FAILED_STATES = frozenset({"ModelFailed", "ScheduleFailed"})


@dataclass(frozen=True)
class ServingState:
    """What a serving resource's status says: Ready, failed for good (``failure``), or neither;
    ``detail`` is what its Ready condition says, for the log and a timeout."""

    ready: bool = False
    failure: str = ""
    detail: str = ""
    url: str = ""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines in a traceback) made one space."""
    return " ".join(str(text).split())


def _condition_text(condition: dict | None) -> str:
    if not condition:
        return "no Ready condition yet"
    parts = [f"Ready {condition.get('status', 'Unknown')}"]
    parts += [str(condition[k]) for k in ("reason", "message") if condition.get(k)]
    return one_line(": ".join(parts))


def _failure_info(info: dict) -> str:
    text = ": ".join(str(info[k]) for k in ("reason", "message") if info.get(k))
    extra = [f"exit code {info['exitCode']}"] if info.get("exitCode") else []
    extra += [f"in {info['location']}"] if info.get("location") else []
    return (text or "no failure details") + (f" ({', '.join(extra)})" if extra else "")


def _kserve_failure(status: dict, ready: dict | None) -> str:
    model = status.get("modelStatus") or {}
    info = model.get("lastFailureInfo") or {}
    transition = model.get("transitionStatus")
    if transition in KSERVE_FAILED_TRANSITIONS and not (
        transition == "InvalidSpec" and info.get("reason") in KSERVE_WAITING_FAILURES
    ):
        return f"{transition}: {_failure_info(info)}"
    if ready and ready.get("status") == "False" and ready.get("reason") in KSERVE_FAILED_REASONS:
        return _condition_text(ready)
    return ""


def _seldon_failure(conditions: list[dict | None]) -> str:
    for condition in conditions:
        if not condition or condition.get("status") != "False":
            continue
        state, why = condition.get("message"), condition.get("reason")
        if why in SELDON_FAILED_STATES:  # in case a version writes them the usual way round
            state, why = why, state
        if state in SELDON_FAILED_STATES:
            return f"{state}: {why or 'no reason given'}"
    return ""


def serving_state(kind: str, obj: dict, generation: int) -> ServingState:
    """What the status of ``obj``, an InferenceService or a Seldon Core 2 Model (``kind``),
    says about ``generation``, the one the deployer wrote.

    A status of an older ``observedGeneration`` says nothing yet, neither Ready nor failed (a
    replaced resource still shows the previous model's status). Failures win over Ready: KServe
    keeps an InferenceService Ready on its previous model while the new one is
    BlockedByFailedLoad. ``url`` is an InferenceService's ``status.url``.
    """
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready = conditions.get("Ready")
    detail = _condition_text(ready)
    observed = status.get("observedGeneration")
    if observed is not None and int(observed) < generation:
        return ServingState(detail=f"status is of generation {observed}, not yet {generation}")
    if kind == INFERENCE_SERVICE:
        failure = _kserve_failure(status, ready)
    else:
        failure = _seldon_failure([conditions.get("ModelReady"), ready])
    if failure:
        return ServingState(failure=one_line(failure), detail=detail)
    if ready and ready.get("status") == "True":
        url = str(status.get("url") or "") if kind == INFERENCE_SERVICE else ""
        return ServingState(ready=True, detail=detail, url=url)
    return ServingState(detail=detail)
