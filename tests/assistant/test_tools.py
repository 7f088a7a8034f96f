"""The model's tools as members would see their answers: each filter, the question "which
production instances lack an Owner tag?" in one call, the bounds of each role and
organization, and readable errors for bad calls."""

import json

import pytest
from django.urls import reverse

from assistant.backends.base import ToolCall
from assistant.tools import MAX_ROWS, TOOLS, execute
from inventory.models import Edge
from policies.models import Control
from tagsense.tenancy.db import tenant_scope
from tests.assistant.conftest import B, membership_of

pytestmark = pytest.mark.django_db

PROD_WITHOUT_OWNER = {
    "resource_type": "ec2:instance",
    "tag": "Environment=prod",
    "missing_tag": "Owner",
}


def run(organization, user, name, **arguments):
    membership = membership_of(organization, user)
    with tenant_scope(organization, membership=membership):
        return execute(membership, ToolCall(id="call-1", name=name, arguments=arguments))


def names(result, rows="resources"):
    assert result.error is None, result.error
    return {row["name"] for row in json.loads(result.content)[rows]}


def url_of(resource):
    return reverse(
        "resource-detail", kwargs={"org_slug": resource.organization.slug, "pk": resource.pk}
    )


def test_production_instances_without_an_owner_in_one_call(org, estate, admin):
    result = run(org, admin, "query_inventory", **PROD_WITHOUT_OWNER)

    # pay-worker's key is spelt `environment`; pay-web has `owner`, a spelling of Owner.
    assert names(result) == {"pay-api", "pay-worker", "plat-api"}
    assert json.loads(result.content)["total"] == 3
    r = estate["resources"]
    assert {c.url for c in result.citations} == {
        url_of(r["pay-api"]),
        url_of(r["pay-worker"]),
        url_of(r["plat-api"]),
    }
    assert {c.label for c in result.citations} == {"pay-api", "pay-worker", "plat-api"}


def test_each_member_gets_only_the_resources_they_may_see(
    org, other_org, estate, viewer, editor, outsider
):
    assert names(run(org, viewer, "query_inventory", **PROD_WITHOUT_OWNER)) == {
        "pay-api",
        "pay-worker",
    }
    assert names(run(org, editor, "query_inventory", **PROD_WITHOUT_OWNER)) == {"plat-api"}
    assert names(run(other_org, outsider, "query_inventory", **PROD_WITHOUT_OWNER)) == {"glob-api"}
    # Naming another team's account finds nothing rather than its resources.
    assert names(run(org, viewer, "query_inventory", account_id=B)) == set()


def test_exact_key_case_takes_the_spelling_as_given(org, estate, viewer):
    result = run(org, viewer, "query_inventory", key_case="exact", **PROD_WITHOUT_OWNER)

    assert names(result) == {"pay-api", "pay-web"}


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"untagged": True}, {"pay-logs", "plat-vol"}),
        ({"text": "CACHE"}, {"plat-cache"}),
        ({"account_id": B}, {"plat-api", "plat-cache", "plat-vol"}),
        ({"region": "us-east-1"}, set()),
        ({"has_tag": "costcenter"}, {"pay-worker"}),
        ({"resource_type": "rds:db", "tag": "environment=PROD"}, {"pay-db"}),
        ({"resource_type": "ec2:*", "missing_tag": "Environment"}, {"plat-vol"}),
        ({"resource_type": "s3:bucket"}, {"pay-logs"}),
    ],
)
def test_inventory_filters(org, estate, admin, arguments, expected):
    assert names(run(org, admin, "query_inventory", **arguments)) == expected


def test_the_limit_bounds_the_rows_not_the_total(org, estate, admin):
    found = json.loads(run(org, admin, "query_inventory", limit=2, **PROD_WITHOUT_OWNER).content)

    assert found["total"] == 3 and len(found["resources"]) == 2


def test_secret_tag_values_never_reach_the_model(org, estate, admin):
    result = run(org, admin, "query_inventory", text="plat-cache")

    [row] = json.loads(result.content)["resources"]
    assert row["tags"]["db_password"] == "[redacted]"
    assert row["tags"]["Owner"] == "cy"
    assert "hunter2" not in result.content


def test_findings_of_a_rule_as_a_viewer(org, estate, viewer):
    result = run(org, viewer, "list_findings", rule_id="owner-required")

    found = json.loads(result.content)
    assert found["total"] == 6
    fixes = {row["resource"]["name"]: row["fix"] for row in found["findings"]}
    assert fixes == {
        "pay-api": "add tag Owner",
        "pay-worker": "add tag Owner",
        "pay-web": "rename tag owner to Owner",
        "pay-batch": "add tag Owner",
        "pay-db": "add tag Owner",
        "pay-logs": "add tag Owner",
    }
    urls = {c.url for c in result.citations}
    assert "/o/acme/policies/rules/owner-required/" in urls
    assert "/o/acme/findings/?rule=owner-required&status=open" in urls
    assert url_of(estate["resources"]["pay-web"]) in urls


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"severity": "high", "resource_type": "s3:bucket"}, {"pay-logs"}),
        ({"key": "environment"}, {"pay-worker"}),
        ({"account_id": B}, {"plat-api", "plat-vol"}),
        ({"status": "resolved"}, set()),
        ({"rule_id": "env-values"}, {"pay-worker"}),
    ],
)
def test_finding_filters(org, estate, admin, arguments, expected):
    found = json.loads(run(org, admin, "list_findings", **arguments).content)

    assert {row["resource"]["name"] for row in found["findings"]} == expected


def test_findings_never_cross_teams_or_organizations(org, other_org, estate, editor, outsider):
    found = json.loads(run(org, editor, "list_findings").content)
    assert {row["resource"]["name"] for row in found["findings"]} == {"plat-api", "plat-vol"}

    found = json.loads(run(other_org, outsider, "list_findings").content)
    assert {row["resource"]["name"] for row in found["findings"]} == {"glob-api"}


@pytest.fixture
def edges(org, estate):
    """pay-api and plat-cache both use pay-db."""
    r = estate["resources"]
    with tenant_scope(org):
        for source in ("pay-api", "plat-cache"):
            Edge.objects.create(
                organization=org, source_arn=r[source].arn, kind="uses", target_arn=r["pay-db"].arn
            )
    return r


def test_blast_radius_shows_only_what_the_member_may_see(org, edges, admin, viewer):
    arn = edges["pay-db"].arn

    assert names(run(org, admin, "blast_radius", arn=arn), "affected") == {
        "pay-api",
        "plat-cache",
    }
    viewer_result = run(org, viewer, "blast_radius", arn=arn)
    assert names(viewer_result, "affected") == {"pay-api"}
    assert "plat-cache" not in viewer_result.content
    assert names(
        run(org, admin, "blast_radius", arn=arn, direction="dependencies"), "affected"
    ) == (set())


def test_another_teams_resource_is_answered_like_a_missing_one(
    org, other_org, edges, viewer, outsider
):
    hidden = run(org, viewer, "blast_radius", arn=edges["plat-cache"].arn)
    missing = run(org, viewer, "blast_radius", arn=edges["plat-cache"].arn + "-nope")

    assert hidden.error and missing.error
    assert hidden.error.replace("plat-cache", "X") == missing.error.replace("plat-cache-nope", "X")
    assert run(org, viewer, "tag_history", arn=edges["plat-cache"].arn).error
    assert run(other_org, outsider, "tag_history", arn=edges["pay-api"].arn).error


def test_tag_history_newest_first_ending_with_discovery(org, estate, viewer, admin):
    found = json.loads(
        run(org, viewer, "tag_history", arn=estate["resources"]["pay-api"].arn).content
    )
    assert [e["kind"] for e in found["events"]] == ["changed", "discovered"]
    assert found["events"][0]["changes"][0] == {
        "key": "Owner",
        "kind": "removed",
        "old": "ana",
        "new": None,
    }
    assert found["events"][1]["tags"] == {"Environment": "prod", "Owner": "ana"}

    secret = run(org, admin, "tag_history", arn=estate["resources"]["plat-cache"].arn)
    assert "hunter2" not in secret.content and "[redacted]" in secret.content


def test_compliance_scores_by_scope(org, estate, admin, viewer):
    found = json.loads(run(org, admin, "compliance_score").content)
    assert found["organization"]["percent"] == pytest.approx(11.1)
    assert [f["framework"] for f in found["frameworks"]] == ["baseline"]

    found = json.loads(run(org, admin, "compliance_score", framework="baseline").content)
    assert {c["control"]: c["status"] for c in found["controls"]} == {
        "BL-1": "fail",
        "BL-2": "fail",
    }

    result = run(org, viewer, "compliance_score", framework="baseline", control="BL-1")
    found = json.loads(result.content)
    assert found["status"] == "fail" and found["in_scope"] == 6
    assert {f["resource"] for f in found["failing_findings"]} == {
        "pay-api",
        "pay-worker",
        "pay-web",
        "pay-batch",
        "pay-db",
        "pay-logs",
    }
    with tenant_scope(org):
        control = Control.objects.get(control_id="BL-1")
    assert result.citations[0].url == f"/o/acme/policies/frameworks/baseline/#control-{control.pk}"
    assert url_of(estate["resources"]["pay-logs"]) in {c.url for c in result.citations}


@pytest.mark.parametrize(
    "name, arguments, says",
    [
        ("delete_everything", {}, "unknown tool"),
        ("query_inventory", {"_invalid": "{not json"}, "not a JSON object"),
        ("query_inventory", {"colour": "red"}, "unknown argument(s) colour"),
        ("query_inventory", {"limit": "ten"}, "limit must be an integer"),
        ("query_inventory", {"limit": MAX_ROWS + 1}, f"at most {MAX_ROWS}"),
        ("query_inventory", {"limit": True}, "limit must be an integer"),
        ("query_inventory", {"account_id": "12345"}, "12-digit"),
        ("query_inventory", {"tag": "Environment"}, "Key=value"),
        ("list_findings", {"status": "closed"}, "one of open, resolved, exempted"),
        ("list_findings", {"rule_id": "no-such-rule"}, "no rule"),
        ("blast_radius", {}, "arn is required"),
        ("blast_radius", {"arn": "arn:aws:ec2:x", "depth": 9}, "at most 6"),
        ("compliance_score", {"framework": "sox"}, "frameworks: baseline"),
        ("compliance_score", {"control": "BL-1"}, "needs framework"),
        ("compliance_score", {"framework": "baseline", "control": "X"}, "controls: BL-1, BL-2"),
    ],
)
def test_bad_calls_come_back_as_readable_errors(org, estate, admin, name, arguments, says):
    result = run(org, admin, name, **arguments)

    assert result.error and says in result.error
    assert json.loads(result.content) == {"error": result.error}
    assert result.citations == []


def test_every_tool_is_declared_with_a_closed_schema():
    assert [t.name for t in TOOLS] == [
        "query_inventory",
        "list_findings",
        "blast_radius",
        "tag_history",
        "compliance_score",
    ]
    assert all(t.parameters["additionalProperties"] is False for t in TOOLS)
