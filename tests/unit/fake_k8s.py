"""A stand-in for ``K8sClient`` in unit tests: pods by name, and exec answered from a table.

``FakeExec(answers, pods)``: ``answers`` maps a command to what its exec returns. A command is
the argv joined by spaces; the longest key that is the whole command or a prefix of it (up to
a space) answers it, so ``"curl"`` answers every curl and ``"nginx -t"`` only ``nginx -t``.
``scripts`` names ``sh -c SCRIPT`` commands by their script (``{LOCK_SCRIPT: "lock"}``).
An answer is an ``ExecResult``; an exception (raised, as ``K8sClient.exec`` raises
``K8sError``); a callable ``(argv, container) -> answer``; or a list of answers, used in turn
(the last one again when they run out). A command with no answer fails the test.
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._ws_exec import ExecResult
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sNotFound


def done(rc=0, stdout="", stderr="", error=None, timed_out=False):
    """An ExecResult: the command ran and exited ``rc`` (None: it could not start)."""
    return ExecResult(rc, stdout, stderr, error, timed_out, False, "v5.channel.k8s.io")


NOT_FOUND = done(
    None, error='OCI runtime exec failed: exec: "x": executable file not found in $PATH: unknown'
)


class FakeExec:
    """Stands in for K8sClient: ``exec`` from a table of answers, ``get_pod`` from ``pods``."""

    timeout = 1.0

    def __init__(self, answers=None, pods=None, scripts=None):
        self.answers = dict(answers or {})
        self.pods = {p["metadata"]["name"]: p for p in pods or []}
        self.scripts = dict(scripts or {})
        self.calls = []  # the key that answered each exec, in order
        self.execs = []  # (pod, container, key) of each exec, in order

    def key(self, argv):
        """The answer key of a command."""
        if argv[:2] == ["sh", "-c"] and argv[2] in self.scripts:
            return self.scripts[argv[2]]
        text = " ".join(argv)
        keys = [k for k in self.answers if text == k or text.startswith(k + " ")]
        assert keys, "unexpected exec: %r" % (argv,)
        return max(keys, key=len)

    def exec(self, namespace, pod, argv, container=None, timeout=None):
        key = self.key(argv)
        self.calls.append(key)
        self.execs.append((pod, container, key))
        answer = self.answers[key]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if callable(answer) and not isinstance(answer, type):
            answer = answer(argv, container)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def get_pod(self, namespace, name):
        if name not in self.pods:
            raise K8sNotFound('pods "%s" not found in namespace "%s"' % (name, namespace), 404)
        return self.pods[name]
