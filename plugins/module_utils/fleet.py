# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One summary over many diagnosis targets (clusters, or namespaces in one).

Pure Python: imports neither Ansible nor Kubernetes. Used by the fleet summary play of
playbooks/diagnose_502.yml through the ``badgateway.k8s.fleet_summary`` filter.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

COULD_NOT_CHECK = "could_not_check"


def _target_row(host, result):
    """One target's row: its cause, or could_not_check with the reason."""
    if not isinstance(result, dict) or not result.get("verdict"):
        return {
            "target": host,
            "cause": COULD_NOT_CHECK,
            "summary": "no result: the run stopped before the verdict",
            "reason": "no result",
            "remediated": False,
        }
    errors = result.get("errors") or {}
    cause = (result.get("verdict") or {}).get("cause") or "unknown"
    remediation = result.get("remediation") or {}
    row = {
        "target": host,
        "cause": cause,
        "summary": (result.get("verdict") or {}).get("summary") or "",
        "reason": None,
        "remediated": bool(remediation.get("performed")),
        "verified": bool(remediation.get("verified")),
        "stale_replicas": list((result.get("verdict") or {}).get("stale_replicas") or []),
        "proxy_kinds": list((result.get("verdict") or {}).get("proxy_kinds") or []),
    }
    if errors and cause in ("unknown", "healthy"):
        # The diagnosis could not see enough to place a cause: say why, not "unknown".
        row["cause"] = COULD_NOT_CHECK
        # Several layers usually fail for one reason (the API is down): say each reason once.
        reasons = []
        for msg in (errors[layer] for layer in sorted(errors)):
            if msg not in reasons:
                reasons.append(msg)
        row["reason"] = "; ".join(reasons)
    return row


def fleet_summary(results):
    """Summarize ``results``: a dict (or list of pairs) of target name -> diagnose_502_result.

    A target without a result, or whose layers could not be checked and so has no cause, counts
    as ``could_not_check`` with its reason. Returns ``{targets, counts, could_not_check, rows}``
    with rows sorted by target name.
    """
    items = results.items() if isinstance(results, dict) else results
    rows = sorted((_target_row(host, result) for host, result in items), key=lambda r: r["target"])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["cause"]] = counts.get(row["cause"], 0) + 1
    return {
        "targets": len(rows),
        "counts": dict(sorted(counts.items())),
        "could_not_check": [
            {"target": r["target"], "reason": r["reason"]}
            for r in rows
            if r["cause"] == COULD_NOT_CHECK
        ],
        "remediated": [r["target"] for r in rows if r.get("remediated")],
        "rows": rows,
    }


def _cell(text):
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def fleet_markdown(summary):
    """The fleet summary as a Markdown document."""
    lines = [
        "# 502 diagnosis: fleet summary",
        "",
        "%d targets." % summary["targets"],
        "",
        "| cause | targets |",
        "|---|---|",
    ]
    lines += ["| %s | %d |" % (_cell(cause), n) for cause, n in summary["counts"].items()]
    if summary["could_not_check"]:
        lines += ["", "## Could not check", ""]
        lines += [
            "- **%s**: %s" % (_cell(c["target"]), _cell(c["reason"]))
            for c in summary["could_not_check"]
        ]
    lines += [
        "",
        "## Targets",
        "",
        "| target | proxy | cause | remediated | summary |",
        "|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        lines.append(
            "| %s | %s | %s | %s | %s |"
            % (
                _cell(row["target"]),
                _cell(", ".join(row.get("proxy_kinds") or []) or "-"),
                _cell(row["cause"]),
                "yes" if row.get("remediated") else "no",
                _cell(row["reason"] if row["cause"] == COULD_NOT_CHECK else row["summary"]),
            )
        )
    return "\n".join(lines) + "\n"
