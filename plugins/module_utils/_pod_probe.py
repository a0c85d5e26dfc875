# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: an HTTP request from inside a pod, whatever the proxy.

With curl, else wget, in the pod's container (the proxy_probe fact of DESIGN.md); and the URL
of a replica's own listen address, ``http://<podIP>:<port><path>``, built in one place for
proxy_probe (``target: self``) and the reload's proof.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import fmt_address
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError


def unchecked(namespace: str, pod: str, url: str | None, error: str | None) -> dict[str, Any]:
    """The fact of a probe that has not run (yet, or at all): evidence of nothing."""
    return {
        "namespace": namespace,
        "name": pod,
        "url": url,
        "tool": None,
        "status": None,
        "ok": False,
        "error": error,
        "time_total": None,
        "rc": None,
        "ran": False,
    }


def probe_url(ip: str, port: int, path: str) -> str:
    """``http://IP:PORT/path`` (IPv6 in brackets; ``path`` gets its leading slash)."""
    return "http://%s%s" % (fmt_address(ip, port), path if path.startswith("/") else "/" + path)


def self_url(
    adapter: Any, pod: dict[str, Any], container: str | None, port: int | None, path: str
) -> tuple[str | None, str | None]:
    """The URL of a replica's own listen address; ``(url, None)`` or ``(None, why not)``.

    ``port`` None: the first listen port of the running config (``adapter.listen_ports``,
    which may raise K8sError naming the call).
    """
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    if not status.get("podIP"):
        return None, "pod has no IP (phase %s)" % status.get("phase")
    if port is None:
        ports, problem = adapter.listen_ports(meta.get("namespace"), meta.get("name"), container)
        if not ports:
            return None, problem or "%s listens on no port; set port" % adapter.kind
        port = ports[0]
    return probe_url(status["podIP"], port, path), None


_HTTP_STATUS = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
_WGET_ERROR = re.compile(r"ERROR (\d{3})")


def probe(
    client: Any, namespace: str, pod: str, container: str | None, url: str, timeout: float
) -> dict[str, Any]:
    """Request ``url`` from inside the pod with curl, else wget; the proxy_probe fact.

    ``ran`` says whether a client ran and its outcome is evidence (an answer, a refusal, a
    timeout); when it is false, ``error`` says why nothing could be learnt (the exec call
    failed, or the container has neither curl nor wget) and ``status`` is None: that is "could
    not check", never a failed request.
    """
    fact = unchecked(namespace, pod, url, None)
    try:
        return _probe(client, namespace, pod, container, url, timeout, fact)
    except K8sError as exc:
        return unchecked(namespace, pod, url, "could not run the probe: %s" % exc)


def _probe(
    client: Any,
    namespace: str,
    pod: str,
    container: str | None,
    url: str,
    timeout: float,
    fact: dict[str, Any],
) -> dict[str, Any]:
    limit = "%g" % timeout
    exec_timeout = timeout + client.timeout
    curl = client.exec(
        namespace,
        pod,
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}",
            "--max-time",
            limit,
            url,
        ],
        container=container,
        timeout=exec_timeout,
    )
    if curl.rc is not None and curl.rc != 127:
        fact.update(tool="curl", rc=curl.rc, ran=True)
        parts = curl.stdout.split()
        if parts and parts[0].isdigit() and parts[0] != "000":
            fact["status"] = int(parts[0])
            fact["time_total"] = float(parts[1]) if len(parts) > 1 else None
        if curl.rc != 0:
            fact["error"] = curl.stderr.strip() or "curl exited %s" % curl.rc
    elif curl.timed_out:
        fact.update(tool="curl", error=curl.error, ran=True)
    else:
        wget = client.exec(
            namespace,
            pod,
            ["wget", "-q", "-S", "-O", "/dev/null", "-T", limit, url],
            container=container,
            timeout=exec_timeout,
        )
        if (wget.rc is None and not wget.timed_out) or wget.rc == 127:
            fact["error"] = (
                "neither curl nor wget can run in container %s of pod %s/%s "
                "(curl: %s; wget: %s): nothing could be probed from there"
                % (container, namespace, pod, curl.error or "exit 127", wget.error or "exit 127")
            )
            return fact
        fact.update(tool="wget", rc=wget.rc, ran=True)
        codes = _HTTP_STATUS.findall(wget.stderr) or _WGET_ERROR.findall(wget.stderr)
        if codes:
            fact["status"] = int(codes[-1])
        if wget.rc != 0 and fact["status"] is None:
            fact["error"] = wget.error or wget.stderr.strip() or "wget exited %s" % wget.rc
    fact["ok"] = fact["status"] is not None and fact["status"] < 500
    return fact
