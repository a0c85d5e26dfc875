# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One judgement of probes, pods, endpoints, Services and a replica's upstream errors.

Pure Python (standard library only, plus the collection's own pure ``nginx_log`` for the set of
error signatures): imports neither Ansible nor Kubernetes. The layers (``layers.py``), the
verdict (``verdict.py``) and the reports (``report_render.py``) all ask here whether a part is
sound, so that a pod, a Service or a probe is never healthy in one of them and sick in another.
Inputs are complete facts of the shapes in ``facts.py`` (``facts.normalize_*`` make them): every
key is read as it is, never guessed at.

Public API: :data:`GATEWAY_ERRORS`, :data:`CRASH_WORDS`, :func:`answered`,
:func:`is_gateway_error`, :func:`is_server_error`, :func:`probe_ran`, :func:`probe_line`,
:func:`pod_health`, :func:`endpoint_state`, :func:`selector_text`, :func:`service_health`,
:func:`upstream_errors`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    EndpointFact,
    PodFact,
    ProbeFact,
    ServiceFact,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import ERROR_SIGNATURES

#: HTTP statuses a proxy answers when its upstream failed.
GATEWAY_ERRORS = (502, 503, 504)

#: Words in a pod's ``problems`` that mean its containers crash or cannot start.
CRASH_WORDS = (
    "CrashLoopBackOff",
    "OOMKilled",
    "Error",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "exit ",
)


# ---------------------------------------------------------------------------------------------
# Probes (proxy_probe's per-replica dict, or the controller's own request)


def answered(status: int | None) -> bool:
    """Whether an HTTP status is a real answer (a positive number, not "no answer")."""
    return status is not None and status > 0


def is_gateway_error(status: int | None) -> bool:
    """No answer, or an answer a proxy gives when its upstream failed (502, 503, 504)."""
    return status is None or status <= 0 or status in GATEWAY_ERRORS


def is_server_error(status: int | None) -> bool:
    """No answer, or any 5xx answer."""
    return status is None or status <= 0 or status >= 500


def probe_ran(probe: ProbeFact) -> bool:
    """Whether a probe ran, so that its outcome is evidence."""
    return probe["ran"]


def probe_line(probe: ProbeFact) -> str:
    """One line of evidence for a probe result (proxy_probe's per-replica dict)."""
    who = "%s/%s" % (probe["namespace"] or "?", probe["name"] or "?")
    what = probe["url"] or "?"
    if probe["status"] is not None:
        return "%s: GET %s -> %s" % (who, what, probe["status"])
    return "%s: GET %s -> no answer (%s)" % (who, what, probe["error"] or "unknown error")


# ---------------------------------------------------------------------------------------------
# Pods and endpoints


def pod_health(pod: PodFact) -> dict[str, t.Any]:
    """How a backend pod (pod_info's shape) stands.

    Returns ``{healthy, crashing, crashed, not_ready, deleting, restarts, problems}``: ``healthy`` is
    Running, Ready and without a problem; ``crashing`` is Failed or Pending, or, for a pod that
    is not serving now (not Ready, or a container not running), a problem that names a crash
    (:data:`CRASH_WORDS`). A pod Running and Ready with every container running is not
    crashing whatever its history: a past OOMKill is a restart, judged by its time where it
    matters. ``not_ready`` is Running but not Ready; ``deleting`` is the deletion timestamp (or
    None); ``restarts`` a number; ``problems`` the pod's lines.
    """
    problems = pod["problems"]
    phase = pod["phase"]
    ready = pod["ready"]
    serving = (
        phase == "Running"
        and ready
        and all(c["state"] in (None, "running") for c in pod["containers"])
    )
    crashed = phase in ("Failed", "Pending") or any(
        word in problem for problem in problems for word in CRASH_WORDS
    )
    return {
        "healthy": phase == "Running" and ready and not problems,
        "crashing": crashed and not serving,
        # a crash in its history (phase or problems), serving now or not: in a crash loop a
        # read may catch the container in its few running seconds
        "crashed": crashed,
        "not_ready": phase == "Running" and not ready,
        "deleting": pod["deletion_timestamp"] or None,
        "restarts": pod["restarts"],
        "problems": problems,
    }


def endpoint_state(endpoint: EndpointFact) -> str:
    """``ready``, ``not_ready`` or ``terminating`` for one EndpointSlice endpoint."""
    if endpoint["terminating"]:
        return "terminating"
    return "ready" if endpoint["ready"] else "not_ready"


# ---------------------------------------------------------------------------------------------
# Services (service_info's shape)


def selector_text(selector: dict[str, str]) -> str:
    """``k=v,k2=v2`` for a label selector, ``(none)`` when it is empty."""
    return ",".join("%s=%s" % kv for kv in sorted(selector.items())) or "(none)"


def service_health(service: ServiceFact) -> dict[str, t.Any]:
    """How a backend Service stands.

    Returns ``{exists, selects_no_pod, ready, port_mismatches, problems, sound}``: ``ready`` the
    ready endpoint addresses; ``port_mismatches`` one line per Service port whose targetPort some
    selected pods do not expose; ``problems`` every line that makes the Service unsound (its
    selector matches no pod, it has no ready endpoint, a port mismatch); ``sound`` when it
    exists and has none.
    """
    exists = service["exists"]
    selects_no_pod = not (service["selector_matches"] or service["matching_pods"])
    ready = list(service["ready_addresses"])
    mismatches = [
        "port %s targets %s, which pods %s do not expose"
        % (
            mismatch["port"],
            mismatch["target_port"],
            ", ".join(mismatch["pods_without_it"]) or "none",
        )
        for mismatch in service["port_mismatches"]
    ]
    problems = []
    if not exists:
        problems.append("it does not exist")
    else:
        if selects_no_pod:
            problems.append("its selector matches no pod")
        if not ready:
            problems.append("it has no ready endpoint")
        problems.extend(mismatches)
    return {
        "exists": exists,
        "selects_no_pod": selects_no_pod,
        "ready": ready,
        "port_mismatches": mismatches,
        "problems": problems,
        "sound": not problems,
    }


# ---------------------------------------------------------------------------------------------
# A proxy replica's log


def upstream_errors(counts: dict[str, int]) -> dict[str, int]:
    """``{signature: n}`` of the upstream-error signatures among a replica's signature counts.

    Reload markers, info lines and client aborts are counted by the log summary too; they are
    not errors (:data:`nginx_log.ERROR_SIGNATURES` is the one list of what is).
    """
    return {
        signature: count for signature, count in counts.items() if signature in ERROR_SIGNATURES
    }
