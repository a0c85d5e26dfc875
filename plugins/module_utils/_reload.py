# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the reload of proxy replicas as a plan, whatever the proxy.

Per replica, in order: take the replica's reload lock (a directory in the container, so that
concurrent runs take turns); apply the cooldown rule (a replica whose workers were re-spawned
less than ``cooldown`` seconds ago is not reloaded again unless forced, only probed); test the
config; apply the reload; wait for its proof (new worker processes); release the lock; probe
the replica. The proxy's own commands come from its adapter (``proxy_adapter``). Each replica
ends as the ``nginx_reload`` ``replicas`` entry of DESIGN.md: a failed call (``K8sError``)
ends that replica with ``error`` naming the call, and the next replica is still handled.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils._pod_probe import probe, self_url
from ansible_collections.badgateway.k8s.plugins.module_utils.health import is_gateway_error
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    format_time,
    parse_time,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import ProxyAdapter

# Take turns per replica: mkdir is atomic. A lock older than two minutes belongs to a run that
# died and is broken. Prints the lock path; exits 75 when the wait runs out.
LOCK_SCRIPT = r"""
for d in /run /var/run /tmp; do [ -d "$d" ] && [ -w "$d" ] && break; done
l="$d/badgateway-k8s-reload.lock"
n=0
while ! mkdir "$l" 2>/dev/null; do
  if [ -n "$(find "$l" -maxdepth 0 -mmin +2 2>/dev/null)" ]; then rmdir "$l" 2>/dev/null; continue; fi
  n=$((n + 1))
  if [ "$n" -gt "$1" ]; then echo "another run has held $l for too long" >&2; exit 75; fi
  sleep 0.1
done
echo "$l"
"""

#: The options of a plan (the nginx_reload module's options of the same names).
OPTIONS = (
    "container",
    "probe_path",
    "probe_port",
    "probe_url",
    "settle_timeout",
    "probe_timeout",
    "cooldown",
    "force",
    "lock_timeout",
    "reloaded_after",
)


def new_result(namespace: str, name: str, steps: list[str]) -> dict[str, Any]:
    """A replica's result before anything ran (also the check-mode result)."""
    return {
        "namespace": namespace,
        "name": name,
        "container": None,
        "kind": None,
        "planned": steps,
        "config_test": None,
        "reload_sent": False,
        "reloaded": False,
        "skipped": None,
        "last_reload_age": None,
        "workers_before": [],
        "workers_after": [],
        "last_reload": None,
        "probe": None,
        "verified": False,
        "unproven": None,
        "error": None,
    }


def reloaded_since_skip(workers: list[dict[str, Any]], reloaded_after: str | None) -> str | None:
    """Why a replica whose newest worker started at or after ``reloaded_after`` (when the
    endpoints it should dial appeared) is not reloaded now, or None.

    Such a replica has already re-read its config with those endpoints (a concurrent run, or
    someone, reloaded it): another reload would resolve the same addresses. Timestamps are whole
    seconds, so a worker started in the same second as the endpoints does not count as after.
    """
    since = parse_time(reloaded_after)
    starts = [parse_time(w.get("start_time")) for w in workers]
    starts = [x for x in starts if x is not None]
    if since is None or not starts or max(starts) < since + datetime.timedelta(seconds=1):
        return None
    return (
        "its workers started at %s, after the current endpoints appeared (%s): it was reloaded "
        "since, not reloaded again" % (format_time(max(starts)), reloaded_after)
    )


def cooldown_skip(age: float | None, cooldown: int, force: bool) -> str | None:
    """Why a replica last reloaded ``age`` seconds ago is not reloaded now, or None.

    ``age`` None (never reloaded since the proxy started, or unknown) never holds a reload
    back; neither does ``cooldown`` 0 or ``force``.
    """
    if cooldown > 0 and not force and age is not None and age < cooldown:
        return (
            "its workers started %ss ago, within the cooldown of %ss: not reloaded again "
            "(force: true overrides)" % (int(age), cooldown)
        )
    return None


class ReloadPlan:
    """The reload of replicas of one namespace through ``adapter``, with ``options`` (a dict
    with every key of ``OPTIONS``). ``clock`` and ``sleep`` pace the wait for new workers."""

    def __init__(
        self,
        adapter: ProxyAdapter,
        options: dict[str, Any],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.adapter = adapter
        self.options = {key: options[key] for key in OPTIONS}
        self.clock = clock
        self.sleep = sleep

    def steps(self, adapter: ProxyAdapter | None = None) -> list[str]:
        """The steps run per replica, as text (the results' ``planned``); ``adapter``: the
        replica's own kind (``auto`` names every kind's steps until a pod is picked)."""
        opts, adapter = self.options, adapter or self.adapter
        steps = [
            "take the replica's reload lock",
        ]
        if opts["reloaded_after"]:
            steps.append(
                "skip the reload if the workers started after %s (reloaded since the current "
                "endpoints appeared)" % opts["reloaded_after"]
            )
        if opts["cooldown"] > 0:
            steps.append(
                "skip the reload if the workers started less than %ss ago%s"
                % (opts["cooldown"], " (no: force)" if opts["force"] else "")
            )
        steps += [
            adapter.config_test_step,
            "%s (only if %s passes)" % (adapter.reload_step, adapter.config_test_step),
            "wait up to %gs for new worker processes" % opts["settle_timeout"],
        ]
        if opts["probe_url"]:
            steps.append(
                "GET %s from inside the pod, expect no gateway error (502/503/504)"
                % opts["probe_url"]
            )
        elif opts["probe_path"] is not None:
            steps.append(
                "GET http://<podIP>:%s%s from inside the pod, expect no gateway error "
                "(502/503/504)" % (opts["probe_port"] or "<listen port>", opts["probe_path"])
            )
        return steps

    def run(self, namespace: str, names: Iterable[str]) -> list[dict[str, Any]]:
        """Reload each replica in ``names`` in turn; their results, in that order."""
        steps = self.steps()
        return [self.replica(namespace, name, steps) for name in names]

    def replica(self, namespace: str, name: str, steps: list[str] | None = None) -> dict[str, Any]:
        """Lock, cooldown, test, reload, proof, probe of one replica; its result.

        A ``K8sError`` ends the replica where it happened: what was done before stays in the
        result, ``error`` names the call that failed.
        """
        result = new_result(namespace, name, steps if steps is not None else self.steps())
        try:
            pod = self.adapter.client.get_pod(namespace, name)
            container = result["container"] = self.adapter.pick_container(
                pod, self.options["container"]
            )
            result["kind"] = self.adapter.kind_for(namespace, name)
            result["planned"] = self.steps(self.adapter.adapter_for(namespace, name))
            lock = self._lock(namespace, name, container)
            try:
                go_on = self._reload_locked(namespace, name, container, result)
            finally:
                self._unlock(namespace, name, container, lock)
            if go_on:
                self._verify(namespace, name, container, pod, result)
        except K8sError as exc:
            result["error"] = str(exc)
        return result

    def _lock(self, namespace: str, name: str, container: str) -> str:
        """Take the replica's reload lock (waiting up to lock_timeout); its path, or K8sError."""
        wait = self.options["lock_timeout"]
        taken = self.adapter.client.exec(
            namespace,
            name,
            ["sh", "-c", LOCK_SCRIPT, "sh", str(max(1, int(wait * 10)))],
            container=container,
            timeout=wait + 10,
        )
        path = taken.stdout.strip()
        if taken.rc != 0 or not path:
            raise K8sError(
                "cannot take the reload lock in %s/%s: %s"
                % (
                    namespace,
                    name,
                    (taken.stderr or taken.stdout).strip() or taken.error or "exit %s" % taken.rc,
                )
            )
        return path

    def _unlock(self, namespace: str, name: str, container: str, lock: str) -> None:
        try:
            self.adapter.client.exec(namespace, name, ["rmdir", lock], container=container)
        except K8sError:
            pass  # a lock left behind is broken by the next run after two minutes

    def _reload_locked(
        self, namespace: str, name: str, container: str, result: dict[str, Any]
    ) -> bool:
        """The part under the lock: cooldown, config test, reload, new workers.

        True when the replica should be probed next (it was reloaded, or skipped: reloaded
        since the endpoints appeared, or in the cooldown), False when it failed (``result["error"]`` says why).
        """
        adapter, opts = self.adapter.adapter_for(namespace, name), self.options
        before = adapter.read_processes(namespace, name, container)
        result["workers_before"] = before["workers"]
        result["last_reload_age"] = before.get("last_reload_age")
        since = None if opts["force"] else opts["reloaded_after"]
        result["skipped"] = reloaded_since_skip(before["workers"], since) or cooldown_skip(
            result["last_reload_age"], opts["cooldown"], opts["force"]
        )
        if result["skipped"]:
            result["workers_after"] = before["workers"]
            return True
        test = result["config_test"] = adapter.test_config(namespace, name, container)
        if not test["ok"]:
            result["error"] = "%s failed, not reloading: %s" % (
                adapter.config_test_step,
                test["output"],
            )
            return False
        refused = adapter.apply_reload(namespace, name, container)
        if refused:
            result["error"] = "%s failed: %s" % (adapter.reload_step, refused)
            return False
        result["reload_sent"] = True
        after = self._settle(namespace, name, container, before)
        result["workers_after"] = after["workers"]
        if before["problem"] or after["problem"]:
            result["error"] = "cannot prove the reload: %s" % (
                after["problem"] or before["problem"]
            )
            return False
        result["reloaded"] = adapter.reload_took(before, after)
        if not result["reloaded"]:
            result["error"] = (
                "%s exited 0 but the worker processes were not replaced within "
                "%gs: the master probably kept the old config (see its error log)"
                % (adapter.reload_step, opts["settle_timeout"])
            )
            return False
        result["last_reload"] = after["workers"][-1]["start_time"]
        return True

    def _settle(
        self, namespace: str, name: str, container: str, before: dict[str, Any]
    ) -> dict[str, Any]:
        """Read the processes until the reload shows (new workers) or settle_timeout passes."""
        deadline = self.clock() + self.options["settle_timeout"]
        while True:
            after = self.adapter.read_processes(namespace, name, container)
            if self.adapter.reload_took(before, after) or self.clock() >= deadline:
                return after
            self.sleep(0.2)

    def _verify(
        self, namespace: str, name: str, container: str, pod: dict[str, Any], result: dict[str, Any]
    ) -> None:
        """Probe the replica (reloaded, or skipped: reloaded since or in the cooldown); set verified."""
        opts = self.options
        url = opts["probe_url"]
        if not url and opts["probe_path"] is not None:
            url, why = self_url(
                self.adapter, pod, container, opts["probe_port"], opts["probe_path"]
            )
            if why:
                result["error"] = "cannot probe: %s" % why
                return
        if url:
            fact = result["probe"] = probe(
                self.adapter.client, namespace, name, container, url, opts["probe_timeout"]
            )
            if not fact["ran"]:
                # Nothing could ask the replica: the new workers prove the reload, not the fix.
                result["unproven"] = "%s, but not proven to answer: %s" % (
                    "new worker processes took over"
                    if result["reloaded"]
                    else "not reloaded (%s)" % result["skipped"],
                    fact["error"],
                )
                result["error"] = "unproven: " + result["unproven"]
                return
            if is_gateway_error(fact["status"]):
                result["error"] = "%s, but the probe of %s got %s" % (
                    "not reloaded (%s)" % result["skipped"] if result["skipped"] else "reloaded",
                    url,
                    fact["status"] or fact["error"],
                )
                return
        result["verified"] = True
