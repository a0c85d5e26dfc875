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

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def unchecked_parts(layers, errors=None):
    """Lines naming every layer that could not be checked, and every step that failed."""
    lines = ["layer %s: %s" % (layer.get("name"), layer.get("message") or "could not be checked")
             for layer in _list(layers) if layer.get("status") == "error"]
    named = {layer.get("name") for layer in _list(layers) if layer.get("status") == "error"}
    for name, message in sorted(_dict(errors).items()):
        if message and name not in named:
            lines.append("%s: %s" % (name, message))
    return lines


def remediation_failure(remediation):
    """Why a remediation that was tried did not end verified, or None."""
    remediation = _dict(remediation)
    if remediation.get("error"):
        return str(remediation["error"])
    replicas = _list(remediation.get("replicas"))
    if not replicas:
        return None
    bad = [r for r in replicas if not r.get("verified")]
    if bad:
        return "; ".join("%s/%s: %s" % (r.get("namespace"), r.get("name"),
                                        r.get("error") or r.get("unproven") or "not verified")
                         for r in bad)
    if remediation.get("verified") is False:
        return "the replicas were reloaded, but the URL still answers %s" % (
            remediation.get("url_status_after"),)
    return None


def decide(verdict, layers, remediation=None, errors=None):
    """``{outcome, exit_status, headline, message, unchecked}`` of one diagnosed target."""
    verdict = _dict(verdict)
    remediation = _dict(remediation)
    cause = verdict.get("cause") or "unknown"
    unchecked = unchecked_parts(layers, errors)
    # Parts the verdict found unread inside layers that still failed on other evidence.
    unchecked += [line for line in verdict.get("unchecked") or [] if isinstance(line, str)
                  and not any(line in known for known in unchecked)]
    failure = remediation_failure(remediation)
    if failure:
        outcome = "remediation_failed"
        message = "%s: the reload did not end proven: %s" % (cause, failure)
    elif remediation.get("verified") and _list(remediation.get("replicas")):
        # Reloaded here, or found freshly reloaded by a concurrent run (cooldown): both proven.
        replicas = _list(remediation.get("replicas"))
        done = ["%s/%s" % (r.get("namespace"), r.get("name")) for r in replicas if r.get("reloaded")]
        skipped = ["%s/%s" % (r.get("namespace"), r.get("name")) for r in replicas if r.get("skipped")]
        outcome = "remediated"
        message = "%s: %s; proven by new worker processes and a probe that no longer answers 502" % (
            cause, "; ".join(filter(None, [
                "reloaded %s" % ", ".join(done) if done else "",
                "%s had just been reloaded (cooldown)" % ", ".join(skipped) if skipped else ""])))
    elif cause == "healthy" and not unchecked:
        outcome = "healthy"
        message = verdict.get("summary") or "healthy"
    elif cause not in ("healthy", "unknown") or (cause == "unknown" and verdict.get("candidates")):
        outcome = "problem_found"
        message = verdict.get("summary") or cause
    elif unchecked:
        outcome = "could_not_check"
        message = "; ".join(unchecked)
    else:
        # unknown with every part read: something is failing that no rule places
        outcome = "problem_found"
        message = verdict.get("summary") or cause
    if unchecked and outcome != "could_not_check":
        message += " (could not check: %s)" % "; ".join(unchecked)
    return {"outcome": outcome, "exit_status": EXIT_STATUS[outcome],
            "headline": HEADLINE[outcome], "message": message, "unchecked": unchecked}
