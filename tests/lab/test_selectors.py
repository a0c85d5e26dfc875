"""Label/field selectors, the object store and RBAC rules of the lab API server (pure)."""

from __future__ import annotations

import pytest

from badlab.rbac import Attributes, Auth, AuthConfigError, forbidden_message
from badlab.label_selectors import SelectorError, parse_field_selector, parse_label_selector
from badlab.store import Store, StoreError

LABELS = {
    "none": {},
    "web": {"app": "web", "tier": "frontend"},
    "canary": {"app": "web", "tier": "frontend", "track": "canary"},
    "db": {"app": "db", "tier": "backend", "replicas": "3"},
}


def selected(selector: str) -> set[str]:
    parsed = parse_label_selector(selector)
    return {name for name, labels in LABELS.items() if parsed.matches(labels)}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", {"none", "web", "canary", "db"}),
        ("app=web", {"web", "canary"}),
        ("app==web", {"web", "canary"}),
        ("app!=web", {"none", "db"}),  # != also selects objects without the key
        ("app in (web, db)", {"web", "canary", "db"}),
        ("tier notin (backend)", {"none", "web", "canary"}),
        ("track", {"canary"}),
        ("!track", {"none", "web", "db"}),
        ("app=web,!track", {"web"}),
        ("app in (web,db), tier!=frontend", {"db"}),
        ("replicas>2", {"db"}),
        ("replicas<3", set()),
        ("example.com/role", set()),
        ("app=", set()),
    ],
)
def test_label_selector_semantics(selector: str, expected: set[str]) -> None:
    assert selected(selector) == expected


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ("app in web", "found 'web', expected: '('"),
        ("app in (web", "expected: ',' or ')'"),
        ("app=web,", "identifier after ','"),
        ("=web", "found '=', expected: identifier"),
        ("app web", "found 'web'"),
        ("-bad-=x", "invalid label key '-bad-'"),
        ("app=no spaces", "found 'spaces'"),
        ("app=" + "x" * 64, "invalid label value"),
        ("replicas>three", "an integer value"),
        ("app in ()", "values set can't be empty"),
    ],
)
def test_label_selector_errors_name_the_problem(selector: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(selector)
    assert fragment in str(err.value)
    assert "unable to parse requirement" in str(err.value)


POD = {
    "metadata": {"name": "web-0", "namespace": "shop"},
    "spec": {"nodeName": "n1", "hostNetwork": False},
    "status": {"phase": "Running", "podIP": "10.0.0.1"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=web-0", True),
        ("metadata.name==web-0", True),
        ("metadata.name!=web-0", False),
        ("metadata.name=web-1", False),
        ("metadata.namespace=shop,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.hostNetwork=false", True),
        ("status.podIP=10.0.0.1", True),
        ("spec.nodeName=", False),
    ],
)
def test_field_selector_on_pods(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector, "pods").matches(POD) is matches


def test_field_selector_escapes_and_errors() -> None:
    obj = {"metadata": {"name": "a,b=c", "namespace": "x"}}
    assert parse_field_selector(r"metadata.name=a\,b\=c", "services").matches(obj)
    with pytest.raises(SelectorError, match="field label not supported: status.phase"):
        parse_field_selector("status.phase=Running", "services")
    with pytest.raises(SelectorError, match="can't understand 'metadata.name'"):
        parse_field_selector("metadata.name", "pods")
    event = {
        "metadata": {"name": "e", "namespace": "x"},
        "involvedObject": {"name": "web-1"},
        "type": "Warning",
    }
    assert parse_field_selector("involvedObject.name=web-1,type=Warning", "events").matches(event)


def test_store_defaults_versions_and_copies() -> None:
    store = Store()
    first = store.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert first["metadata"]["namespace"] == "default"
    assert first["metadata"]["uid"] and first["metadata"]["creationTimestamp"].endswith("Z")
    # the namespace was created with the pod, as a real cluster would need
    assert [ns["metadata"]["name"] for ns in store.list("namespaces")] == ["default"]
    second = store.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "status": {"phase": "Running"},
        }
    )
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    fetched = store.get("pods", "default", "p")
    fetched["status"]["phase"] = "Failed"
    assert store.get("pods", "default", "p")["status"]["phase"] == "Running"
    before = store.resource_version
    assert store.delete("pods", "default", "p")["metadata"]["name"] == "p"
    assert store.get("pods", "default", "p") is None
    assert store.delete("pods", "default", "p") is None
    assert int(store.resource_version) > int(before)


def test_store_lists_sorted_per_namespace() -> None:
    store = Store()
    for ns, name in [("b", "z"), ("a", "y"), ("b", "a")]:
        store.put(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}}
        )
    everything = [
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list("services")
    ]
    assert everything == [("a", "y"), ("b", "a"), ("b", "z")]
    assert [o["metadata"]["name"] for o in store.list("services", "b")] == ["a", "z"]
    picked = store.list("services", None, lambda o: o["metadata"]["name"] != "a")
    assert [o["metadata"]["name"] for o in picked] == ["y", "z"]


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}, "not served"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "no metadata.name"),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": 3}},
            "metadata.namespace",
        ),
        (["not", "a", "mapping"], "must be a mapping"),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c"}]},
                "status": {
                    "containerStatuses": [
                        {"name": "c", "ready": True, "restartCount": 0, "image": "i"}
                    ]
                },
            },
            r"status\.containerStatuses\[0\]\.imageID is missing; the kubernetes Python client rejects a Pod",
        ),
        (
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "s"},
                "addressType": "IPv4",
                "endpoints": [{"conditions": {"ready": True}}],
            },
            r"endpoints\[0\]\.addresses is missing",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"ports": [{"name": "http"}]},
            },
            r"spec\.ports\[0\]\.port is missing",
        ),
    ],
)
def test_store_rejects_bad_manifests(manifest: object, fragment: str) -> None:
    store = Store()
    with pytest.raises(StoreError, match=fragment):
        store.put(manifest)
    assert store.list("namespaces") == []  # a refused object leaves nothing behind


def test_rbac_rules_and_forbidden_wording() -> None:
    auth = Auth(
        {
            "t": {
                "user": "u",
                "rules": [
                    {"verbs": ["get", "list"], "resources": ["pods"], "namespaces": ["shop"]},
                    {"verbs": ["create"], "resources": ["pods/exec"], "namespaces": ["shop"]},
                    {
                        "verbs": ["list"],
                        "resources": ["endpointslices"],
                        "apiGroups": ["discovery.k8s.io"],
                    },
                ],
            }
        }
    )
    user = auth.authenticate("Bearer t")
    assert user is not None and user.name == "u"
    assert auth.authenticate("Bearer nope") is None
    assert auth.authenticate("Basic dTpw") is None
    assert auth.authenticate(None) is None
    assert auth.authorize(user, Attributes("list", "pods", namespace="shop"))
    assert not auth.authorize(user, Attributes("list", "pods"))  # cluster scope
    assert not auth.authorize(
        user, Attributes("get", "pods", namespace="shop", name="p", subresource="log")
    )
    # a rule grants its verbs only: "create" on pods/exec is not "get" (a WebSocket exec needs
    # both; the API server asks for each, test_apiserver.py)
    assert not auth.authorize(
        user, Attributes("get", "pods", namespace="shop", name="p", subresource="exec")
    )
    assert auth.authorize(
        user, Attributes("create", "pods", namespace="shop", name="p", subresource="exec")
    )
    assert auth.authorize(user, Attributes("list", "endpointslices", "discovery.k8s.io", "any"))
    assert not auth.authorize(user, Attributes("list", "endpointslices", "", "any"))
    log = Attributes("get", "pods", namespace="ns", name="x", subresource="log")
    assert forbidden_message(user, log) == (
        'pods "x" is forbidden: User "u" cannot get resource "pods/log" in API group "" in the namespace "ns"'
    )
    assert forbidden_message(user, Attributes("list", "pods")) == (
        'pods is forbidden: User "u" cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert forbidden_message(
        user, Attributes("list", "endpointslices", "discovery.k8s.io", "ns")
    ) == (
        'endpointslices.discovery.k8s.io is forbidden: User "u" cannot list resource "endpointslices" '
        'in API group "discovery.k8s.io" in the namespace "ns"'
    )


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({}, "non-empty mapping"),
        ({"t": {"rules": None}}, "'user' name"),
        ({"t": {"user": "u", "rules": {"verbs": ["get"]}}}, "rules must be a list"),
        ({"t": {"user": "u", "rules": [{"verbs": ["get"]}]}}, "needs 'resources'"),
        (
            {"t": {"user": "u", "rules": [{"verbs": "get", "resources": ["pods"]}]}},
            "verbs must be a list",
        ),
        (
            {
                "t": {
                    "user": "u",
                    "rules": [{"verbs": ["get"], "resources": ["pods"], "namespace": ["x"]}],
                }
            },
            "unknown keys ['namespace']",
        ),
    ],
)
def test_auth_table_errors(table: dict, fragment: str) -> None:
    with pytest.raises(AuthConfigError) as err:
        Auth(table)
    assert fragment in str(err.value)
