"""What a user sees of the inventory: filters (page, CSV and API alike), the resource page with
its timeline, graph JSON, and bad input answered with a clear error."""

import csv
import io

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from django.utils import timezone

from inventory import aws, services
from inventory.models import Edge, Resource, ScanRun, TagEvent
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory

from .conftest import HOME, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(org, viewer, team, aws_env):
    """Five resources in one account, held by the viewer's team (viewers see their teams')."""
    account = make_account(org, HOME, role=False, regions=["eu-west-1"])
    TeamMembershipFactory(organization=org, team=team, user=viewer)
    with tenant_scope(org):
        services.grant_account(account, team)
    now = timezone.now()
    rows = [
        ("web-1", "ec2:instance", {"Owner": "alice", "Environment": "prod"}, None),
        ("web-2", "ec2:instance", {"owner": "bob"}, None),
        ("bare", "ec2:instance", {}, None),
        ("logs", "s3:bucket", {"Environment": "dev"}, None),
        ("gone", "ec2:instance", {"Owner": "carol"}, now),
    ]
    made = {}
    with tenant_scope(org):
        for name, rtype, tags, deleted in rows:
            made[name] = Resource.objects.create(
                organization=org,
                account=account,
                arn=f"arn:aws:x:eu-west-1:{HOME}:{name}",
                region="eu-west-1",
                resource_type=rtype,
                resource_id=name,
                name=name,
                tags=tags,
                fingerprint="x",
                first_seen=now,
                last_written=now,
                deleted_at=deleted,
            )
        Edge.objects.create(
            organization=org,
            source_arn=made["web-1"].arn,
            kind="in_vpc",
            target_arn="arn:aws:ec2:eu-west-1:1:vpc/vpc-1",
        )
        TagEvent.objects.create(
            organization=org,
            resource=made["web-1"],
            seen_at=now,
            kind="changed",
            changes=[{"key": "Environment", "old": "dev", "new": "prod", "kind": "changed"}],
            tags=made["web-1"].tags,
        )
    return made


FILTERS = [
    ({}, {"web-1", "web-2", "bare", "logs"}),
    ({"missing_key": "Owner"}, {"web-2", "bare", "logs"}),
    ({"has_key": "Environment"}, {"web-1", "logs"}),
    ({"tag": "Environment=prod"}, {"web-1"}),
    ({"untagged": "on"}, {"bare"}),
    ({"deleted": "only"}, {"gone"}),
    ({"type": "s3:bucket"}, {"logs"}),
    ({"q": "web"}, {"web-1", "web-2"}),
    ({"account": HOME, "region": "eu-west-1", "type": "ec2:instance"}, {"web-1", "web-2", "bare"}),
]


@pytest.mark.parametrize("params, expected", FILTERS)
def test_filters_agree_on_page_csv_and_api(org, viewer, estate, params, expected):
    client = client_for(viewer)
    page = client.get(f"/o/{org.slug}/inventory/", params).content.decode()
    shown = {name for name in ("web-1", "web-2", "bare", "logs", "gone") if f">{name}<" in page}
    assert shown == expected
    exported = client.get(f"/o/{org.slug}/inventory/", {**params, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert {r["name"] for r in rows} == expected
    api = client.get(f"/api/v1/o/{org.slug}/inventory/resources/", params).json()
    assert {r["name"] for r in api["results"]} == expected


def test_bad_filter_input_is_a_clear_error(org, viewer, estate):
    client = client_for(viewer)
    page = client.get(f"/o/{org.slug}/inventory/", {"tag": "novalue"}).content.decode()
    assert "write the tag as key=value" in page
    api = client.get(f"/api/v1/o/{org.slug}/inventory/resources/", {"tag": "novalue"})
    assert api.status_code == 400
    assert api["Content-Type"] == "application/problem+json"
    assert "key=value" in str(api.json()["errors"])


def test_resource_page_shows_tags_timeline_and_graph(org, viewer, estate):
    client = client_for(viewer)
    web = estate["web-1"]
    page = client.get(f"/o/{org.slug}/inventory/resources/{web.pk}/").content.decode()
    assert "alice" in page and "<del>dev</del>" in page and "<ins>prod</ins>" in page
    graph = client.get(f"/o/{org.slug}/inventory/resources/{web.pk}/graph.json").json()
    ids = {n["data"]["id"] for n in graph["nodes"]}
    assert ids == {web.arn, "arn:aws:ec2:eu-west-1:1:vpc/vpc-1"}  # every neighbour at first
    graph = client.get(
        f"/o/{org.slug}/inventory/resources/{web.pk}/graph.json", {"direction": "dependents"}
    ).json()
    assert {n["data"]["id"] for n in graph["nodes"]} == {web.arn}  # nothing depends on it
    graph = client.get(
        f"/o/{org.slug}/inventory/resources/{web.pk}/graph.json", {"direction": "dependencies"}
    ).json()
    ids = {n["data"]["id"] for n in graph["nodes"]}
    assert ids == {web.arn, "arn:aws:ec2:eu-west-1:1:vpc/vpc-1"}
    assert graph["edges"][0]["data"]["label"] == "in_vpc"
    radius = client.get(
        f"/api/v1/o/{org.slug}/inventory/resources/{web.pk}/blast-radius/",
        {"depth": "2", "direction": "dependencies"},
    ).json()
    assert radius["resources"] == [{"arn": "arn:aws:ec2:eu-west-1:1:vpc/vpc-1", "depth": 1}]
    assert radius["direction"] == "dependencies"
    detail = client.get(f"/api/v1/o/{org.slug}/inventory/resources/{web.pk}/").json()
    assert detail["timeline"][0]["changes"][0]["new"] == "prod"


def test_blast_radius_direction_in_the_api_and_the_page(org, viewer, estate):
    client = client_for(viewer)
    web = estate["web-1"]
    url = f"/api/v1/o/{org.slug}/inventory/resources/{web.pk}/blast-radius/"
    default = client.get(url).json()
    assert default["direction"] == "dependents" and default["resources"] == []
    both = client.get(url, {"direction": "both"}).json()
    assert both["resources"] == [{"arn": "arn:aws:ec2:eu-west-1:1:vpc/vpc-1", "depth": 1}]
    bad = client.get(url, {"direction": "upstream"})
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"
    assert "dependents" in str(bad.json()["errors"]["direction"])
    page = client.get(f"/o/{org.slug}/inventory/resources/{web.pk}/").content.decode()
    assert 'id="graph-direction"' in page and 'value="dependencies"' in page
    schema = client.get("/api/schema/").content.decode()
    assert "direction" in schema and "dependencies" in schema


def test_api_resources_page_with_a_cursor(org, viewer, estate):
    client = client_for(viewer)
    first = client.get(f"/api/v1/o/{org.slug}/inventory/resources/", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    names = {r["name"] for r in first["results"] + second["results"]}
    assert names == {"web-1", "web-2", "bare", "logs"}


def test_untagged_values_in_tags_render_inert(org, viewer, estate):
    with tenant_scope(org):
        Resource.objects.filter(pk=estate["bare"].pk).update(
            tags={"<script>alert(1)</script>": "<img src=x onerror=alert(2)>"}
        )
    page = client_for(viewer).get(f"/o/{org.slug}/inventory/").content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page


def test_a_scan_aws_cannot_plan_is_a_502_naming_the_account_and_starts_nothing(
    org, owner, monkeypatch
):
    """An account with "all enabled regions" needs AWS to list them when the scan is planned:
    missing credentials, a refused role or AWS unreachable was a 500."""

    make_account(org, HOME, regions=[], role=False)
    client = client_for(owner)
    url = f"/api/v1/o/{org.slug}/inventory/scans/"
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")
    for failure, code in ((NoCredentialsError(), "NoCredentialsError"), (refused, "AccessDenied")):

        def fail(session, failure=failure):
            raise failure

        monkeypatch.setattr(aws, "enabled_regions", fail)
        answer = client.post(url, {}, content_type="application/json")
        assert answer.status_code == 502
        assert answer["Content-Type"] == "application/problem+json"
        assert HOME in answer.json()["detail"] and code in answer.json()["detail"]
    with tenant_scope(org):
        assert not ScanRun.objects.exists()
