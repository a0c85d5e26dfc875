# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cause registry (plugins/module_utils/causes.py) is the one list of causes: the JSON
Schema's enum, the table of docs/result-schema.md and the verdict's rules follow it."""

import json
import pathlib

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import causes, verdict
from ansible_collections.badgateway.k8s.plugins.module_utils.causes import (
    BY_ID,
    CAUSES,
    PRECEDENCE,
    RECOMMENDATIONS,
    REGISTRY,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOT_A_PROBLEM = ("healthy", "unknown")


def docs_cause_table():
    """The table under '## Cause IDs' in docs/result-schema.md, up to the next heading."""
    text = (ROOT / "docs" / "result-schema.md").read_text()
    section = text.split("\n## Cause IDs\n", 1)[1].split("\n#", 1)[0]
    return "\n".join(line for line in section.strip().splitlines() if line.startswith("|"))


def test_the_schema_enum_is_the_registry():
    schema = json.loads((ROOT / "docs" / "result.schema.json").read_text())
    assert schema["properties"]["verdict"]["properties"]["cause"]["enum"] == list(CAUSES)


def test_the_docs_table_is_the_registry():
    assert docs_cause_table() == causes.markdown_table(), (
        "docs/result-schema.md's cause table differs from the registry; replace it with:\n"
        + causes.markdown_table()
    )


def test_the_table_has_one_row_per_cause_with_its_doc_line():
    rows = docs_cause_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(CAUSES)
    for row, cause in zip(rows, REGISTRY):
        assert "| %s |" % cause.doc in row


@pytest.mark.parametrize("cause", REGISTRY, ids=lambda c: c.id)
def test_every_record_is_complete(cause):
    assert cause.id == cause.id.strip() and cause.id.replace("_", "").isalnum()
    for text in (cause.doc, cause.fix, cause.remedy):
        assert text and "\n" not in text and "|" not in text
    assert cause.prevention or cause.id == "unknown"
    assert (cause.reload_fixes is None) == (cause.id in NOT_A_PROBLEM)
    assert RECOMMENDATIONS[cause.id] == {"fix": cause.fix, "prevention": cause.prevention}


def test_every_problem_cause_has_one_rule_and_the_verdicts_own_have_none():
    for cause in REGISTRY:
        if cause.id in NOT_A_PROBLEM:
            assert cause.rule is None, cause.id
        else:
            assert callable(cause.rule) and cause.rule.__module__ == verdict.__name__, cause.id


def test_a_second_rule_for_a_cause_is_refused():
    with pytest.raises(ValueError, match="already has a rule"):
        causes.rule("backend_502")(lambda facts: [])
    assert BY_ID["backend_502"].rule.__name__ == "_backend_502"


def test_only_a_cause_a_reload_fixes_can_make_a_reload_safe():
    """docs/result-schema.md: reload_safe is true only for stale_upstream."""
    assert [c.id for c in REGISTRY if c.reload_fixes] == ["stale_upstream"]


def test_precedence_is_acyclic_and_closed_so_its_order_does_not_matter():
    """The verdict drops each pair's loser in turn; with a closed, acyclic relation the result
    does not depend on the order of the pairs (a beats b beats c implies a beats c)."""
    pairs = set(PRECEDENCE)
    assert all(winner != loser and (loser, winner) not in pairs for winner, loser in pairs)
    for winner, middle in pairs:
        for other, loser in pairs:
            if other == middle:
                assert (winner, loser) in pairs, (winner, middle, loser)
    assert not {w for w, _l in pairs} & set(NOT_A_PROBLEM)
    assert not {lo for _w, lo in pairs} & set(NOT_A_PROBLEM)


def test_separates_falls_back_to_more_evidence():
    assert causes.separates("no_endpoints") == "more evidence"
    assert causes.separates("stale_upstream").startswith("whether the stale replicas")
    assert causes.separates("no_such_cause") == "more evidence"


def test_the_verdict_exports_the_registry():
    assert verdict.CAUSES == CAUSES and verdict.RECOMMENDATIONS is RECOMMENDATIONS
