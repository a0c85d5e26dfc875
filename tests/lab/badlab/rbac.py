"""Bearer-token authentication and RBAC-like authorization for the lab's API server.

    auth = Auth(tokens={
        "admin-token": {"user": "admin", "rules": None},          # None: cluster-admin
        "reader-token": {"user": "reader", "rules": [
            {"verbs": ["get", "list"], "resources": ["pods", "pods/log"], "namespaces": ["shop"]},
            {"verbs": ["list"], "resources": ["endpointslices"], "apiGroups": ["discovery.k8s.io"]},
        ]},
    })

A rule grants its ``verbs`` on its ``resources`` (``"pods"``, ``"pods/log"``, ``"*"``).
``apiGroups`` (optional, default any group) limits it to groups (``""`` is the core group).
``namespaces`` (optional) limits it to requests inside those namespaces, like a RoleBinding;
without it the rule also covers cluster-scope requests (lists across all namespaces), like
a ClusterRoleBinding. ``resourceNames`` (optional) limits it to named objects.
Discovery, version and health paths are open to every authenticated user, as the real
``system:discovery`` role makes them. ``Impersonate-User`` needs the verb ``impersonate``
on ``users`` (and on ``groups`` for each ``Impersonate-Group``); the request then runs
with the rules of the token table's user of that name (none for an unknown name). A rule grants
exactly its verbs: exec over a WebSocket GET is ``get`` on ``pods/exec``, and the API server
(``badlab.apiserver``) checks ``create`` for it too, as kube-apiserver >= 1.35 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from badlab.errors import LabError


class AuthConfigError(LabError):
    """The token table given to Auth is malformed; the message says where."""


_RULE_KEYS = {"verbs", "resources", "namespaces", "apiGroups", "resourceNames"}


@dataclass(frozen=True)
class Rule:
    """One grant; empty ``namespaces``/``api_groups``/``names`` mean "any"."""

    verbs: frozenset[str]
    resources: frozenset[str]
    namespaces: frozenset[str] | None = None
    api_groups: frozenset[str] | None = None
    names: frozenset[str] | None = None

    def allows(self, attrs: Attributes) -> bool:
        """Whether this rule grants the request described by ``attrs``."""
        if not ("*" in self.verbs or attrs.verb in self.verbs):
            return False
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        if not ({"*", resource} & self.resources):
            return False
        if self.api_groups is not None and not ({"*", attrs.group} & self.api_groups):
            return False
        if self.namespaces is not None and attrs.namespace not in self.namespaces:
            return False
        return self.names is None or attrs.name in self.names


@dataclass(frozen=True)
class User:
    """An authenticated user; ``rules`` None means cluster-admin."""

    name: str
    rules: tuple[Rule, ...] | None


@dataclass(frozen=True)
class Attributes:
    """What a resource request asks for, as Kubernetes' authorizer sees it."""

    verb: str
    resource: str
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def _string_set(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise AuthConfigError(f"{where} must be a list of strings, got {value!r}")
    return frozenset(value)


def _parse_rule(raw: object, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise AuthConfigError(f"{where} must be a mapping with verbs and resources, got {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise AuthConfigError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}"
        )
    for required in ("verbs", "resources"):
        if required not in raw:
            raise AuthConfigError(f"{where} needs {required!r}")
    optional = {
        key: _string_set(raw[key], f"{where}.{key}") if raw.get(key) is not None else None
        for key in ("namespaces", "apiGroups", "resourceNames")
    }
    return Rule(
        verbs=_string_set(raw["verbs"], f"{where}.verbs"),
        resources=_string_set(raw["resources"], f"{where}.resources"),
        namespaces=optional["namespaces"],
        api_groups=optional["apiGroups"],
        names=optional["resourceNames"],
    )


class Auth:
    """Token table: ``{token: {"user": name, "rules": None | [rule, ...]}}``."""

    def __init__(self, tokens: dict[str, dict[str, Any]]) -> None:
        if not isinstance(tokens, dict) or not tokens:
            raise AuthConfigError("Auth needs a non-empty mapping of token -> {user, rules}")
        self._users: dict[str, User] = {}
        for token, spec in tokens.items():
            if not isinstance(token, str) or not token:
                raise AuthConfigError("tokens must be non-empty strings")
            where = f"token {token[:4]}…"
            if not isinstance(spec, dict) or not isinstance(spec.get("user"), str):
                raise AuthConfigError(f"{where}: give a mapping with a 'user' name and 'rules'")
            rules = spec.get("rules")
            if rules is not None:
                if not isinstance(rules, list):
                    raise AuthConfigError(f"{where}: rules must be a list or None (cluster-admin)")
                rules = tuple(_parse_rule(r, f"{where} rules[{i}]") for i, r in enumerate(rules))
            self._users[token] = User(spec["user"], rules)

    def authenticate(self, authorization: str | None) -> User | None:
        """The user of an ``Authorization: Bearer …`` header, or None (answer 401)."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._users.get(token.strip())

    def user_named(self, name: str) -> User:
        """The user of that name in the token table; an unknown name has no grants at all."""
        for user in self._users.values():
            if user.name == name:
                return user
        return User(name, ())

    @staticmethod
    def authorize(user: User, attrs: Attributes) -> bool:
        """Whether ``user`` may do what ``attrs`` describe."""
        if user.rules is None:
            return True
        return any(rule.allows(attrs) for rule in user.rules)


def forbidden_message(user: User, attrs: Attributes) -> str:
    """The 403 message, word for word as Kubernetes writes it."""
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    if attrs.namespace:
        scope = f'in the namespace "{attrs.namespace}"'
    else:
        scope = "at the cluster scope"
    reason = (
        f'User "{user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {scope}'
    )
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    if attrs.name:
        return f'{qualified} "{attrs.name}" is forbidden: {reason}'
    return f"{qualified} is forbidden: {reason}"
