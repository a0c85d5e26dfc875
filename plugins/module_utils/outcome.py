# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outcome of a diagnosis run, and the exit status that carries it.

Pure Python: imports neither Ansible nor Kubernetes. One place decides, from the verdict, the
layers and the remediation of a result, which of these the run ends in:

``healthy``             nothing is failing now, and every part was read          exit 0
``remediated``          the problem was found and a reload fixed it, proven      exit 0
``problem_found``       a cause (or an unknown one) of a failure now was found   exit 2
``remediation_failed``  a reload was tried and failed, or could not be proven    exit 2
``could_not_check``     no problem was found, but a part could not be read       exit 4

ansible-playbook has three exit statuses a play can produce: 0, 2 (a host failed) and 4 (a
host unreachable). "Could not check" is the unreachable one: the target could not be looked at.
A problem found and a failed remediation share 2; the result's ``outcome`` and the first word
of the failure message tell them apart.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    LayerResult,
    OutcomeFact,
    Remediation,
    normalize_result,
)

EXIT_STATUS = {
    "healthy": 0,
    "remediated": 0,
    "problem_found": 2,
    "remediation_failed": 2,
    "could_not_check": 4,
}

HEADLINE = {
    "healthy": "HEALTHY",
    "remediated": "REMEDIATED",
    "problem_found": "PROBLEM FOUND",
    "remediation_failed": "REMEDIATION FAILED",
    "could_not_check": "COULD NOT CHECK",
}


def unchecked_parts(layers: list[LayerResult], errors: dict[str, str]) -> list[str]:
    """Lines naming every layer that could not be checked, and every step that failed."""
    lines = [
        "layer %s: %s" % (layer["name"], layer["message"] or "could not be checked")
        for layer in layers
        if layer["status"] == "error"
    ]
    named = {layer["name"] for layer in layers if layer["status"] == "error"}
    for name, message in sorted(errors.items()):
        if message and name not in named:
            lines.append("%s: %s" % (name, message))
    return lines


def remediation_failure(remediation: Remediation) -> str | None:
    """Why a remediation that was tried did not end verified, or None."""
    if remediation["error"]:
        return remediation["error"]
    replicas = remediation["replicas"]
    if not replicas:
        return None
    bad = [r for r in replicas if not r["verified"]]
    if bad:
        return "; ".join(
            "%s/%s: %s" % (r["namespace"], r["name"], r["error"] or r["unproven"] or "not verified")
            for r in bad
        )
    if not remediation["verified"]:
        return "the replicas were reloaded, but the URL still answers %s" % (
            remediation["url_status_after"],
        )
    return None


def decide(
    verdict: object, layers: object, remediation: object = None, errors: object = None
) -> OutcomeFact:
    """``{outcome, exit_status, headline, message, unchecked}`` of one diagnosed target.

    Takes the parts of a result as they come (normalised here: ``facts.normalize_*``).
    """
    parts = normalize_result(
        {"verdict": verdict, "layers": layers, "remediation": remediation, "errors": errors}
    )
    known, tried = parts["verdict"], parts["remediation"]
    cause = known["cause"] or "unknown"
    unchecked = unchecked_parts(parts["layers"], parts["errors"])
    # Parts the verdict found unread inside layers that still failed on other evidence.
    unchecked += [
        line for line in known["unchecked"] if not any(line in seen for seen in unchecked)
    ]
    failure = remediation_failure(tried) if tried else None
    if failure:
        outcome = "remediation_failed"
        message = "%s: the reload did not end proven: %s" % (cause, failure)
    elif tried and tried["verified"] and tried["replicas"]:
        # Reloaded here, or found reloaded since by a concurrent run: both proven.
        done = ["%s/%s" % (r["namespace"], r["name"]) for r in tried["replicas"] if r["reloaded"]]
        skipped = ["%s/%s" % (r["namespace"], r["name"]) for r in tried["replicas"] if r["skipped"]]
        outcome = "remediated"
        message = (
            "%s: %s; proven by new worker processes and a probe that no longer answers 502"
            % (
                cause,
                "; ".join(
                    filter(
                        None,
                        [
                            "reloaded %s" % ", ".join(done) if done else "",
                            "%s had been reloaded since (by a concurrent run)" % ", ".join(skipped)
                            if skipped
                            else "",
                        ],
                    )
                ),
            )
        )
    elif cause == "healthy" and not unchecked:
        outcome = "healthy"
        message = known["summary"] or "healthy"
    elif cause not in ("healthy", "unknown") or (cause == "unknown" and known["candidates"]):
        outcome = "problem_found"
        message = known["summary"] or cause
    elif unchecked:
        outcome = "could_not_check"
        message = "; ".join(unchecked)
    else:
        # unknown with every part read: something is failing that no rule places
        outcome = "problem_found"
        message = known["summary"] or cause
    if unchecked and outcome != "could_not_check":
        message += " (could not check: %s)" % "; ".join(unchecked)
    return {
        "outcome": outcome,
        "exit_status": EXIT_STATUS[outcome],
        "headline": HEADLINE[outcome],
        "message": message,
        "unchecked": unchecked,
    }
