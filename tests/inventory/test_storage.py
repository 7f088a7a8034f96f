"""The storage path (set-based SQL on PostgreSQL) over a sequence of scans: resources, tag
history, edges and counts."""

import pytest
from django.db import connection
from django.utils import timezone

from inventory import services, storage
from inventory.models import Edge, Resource, TagEvent
from inventory.scanners.base import Relation, ResourceRecord
from tagsense.tenancy.db import tenant_scope

from .conftest import make_account

pytestmark = pytest.mark.django_db


def _rec(i, tags, vpc="vpc-1"):
    return ResourceRecord(
        arn=f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{i}",
        resource_type="ec2:instance",
        resource_id=f"i-{i}",
        region="eu-west-1",
        name=f"web-{i}",
        tags=tags,
        config={"InstanceType": "t3.micro"},
        relations=[Relation("in_vpc", f"arn:aws:ec2:eu-west-1:123456789012:vpc/{vpc}")],
    )


SCANS = [
    [_rec(1, {"Owner": "a"}), _rec(2, {}), _rec(3, {"Env": "prod"})],
    [_rec(1, {"Owner": "a"}), _rec(2, {}), _rec(3, {"Env": "prod"})],  # nothing changed
    [_rec(1, {"Owner": "b", "Env": "dev"}), _rec(3, {"Env": "prod"}, vpc="vpc-2")],  # 2 gone
    [
        _rec(1, {"Owner": "b", "Env": "dev"}),
        _rec(2, {"Owner": "c"}),
        _rec(3, {"Env": "prod"}, vpc="vpc-2"),
    ],
]


def _writer(cls, account, started=None):
    return cls(
        account=account,
        resource_type="ec2:instance",
        region="eu-west-1",
        scan=None,
        started=started or timezone.now(),
    )


def _run(organization, cls):
    account = make_account(organization, "123456789012", role=False)
    history = []
    for records in SCANS:
        now = timezone.now()
        with tenant_scope(organization):
            writer = _writer(cls, account, now)
            # Two pages, to show the unit's sightings accumulate across them.
            counts = writer.write(records[:1], now=now)
            counts.add(writer.write(records[1:], now=now))
            counts.deleted = writer.finish(now=now)
        history.append((counts.new, counts.changed, counts.unchanged, counts.deleted))
    with tenant_scope(organization):
        resources = sorted(
            (r.resource_id, r.tags, r.deleted_at is not None) for r in Resource.objects.all()
        )
        events = sorted(
            (e.resource.resource_id, e.kind, str(e.changes)) for e in TagEvent.objects.all()
        )
        edges = sorted(Edge.objects.values_list("source_arn", "kind", "target_arn"))
    return history, resources, events, edges


def test_the_writer_stores_each_scans_history(org):
    history, resources, events, edges = _run(org, storage.PgUnitWriter)
    assert history == [(3, 0, 0, 0), (0, 0, 3, 0), (0, 2, 0, 1), (0, 1, 2, 0)]
    assert ("i-2", {"Owner": "c"}, False) in resources
    kinds = [kind for rid, kind, _ in events if rid == "i-2"]
    assert sorted(kinds) == ["deleted", "restored"]
    assert (
        "arn:aws:ec2:eu-west-1:123456789012:instance/i-3",
        "in_vpc",
        "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-2",
    ) in edges


def test_a_deleted_resource_was_last_seen_by_the_unit_before_it_went(org):
    cls = storage.PgUnitWriter
    account = make_account(org, "123456789012", role=False)
    with tenant_scope(org):
        first = _writer(cls, account)
        first.write(SCANS[0], now=first.started)
        first.finish(now=first.started)
        second = _writer(cls, account)
        second.write(SCANS[0], now=second.started)  # nothing changed: no row is written
        second.finish(now=second.started)
        third = _writer(cls, account)
        third.write(SCANS[2], now=third.started)  # i-2 is gone
        third.finish(now=third.started)
        rows = {r.resource_id: r for r in Resource.objects.with_last_seen()}
    assert rows["i-2"].deleted_at == third.started
    assert rows["i-2"].last_seen == second.started  # not its first sighting, not its deletion
    assert rows["i-3"].last_seen == third.started


def test_a_unit_whose_record_of_sightings_was_lost_deletes_nothing(org):
    account = make_account(org, "123456789012", role=False)
    with tenant_scope(org):
        first = _writer(storage.PgUnitWriter, account)
        first.write(SCANS[0], now=first.started)
        first.finish(now=first.started)
        writer = _writer(storage.PgUnitWriter, account)
        writer.write(SCANS[0], now=writer.started)
        with connection.cursor() as cursor:  # as if the database session had been replaced
            cursor.execute("TRUNCATE tagsense_seen")
        with pytest.raises(storage.StorageError):
            writer.finish(now=writer.started)
        assert not Resource.objects.filter(deleted_at__isnull=False).exists()


def test_copy_escapes_what_tag_values_may_hold(org):
    account = make_account(org, "123456789012", role=False)
    tags = {"Note": "tab\there\nnew	line\n\\.", "Path": "C:\\tmp", "Emoji": "ünï ✓"}
    with tenant_scope(org):
        writer = _writer(storage.PgUnitWriter, account)
        record = _rec(9, tags)
        record.name = "a\tname	with\\ slashes"
        writer.write([record], now=writer.started)
        writer.finish(now=writer.started)
        stored = Resource.objects.get()
    assert stored.tags == tags and stored.name == record.name


def test_deleting_an_account_removes_its_inventory_and_its_edges(org):

    account = make_account(org, "123456789012", role=False)
    kept = make_account(org, "210987654321", role=False)
    with tenant_scope(org):
        for owner in (account, kept):
            writer = _writer(storage.PgUnitWriter, owner)
            writer.write(
                [_rec(f"{owner.account_id}-{i}", {"Owner": "a"}) for i in range(3)],
                now=writer.started,
            )
            writer.finish(now=writer.started)
        services.delete_account(account)
        left = set(Resource.objects.values_list("resource_id", flat=True))
        sources = set(Edge.objects.values_list("source_arn", flat=True))
    assert left == {f"i-210987654321-{i}" for i in range(3)}
    # _rec's ARNs all name one AWS account; the resource ids tell the two apart.
    assert sources == {
        f"arn:aws:ec2:eu-west-1:123456789012:instance/i-210987654321-{i}" for i in range(3)
    }
