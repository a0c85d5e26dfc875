# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the diagnosis into reports people read; the rendering lives in module_utils."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.badgateway.k8s.plugins.module_utils import report_render


def report_chain(facts, verdict=None):
    """The request chain (client, proxy replicas, Service, endpoints, pods) from the gathered facts."""
    try:
        return report_render.build_chain(facts, verdict)
    except report_render.ReportError as exc:
        raise AnsibleFilterError("report_chain: %s" % exc) from exc


def report_markdown(result):
    """The diagnose_502_result as a Markdown report."""
    try:
        return report_render.to_markdown(result)
    except report_render.ReportError as exc:
        raise AnsibleFilterError("report_markdown: %s" % exc) from exc


def report_html(result):
    """The diagnose_502_result as a self-contained HTML page."""
    try:
        return report_render.to_html(result)
    except report_render.ReportError as exc:
        raise AnsibleFilterError("report_html: %s" % exc) from exc


class FilterModule(object):
    """The badgateway.k8s report filters."""

    def filters(self):
        return {
            "report_chain": report_chain,
            "report_markdown": report_markdown,
            "report_html": report_html,
        }
