# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the diagnose_502 role uses to judge each layer; the rules live in module_utils."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.badgateway.k8s.plugins.module_utils import (
    drift,
    facts,
    fleet,
    health,
    layers,
    outcome,
    result,
)


def assess_layer(facts, name):
    """Judge one diagnosis layer from the gathered facts."""
    try:
        return layers.assess(facts, name)
    except ValueError as exc:
        raise AnsibleFilterError("assess_layer: %s" % exc) from exc


def probe_line(probe):
    """One line of evidence for one probe result."""
    if not isinstance(probe, dict):
        raise AnsibleFilterError(
            "probe_line: expected a probe result (a dict), got %s" % type(probe).__name__
        )
    return health.probe_line(facts.normalize_probe(probe))


def upstream_drift(proxies, services, pods):
    """Judge each proxy replica's upstreams against the Services' current endpoints."""
    for what, value in (("proxies", proxies), ("services", services), ("pods", pods)):
        if value is not None and not isinstance(value, (list, dict)):
            raise AnsibleFilterError(
                "upstream_drift: %s must be a list or a dict, got %s" % (what, type(value).__name__)
            )
    return drift.upstream_drift(proxies, services, pods)


def fleet_summary(results):
    """Counts per cause and the could-not-check targets over many diagnose_502 results."""
    if not isinstance(results, (dict, list)):
        raise AnsibleFilterError(
            "fleet_summary: expected a dict of target -> diagnose_502_result, got %s"
            % type(results).__name__
        )
    return fleet.fleet_summary(results)


def fleet_markdown(summary):
    """A fleet summary (from fleet_summary) as Markdown."""
    if not isinstance(summary, dict) or "rows" not in summary:
        raise AnsibleFilterError(
            "fleet_markdown: expected the output of badgateway.k8s.fleet_summary"
        )
    return fleet.fleet_markdown(summary)


def diagnose_outcome(result):
    """The outcome of a diagnose_502 result (healthy, remediated, problem_found, ...)."""
    if not isinstance(result, dict):
        raise AnsibleFilterError(
            "diagnose_outcome: expected a diagnose_502 result (a dict), got %s"
            % type(result).__name__
        )
    return outcome.decide(
        result.get("verdict"), result.get("layers"), result.get("remediation"), result.get("errors")
    )


def reload_reason(verdict, remediate=False, check_mode=False):
    """Why the stale replicas are not reloaded, or "" when the verdict earns the reload."""
    if not isinstance(verdict, dict):
        raise AnsibleFilterError(
            "reload_reason: expected a verdict (a dict), got %s" % type(verdict).__name__
        )
    return result.reload_reason(verdict, bool(remediate), bool(check_mode))


def remediation_record(reason, reloaded=None, url=None, url_status_after=None):
    """The record of the remediation (the result's ``remediation``)."""
    if not isinstance(reason, str):
        raise AnsibleFilterError(
            "remediation_record: expected the reason from reload_reason (a string), got %s"
            % type(reason).__name__
        )
    return result.remediation_record(reason, reloaded, url, url_status_after)


def diagnose_result(
    gathered, proxy="", url=None, inventory_host=None, check_mode=False, remediation=None
):
    """A target's diagnose_502 result, with its outcome, from what was gathered."""
    if not isinstance(gathered, dict):
        raise AnsibleFilterError(
            "diagnose_result: expected what badgateway.k8s.diagnose gathered (a dict), got %s"
            % type(gathered).__name__
        )
    return result.build_result(gathered, proxy, url, inventory_host, check_mode, remediation)


def _play(name, gathered_by_target):
    """The input of a filter over every target of a play, refused when it is not a mapping."""
    if not isinstance(gathered_by_target, dict):
        raise AnsibleFilterError(
            "%s: expected {target: what badgateway.k8s.diagnose gathered}, got %s"
            % (name, type(gathered_by_target).__name__)
        )
    return gathered_by_target


def layer_judgement(gathered_by_target, layer):
    """One layer's judgement over every target of a play: {passed, fail_msg, success_msg}."""
    return result.play_judgement(_play("layer_judgement", gathered_by_target), layer)


def verdict_lines(gathered_by_target):
    """Every target's verdict summary (one target: its summary; several: a line each)."""
    return result.play_verdict(_play("verdict_lines", gathered_by_target))


def play_judgements(gathered_by_target):
    """Every layer's judgement and the verdict lines over every target of a play, at once."""
    return result.play_judgements(_play("play_judgements", gathered_by_target))


class FilterModule(object):
    """The badgateway.k8s filters."""

    def filters(self):
        return {
            "assess_layer": assess_layer,
            "probe_line": probe_line,
            "upstream_drift": upstream_drift,
            "fleet_summary": fleet_summary,
            "fleet_markdown": fleet_markdown,
            "diagnose_outcome": diagnose_outcome,
            "reload_reason": reload_reason,
            "remediation_record": remediation_record,
            "diagnose_result": diagnose_result,
            "layer_judgement": layer_judgement,
            "verdict_lines": verdict_lines,
            "play_judgements": play_judgements,
        }
