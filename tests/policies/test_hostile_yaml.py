"""Hostile YAML is a 400, never a 500 or a hung request: CloudFormation templates at the CI
check, rule files at the policies import and preview, by page and by API (policies/yaml_limits.py).
Each test has an organization of its own; the routes' bad input is tests/test_bad_input.py's.
"""

from __future__ import annotations

import pytest

from policies.models import Rule
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.test_bad_input import _assert_problem

pytestmark = pytest.mark.django_db


def _alias_bomb(levels: int) -> str:
    """A CloudFormation template whose one tag value is 2**levels strings by aliases."""
    lines = ['x0: &x0 ["lol", "lol"]']
    lines += [f"x{i}: &x{i} [*x{i - 1}, *x{i - 1}]" for i in range(1, levels)]
    lines += [
        "Resources:",
        "  Bucket:",
        "    Type: AWS::S3::Bucket",
        "    Properties:",
        f"      Tags: [{{Key: Owner, Value: *x{levels - 1}}}]",
    ]
    return "\n".join(lines) + "\n"


def _template(value: str) -> str:
    return (
        "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        f"      Tags: [{{Key: Owner, Value: {value}}}]\n"
    )


# Every kind of YAML the limits refuse (policies/yaml_limits.py), as a CloudFormation template.
HOSTILE_YAML = {
    "aliases": _alias_bomb(12),
    "an integer of 5,000 digits": _template("1" * 5000),
    "a base-60 integer of 60,000 parts": _template("1" + ":1" * 60_000),
    "nested 100 deep": _template("[" * 100 + "x" + "]" * 100),
    "a thirteenth month": _template("2024-13-45"),
}


@pytest.mark.parametrize("kind", HOSTILE_YAML)
def test_hostile_cloudformation_templates_are_a_400(kind, org, viewer):
    """Before: the aliases multiplied the work and the report (83 KB -> 5.6 s and 12.6 MB), the
    integers raised ValueError (a 500) or took quadratic time."""
    client = client_for(viewer)
    response = client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source=cloudformation",
        HOSTILE_YAML[kind],
        content_type="application/yaml",
    )
    _assert_problem(response, 400, kind)
    assert response.json()["errors"][0]["path"].startswith("line "), response.json()


@pytest.mark.parametrize("kind", HOSTILE_YAML)
def test_hostile_rule_files_are_refused_by_page_and_api(kind, org, owner):
    """The same documents as policy-as-code (policies/engine/spec.py): 400 by API, the form's error
    on the page; never a 500."""
    rules = (
        "version: 1\nrules:\n  - id: x\n    title: "
        + {
            "aliases": "&a t\n    check: *a\n",
            "an integer of 5,000 digits": "t\n    check: required_key\n    key: " + "1" * 5000,
            "a base-60 integer of 60,000 parts": "t\n    check: required_key\n    key: 1"
            + ":1" * 60_000,
            "nested 100 deep": "t\n    check: " + "[" * 100 + "]" * 100,
            "a thirteenth month": "t\n    check: required_key\n    key: 2024-13-45",
        }[kind]
    )
    client = client_for(owner)
    for path in ("import/", "preview/"):
        response = client.post(
            f"/api/v1/o/{org.slug}/policies/{path}",
            {"yaml": rules, "mode": "merge"},
            content_type="application/json",
        )
        _assert_problem(response, 400, path)
    for path in ("import/", "preview/"):
        page = client.post(f"/o/{org.slug}/policies/{path}", {"yaml": rules, "mode": "merge"})
        assert page.status_code in (200, 400), (path, page.status_code)  # the form, its errors

    with tenant_scope(org):
        assert not Rule.objects.exists()
