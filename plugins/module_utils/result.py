# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A target's diagnose_502 result, built once: whether the reload is earned, the record of the
remediation, and the result document (docs/result-schema.md) with its outcome; and what the
role's run-once steps show of every target of the play (each layer's judgement, the verdicts).

Pure Python: imports neither Ansible nor Kubernetes. The role calls these through its filters
(plugins/filter/diagnose.py) rather than spelling them in Jinja: ansible-playbook compiles every
template again in each task's worker, once per target, and these expressions were the role's
largest (over 50 targets, most of the result step's time went to compiling them); Python is
imported once, by ansible-playbook's own process.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import datetime
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils import outcome

SCHEMA_VERSION = 1

#: The result file formats of a diagnosis, in the order they are listed.
REPORT_FORMATS = ("json", "markdown", "html")
#: The argument spec of the option that names them (a path by format; empty: not written).
REPORT_FILES_SPEC = {
    "type": "dict",
    "default": {},
    "options": {name: {"type": "path"} for name in REPORT_FORMATS},
}

#: The job's artifact (docs/awx.md) every target's result is added to, by inventory host.
ARTIFACT = "diagnose_502_results"

#: Statuses from the URL after a reload that do not prove it: none, or a gateway error.
UNPROVEN_STATUSES = (-1, 502, 503, 504)


def _dict(value: object) -> dict[str, t.Any]:
    return value if isinstance(value, dict) else {}


def reload_reason(verdict: object, remediate: bool, check_mode: bool) -> str:
    """Why the stale replicas are not reloaded, or "" when the reload is earned: a
    stale_upstream verdict that makes it safe and names stale replicas, asked for, not in check
    mode."""
    found = _dict(verdict)
    if found.get("cause") != "stale_upstream":
        return "the verdict is %s, which a reload does not fix" % found.get("cause")
    if not found.get("reload_safe"):
        return "the evidence does not make a reload safe"
    if not found.get("stale_replicas"):
        return "no replica is stale"
    if not remediate:
        return "remediation is off (diagnose_502_remediate=false): read-only run"
    if check_mode:
        return "check mode: nothing is changed"
    return ""


def remediation_record(
    reason: str, reloaded: object, url: str | None, url_status_after: object
) -> dict[str, t.Any]:
    """What the remediation did (docs/result-schema.md ``remediation``).

    ``reason`` is reload_reason's; ``reloaded`` the reload step's result (``replicas``,
    ``error``) and ``url_status_after`` the status of ``url`` after it: both are this run's
    only when the reload was earned (else a value left by an earlier run, ignored). Verified:
    every replica reloaded was proven, and the URL (when given) no longer answers a gateway
    error.
    """
    done = {} if reason else _dict(reloaded)
    replicas = [r for r in done.get("replicas") or [] if isinstance(r, dict)]
    status = None if reason else url_status_after
    try:
        code = int(t.cast("int | str", status)) if status not in (None, "") else -1
    except (TypeError, ValueError):
        code = -1
    url_ok = not url or code not in UNPROVEN_STATUSES
    skipped = "; ".join("not reloaded: %s" % r["skipped"] for r in replicas if r.get("skipped"))
    return {
        "performed": any(r.get("reloaded") for r in replicas),
        "verified": bool(replicas) and all(r.get("verified") for r in replicas) and url_ok,
        "reason": reason or skipped or None,
        "url_status_after": status,
        "replicas": replicas,
        "error": done.get("error"),
    }


def build_result(
    gathered: object,
    proxy: str,
    url: str | None,
    inventory_host: str | None,
    check_mode: bool,
    remediation: object,
    finished: str | None = None,
) -> dict[str, t.Any]:
    """The result of one target (docs/result-schema.md) from what the gathering returned
    (``started``, ``facts``, ``layers``, ``verdict``, ``chain``, ``service_namespace``,
    ``service_name``) and the remediation record, with its outcome."""
    got = _dict(gathered)
    service = got.get("service_name")
    built: dict[str, t.Any] = {
        "schema_version": SCHEMA_VERSION,
        "started": got.get("started"),
        "finished": finished
        or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat() + "Z",
        "target": {
            "proxy": proxy,
            "service": "%s/%s" % (got.get("service_namespace"), service) if service else None,
            "url": url or None,
            "inventory_host": inventory_host,
        },
        "check_mode": bool(check_mode),
        "verdict": got.get("verdict"),
        "layers": got.get("layers"),
        "remediation": remediation,
        "errors": _dict(got.get("facts")).get("errors"),
        "chain": got.get("chain"),
    }
    built["outcome"] = outcome.decide(
        built["verdict"], built["layers"], built["remediation"], built["errors"]
    )
    return built


def outputs(inventory_host: str | None, files: object) -> list[dict[str, t.Any]]:
    """The result files asked for (``files``: a path by format, empty when not wanted), as the
    role's step that writes every target's files reads them."""
    wanted = _dict(files)
    return [
        {"host": inventory_host, "format": name, "dest": wanted[name]}
        for name in REPORT_FORMATS
        if wanted.get(name)
    ]


def publication(built: dict[str, t.Any], inventory_host: str | None) -> dict[str, t.Any]:
    """How a step publishes a target's result: the fact ``diagnose_502_result``, and the result
    added to the job's artifact ARTIFACT under the target's inventory host (ansible-playbook
    merges the targets' shares: ``aggregate``)."""
    return {
        "ansible_facts": {"diagnose_502_result": built},
        "ansible_stats": {
            "data": {ARTIFACT: {inventory_host: built}},
            "per_host": False,
            "aggregate": True,
        },
    }


def result_of_gathering(
    gathered: object,
    proxy: str,
    url: str | None,
    check_mode: bool,
    report: object,
) -> dict[str, t.Any]:
    """What the gathering adds when asked for the result (``report``: ``remediate``,
    ``inventory_host``, ``files``, ``show_summary``): ``reload_reason``, the files and whether
    the summary is shown, and, when no reload is earned (the usual run), the result itself,
    published: nothing is left to change it. An earned reload builds it after the reload."""
    asked = _dict(report)
    found = _dict(gathered)
    host = asked.get("inventory_host")
    reason = reload_reason(found.get("verdict"), bool(asked.get("remediate")), check_mode)
    out: dict[str, t.Any] = {
        "reload_reason": reason,
        "outputs": outputs(host, asked.get("files")),
        "show_summary": bool(asked.get("show_summary")),
    }
    if reason:
        record = remediation_record(reason, None, url, None)
        built = build_result(found, proxy, url, host, check_mode, record)
        out.update(publication(built, host))
    return out


def play_judgement(gathered_by_target: object, layer: str) -> dict[str, t.Any]:
    """One layer's judgement over every target of a play, as the role's assertion shows it:
    ``{passed, fail_msg, success_msg}``. With one target, the layer's own message and evidence;
    with several, each target that does not pass, by name (its evidence indented under it).
    ``gathered_by_target`` maps a target to what the gathering returned (its ``layers``)."""
    targets = _dict(gathered_by_target)
    many = len(targets) > 1
    fail_msg: list[str] = []
    success_msg = ""
    for target, gathered in targets.items():
        for judged in _dict(gathered).get("layers") or []:
            if not isinstance(judged, dict) or judged.get("name") != layer:
                continue
            prefix = "%s: " % target if many else ""
            if judged.get("status") == "pass":
                success_msg = (
                    "[pass] every target (%d)" % len(targets)
                    if many
                    else "[pass] %s" % judged.get("message")
                )
                continue
            fail_msg.append("%s[%s] %s" % (prefix, judged.get("status"), judged.get("message")))
            fail_msg.extend(
                ("    " if many else "") + line for line in judged.get("evidence") or []
            )
    return {"passed": not fail_msg, "fail_msg": fail_msg, "success_msg": success_msg}


def play_verdict(gathered_by_target: object) -> str | list[str]:
    """Every target's verdict summary: the one target's, or one line per target by name."""
    targets = _dict(gathered_by_target)
    lines = [
        ("%s: " % target if len(targets) > 1 else "")
        + str(_dict(_dict(g).get("verdict")).get("summary"))
        for target, g in targets.items()
    ]
    return lines[0] if len(lines) == 1 else lines


def play_judgements(gathered_by_target: object) -> dict[str, t.Any]:
    """Every layer's judgement (``layers``: by layer, play_judgement's) and the verdict lines
    (``verdict``: play_verdict's) over every target of a play, at once: for steps that show
    them one by one from what was looked up once."""
    names: list[str] = []
    for gathered in _dict(gathered_by_target).values():
        for judged in _dict(gathered).get("layers") or []:
            name = _dict(judged).get("name")
            if isinstance(name, str) and name not in names:
                names.append(name)
    return {
        "layers": {name: play_judgement(gathered_by_target, name) for name in names},
        "verdict": play_verdict(gathered_by_target),
    }
