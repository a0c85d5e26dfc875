"""Label and field selectors, with Kubernetes' syntax and matching rules.

Label selectors (``labelSelector=``): requirements joined by ``,``, each one of
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``, ``key>n``, ``key<n``. As in Kubernetes, ``!=`` and ``notin`` also
match objects that lack the key; ``in`` and ``=`` require it.

Field selectors (``fieldSelector=``): terms joined by ``,``, each ``field=value``,
``field==value`` or ``field!=value`` (``\\``, ``\\,`` and ``\\=`` escape). Every resource
supports ``metadata.name`` and ``metadata.namespace``; pods, events and namespaces support
a few more fields, as the real API server does. Anything else is a ``SelectorError`` whose
message is what the API server sends back in a 400 BadRequest Status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from badlab.errors import LabError
from badlab.store import Manifest


class SelectorError(LabError):
    """A selector cannot be parsed or names an unsupported field."""


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$"
)
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_SPECIAL = "!=(),<>"
_OPERATORS = ("!=", "==", "=", "(", ")", ",", "!", "<", ">")


def _tokenize(text: str) -> list[str]:
    """Split a label selector into identifiers and operators (whitespace separates)."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(op)
            i += len(op)
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
            i += 1
        tokens.append(text[start:i])
    return tokens


def _is_identifier(token: str | None) -> TypeGuard[str]:
    """Whether ``token`` is a key or value (not an operator, not the end of the input)."""
    return token is not None and token not in _OPERATORS


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``op`` is exists, !exists, =, !=, in, notin, gt or lt."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a label map satisfies this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if value is None:  # the key is absent
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        limit = int(self.values[0])
        return number > limit if self.op == "gt" else number < limit


@dataclass(frozen=True)
class LabelSelector:
    """Parsed label selector; an empty one matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        """Whether every requirement holds for ``labels``."""
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, found: str | None, expected: str) -> SelectorError:
        shown = "" if found is None else found
        return SelectorError(
            f"unable to parse requirement: found '{shown}', expected: {expected} "
            f"(in label selector {self.text!r})"
        )

    def key(self) -> str:
        token = self.take()
        if not _is_identifier(token):
            raise self.fail(token, "identifier")
        if not _KEY_RE.match(token) or len(token.rsplit("/", 1)[-1]) > 63:
            raise SelectorError(
                f"unable to parse requirement: invalid label key {token!r}: a qualified name must "
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                f"an alphanumeric character, optionally prefixed by a DNS subdomain and '/' "
                f"(in label selector {self.text!r})"
            )
        return token

    def value(self) -> str:
        token = self.peek()
        if not _is_identifier(token):
            return ""  # `key=` selects the empty value, as in Kubernetes
        self.pos += 1
        if not _VALUE_RE.match(token):
            raise SelectorError(
                f"unable to parse requirement: invalid label value {token!r}: must be 63 characters "
                "or less and consist of alphanumeric characters, '-', '_' or '.', starting and ending "
                f"with an alphanumeric character (in label selector {self.text!r})"
            )
        return token

    def value_set(self) -> tuple[str, ...]:
        token = self.take()
        if token != "(":
            raise self.fail(token, "'('")
        if self.peek() == ")":
            raise SelectorError(
                "unable to parse requirement: for 'in', 'notin' operators, values set "
                f"can't be empty (in label selector {self.text!r})"
            )
        values = [self.value()]
        while self.peek() == ",":
            self.pos += 1
            values.append(self.value())
        token = self.take()
        if token != ")":
            raise self.fail(token, "',' or ')'")
        return tuple(values)

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.pos += 1
            return Requirement(self.key(), "!exists")
        key = self.key()
        token = self.peek()
        if token is None or token == ",":
            return Requirement(key, "exists")
        self.pos += 1
        if token in ("=", "=="):
            return Requirement(key, "=", (self.value(),))
        if token == "!=":
            return Requirement(key, "!=", (self.value(),))
        if token in ("in", "notin"):
            return Requirement(key, token, self.value_set())
        if token in ("<", ">"):
            number = self.take()
            if number is None or not re.fullmatch(r"-?[0-9]+", number):
                raise self.fail(number, "an integer value for '<' or '>'")
            return Requirement(key, "gt" if token == ">" else "lt", (number,))
        raise self.fail(token, "'=', '!=', '==', 'in', 'notin', '<', '>' or ','")

    def parse(self) -> LabelSelector:
        requirements = []
        if not self.tokens:
            return LabelSelector()
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                return LabelSelector(tuple(requirements))
            if token != ",":
                raise self.fail(token, "',' or end of string")
            if self.peek() is None:
                raise self.fail(None, "identifier after ','")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query value; raises SelectorError naming the fault."""
    return _LabelParser(text or "").parse()


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("status.phase",),
}


def supported_fields(resource: str) -> tuple[str, ...]:
    """Field selector labels the real API server accepts for ``resource`` (plural)."""
    return _COMMON_FIELDS + _EXTRA_FIELDS.get(resource, ())


def _field_value(obj: Manifest, field: str) -> str:
    if field == "source":
        return str((obj.get("source") or {}).get("component") or "")
    node: object = obj
    for part in field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


@dataclass(frozen=True)
class FieldTerm:
    """One field requirement: ``op`` is ``=`` or ``!=``."""

    field: str
    op: str
    value: str


@dataclass(frozen=True)
class FieldSelector:
    """Parsed field selector; an empty one matches everything."""

    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Manifest) -> bool:
        """Whether every term holds for the object."""
        for term in self.terms:
            equal = _field_value(obj, term.field) == term.value
            if equal != (term.op == "="):
                return False
        return True


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if text[i] == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(
                    f"invalid field selector value {value!r}: unescaped or bad escape '\\'"
                )
            out.append(value[i + 1])
            i += 2
            continue
        if value[i] in ",=":
            raise SelectorError(f"invalid field selector value {value!r}: unescaped {value[i]!r}")
        out.append(value[i])
        i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], "!=" if op == "!=" else "=", term[i + len(op) :]
        i += 1
    return None


def parse_field_selector(text: str | None, resource: str) -> FieldSelector:
    """Parse a ``fieldSelector`` for ``resource``; raises SelectorError naming the fault."""
    if not text:
        return FieldSelector()
    terms = []
    allowed = supported_fields(resource)
    for raw in _split_unescaped(text, ","):
        split = _split_term(raw)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = split
        field = field.strip()
        if field not in allowed:
            raise SelectorError(
                f"field label not supported: {field} (for {resource}, use one of: {', '.join(allowed)})"
            )
        terms.append(FieldTerm(field, op, _unescape(value)))
    return FieldSelector(tuple(terms))
