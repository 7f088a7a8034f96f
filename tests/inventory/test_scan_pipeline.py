"""The runner end to end against moto: several accounts through assume-role, several regions,
never-tagged resources, tag history, idempotent re-scans, deletion, partial failure, tenancy."""

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from inventory import history, runner
from inventory.models import Edge, Resource, ScanRun, TagEvent
from inventory.scanners import ec2 as ec2_scanners
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.factories import OrganizationFactory

from .conftest import HOME, MEMBER, make_account, member_session

pytestmark = pytest.mark.django_db
TYPES = ("ec2:instance", "ec2:vpc", "ec2:subnet")
ACTOR = Actor.system("test")


def _instances(session_or_client_factory, region, count, tags=None):
    ec2 = session_or_client_factory(region)
    image = "ami-12c6146b"
    spec = (
        {
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ]
        }
        if tags
        else {}
    )
    return [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, **spec)[
            "Instances"
        ]
    ]


def _home(region):
    return boto3.client("ec2", region_name=region)


def _member(region):
    return member_session(MEMBER, region).client("ec2")


def _scan(org, types=TYPES, **scope):
    with tenant_scope(org):
        scan = runner.plan_scan(org, scope=runner.Scope(types=types, **scope), actor=ACTOR)
    return runner.run_scan_inline(scan, actor=ACTOR, workers=1)


@pytest.fixture
def estate(aws_env, org):
    home = make_account(org, HOME, role=False, name="home")
    member = make_account(org, MEMBER, name="member")
    ids = {
        "home_tagged": _instances(_home, "eu-west-1", 2, {"Owner": "alice", "Env": "prod"}),
        "home_untagged": _instances(_home, "us-east-1", 1),
        "member_tagged": _instances(_member, "eu-west-1", 1, {"owner": "bob"}),
    }
    return home, member, ids


def _resources(org, **filters):
    with tenant_scope(org):
        return list(Resource.objects.filter(**filters))


def test_scan_finds_every_account_region_and_untagged_resource(org, estate):
    home, member, ids = estate
    scan = _scan(org)
    assert scan.status == ScanRun.SUCCEEDED
    assert scan.units_total == scan.units_done == 2 * 2 * 3
    instances = {r.resource_id: r for r in _resources(org, resource_type="ec2:instance")}
    for instance_id in ids["home_tagged"]:
        assert instances[instance_id].tags == {"Owner": "alice", "Env": "prod"}
        assert instances[instance_id].account_id == home.pk
        assert instances[instance_id].region == "eu-west-1"
    (untagged,) = ids["home_untagged"]
    assert instances[untagged].tags == {} and instances[untagged].region == "us-east-1"
    (theirs,) = ids["member_tagged"]
    assert instances[theirs].account_id == member.pk
    assert instances[theirs].arn.startswith(f"arn:aws:ec2:eu-west-1:{MEMBER}:instance/")
    with tenant_scope(org):
        assert Edge.objects.filter(source_arn=instances[theirs].arn, kind="in_vpc").exists()
        # A first sighting writes no history rows; each resource keeps the scan that found it.
        assert not TagEvent.objects.exists()
        assert set(Resource.objects.values_list("first_scan_id", flat=True)) == {scan.pk}
        actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "scan.start" in actions and "scan.finish" in actions


def test_a_second_scan_changes_nothing_and_writes_no_history(org, estate):
    first = _scan(org)
    with tenant_scope(org):
        events = TagEvent.objects.count()
    second = _scan(org)
    assert (second.new, second.changed, second.deleted) == (0, 0, 0)
    assert second.unchanged == first.new
    with tenant_scope(org):
        assert TagEvent.objects.count() == events
        # Unchanged rows are not rewritten, yet each shows the second scan as its last sighting.
        rows = list(Resource.objects.with_last_seen())
    assert rows and all(r.last_written <= first.finished_at for r in rows)
    assert all(second.started_at <= r.last_seen <= second.finished_at for r in rows)


def test_tag_changes_are_history_and_vanished_resources_are_marked_deleted(org, estate):
    home, member, ids = estate
    _scan(org)
    changed, removed = ids["home_tagged"]
    ec2 = _home("eu-west-1")
    ec2.create_tags(
        Resources=[changed],
        Tags=[{"Key": "Env", "Value": "staging"}, {"Key": "CostCenter", "Value": "42"}],
    )
    ec2.delete_tags(Resources=[changed], Tags=[{"Key": "Owner"}])
    ec2.terminate_instances(InstanceIds=[removed])
    scan = _scan(org, types=("ec2:instance",))
    assert scan.changed == 1 and scan.deleted == 1
    with tenant_scope(org):
        event = TagEvent.objects.get(resource__resource_id=changed, kind=TagEvent.CHANGED)
        gone = Resource.objects.get(resource_id=removed)
    assert event.scan_id == scan.pk
    assert event.changes == [
        {"key": "CostCenter", "old": None, "new": "42", "kind": "added"},
        {"key": "Env", "old": "prod", "new": "staging", "kind": "changed"},
        {"key": "Owner", "old": "alice", "new": None, "kind": "removed"},
    ]
    assert gone.deleted_at is not None  # kept, not dropped
    with tenant_scope(org):
        resource = Resource.objects.get(resource_id=changed)
        entries = history.timeline(resource, TagEvent.objects.all())
    assert [e.kind for e in entries] == ["changed", "discovered"]
    assert entries[-1].tags == {"Owner": "alice", "Env": "prod"}  # as first seen


def test_a_failing_unit_is_recorded_and_the_rest_completes(org, estate, monkeypatch):
    home, member, ids = estate
    _scan(org)
    original = ec2_scanners.InstanceScanner.pages

    def denied(self, ctx):
        if ctx.account_id == MEMBER:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                "DescribeInstances",
            )
        return original(self, ctx)

    monkeypatch.setattr(ec2_scanners.InstanceScanner, "pages", denied)
    scan = _scan(org, types=("ec2:instance",))
    assert scan.status == ScanRun.PARTIAL
    assert scan.units_failed == 2
    with tenant_scope(org):
        errors = set(scan.units.filter(status="failed").values_list("error_code", flat=True))
        # The failed unit's resources were not marked deleted.
        assert not Resource.objects.filter(account=member, deleted_at__isnull=False).exists()
    assert errors == {"AccessDenied"}


def test_another_organizations_scan_never_touches_ours(org, other_org, estate):
    _scan(org)
    make_account(other_org, MEMBER, regions=["eu-west-1"], name="theirs")
    with tenant_scope(other_org):
        theirs = runner.plan_scan(
            other_org, scope=runner.Scope(types=("ec2:instance",)), actor=ACTOR
        )
    runner.run_scan_inline(theirs, actor=ACTOR, workers=1)
    with all_tenants():
        by_org = {
            org_id: count
            for org_id, count in [
                (o, Resource.objects.filter(organization_id=o).count())
                for o in (org.pk, other_org.pk)
            ]
        }
    assert by_org[other_org.pk] == 1  # the member account's one instance, seen by them too
    assert by_org[org.pk] > by_org[other_org.pk]
    with tenant_scope(org):
        assert Resource.objects.filter(deleted_at__isnull=False).count() == 0


def test_unknown_types_are_refused(org, aws_env):
    make_account(org, HOME, role=False)
    with pytest.raises(ValueError, match="unknown resource type"), tenant_scope(org):
        runner.plan_scan(org, scope=runner.Scope(types=("ec2:teleporter",)), actor=ACTOR)


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_store_the_same_result(aws_env):

    org = OrganizationFactory(slug="conc")
    make_account(org, HOME, role=False)
    _instances(_home, "eu-west-1", 3, {"Owner": "x"})
    with tenant_scope(org):
        scan = runner.plan_scan(org, scope=runner.Scope(types=TYPES), actor=ACTOR)
    scan = runner.run_scan_inline(scan, actor=ACTOR, workers=4)
    assert scan.status == ScanRun.SUCCEEDED
    with tenant_scope(org):
        assert Resource.objects.filter(resource_type="ec2:instance").count() == 3


def test_the_scan_command_reports_progress_and_counts(org, aws_env, capsys):

    make_account(org, HOME, role=False, regions=["eu-west-1"])
    _instances(_home, "eu-west-1", 2)
    call_command(
        "scan", "--org", org.slug, "--type", "ec2:instance", "--type", "ec2:vpc", "--workers", "1"
    )
    out = capsys.readouterr().out
    assert "[##############################] 2/2" in out
    assert "succeeded: 3 new" in out  # two instances and the default VPC


def test_the_scan_command_names_bad_input(org, aws_env):

    with pytest.raises(CommandError, match="no organization"):
        call_command("scan", "--org", "nope")
    make_account(org, HOME, role=False, regions=["eu-west-1"])
    with pytest.raises(CommandError, match="unknown resource type"):
        call_command("scan", "--org", org.slug, "--type", "ec2:warp-drive")


@pytest.mark.django_db(transaction=True)  # worker processes see only committed rows
def test_units_in_worker_processes_store_what_threads_store(org, estate):
    home, member, ids = estate
    with tenant_scope(org):
        scan = runner.plan_scan(org, scope=runner.Scope(types=TYPES), actor=ACTOR)
    done = []
    scan = runner.run_scan_inline(
        scan,
        actor=ACTOR,
        workers=2,
        processes=True,
        progress=lambda run, unit: done.append(unit.pk),
    )
    assert scan.status == ScanRun.SUCCEEDED
    with tenant_scope(org):
        assert sorted(done) == sorted(scan.units.values_list("pk", flat=True))
    instances = {r.resource_id: r for r in _resources(org, resource_type="ec2:instance")}
    assert set(instances) == {i for group in ids.values() for i in group}
    assert instances[ids["member_tagged"][0]].tags == {"owner": "bob"}
    # Threads now, over the same instances: nothing changed. (Not VPCs and subnets: moto makes
    # each region's default VPC lazily, so each forked child invented its own.)
    again = _scan(org, types=("ec2:instance",))
    assert (again.new, again.changed, again.deleted) == (0, 0, 0)


def test_a_scan_of_pages_already_read_records_what_a_run_scan_records(org, estate):
    """runner.store_fetched_scan (the demo's replayed days): the same writer and close as a
    scan run by workers, so a reader sees the same run, units, history and audit events."""
    home, member, ids = estate
    _scan(org)
    changed, removed = ids["home_tagged"]
    ec2 = _home("eu-west-1")
    ec2.create_tags(Resources=[changed], Tags=[{"Key": "Env", "Value": "staging"}])
    ec2.terminate_instances(InstanceIds=[removed])
    scope = runner.Scope(types=("ec2:instance",))
    with tenant_scope(org):
        fetched = runner.fetch_units(org, scope=scope, workers=1)
    # The member account's unit in eu-west-1 could not be read: it must delete nothing.
    failed_key = (member.pk, "eu-west-1", "ec2:instance")
    fetched[failed_key] = runner.Fetched(error_code="AccessDenied", error="not authorized")
    with tenant_scope(org):
        scan = runner.store_fetched_scan(
            org, scope=scope, fetched=fetched, actor=ACTOR, trigger="replay"
        )
    assert scan.status == ScanRun.PARTIAL and scan.finished_at is not None
    assert (scan.changed, scan.deleted, scan.units_done, scan.units_failed) == (1, 1, 4, 1)
    with tenant_scope(org):
        units = {runner.unit_key(u): u for u in scan.units.all()}
        assert len(units) == scan.units_total == 4
        assert units[failed_key].status == "failed"
        assert units[failed_key].error_code == "AccessDenied"
        home_unit = units[(home.pk, "eu-west-1", "ec2:instance")]
        assert (home_unit.status, home_unit.seen, home_unit.changed, home_unit.deleted) == (
            "succeeded",
            1,
            1,
            1,
        )
        assert all(u.started_at and u.finished_at for u in units.values())
        event = TagEvent.objects.get(resource__resource_id=changed, kind=TagEvent.CHANGED)
        assert event.scan_id == scan.pk
        assert Resource.objects.get(resource_id=removed).deleted_at is not None
        assert not Resource.objects.filter(account=member, deleted_at__isnull=False).exists()
        actions = list(
            AuditEvent.objects.filter(target_id=str(scan.pk)).values_list("action", flat=True)
        )
    assert sorted(actions) == ["scan.finish", "scan.start"]
