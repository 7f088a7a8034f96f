"""The two storage paths (set-based SQL on PostgreSQL, the ORM on SQLite) agree on the same
sequence of scans: resources, tag history, edges and counts."""

import pytest
from django.utils import timezone

from inventory import storage
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


def _run(organization, write):
    account = make_account(organization, "123456789012", role=False)
    history = []
    for records in SCANS:
        now = timezone.now()
        with tenant_scope(organization):
            counts, _ = write(account=account, records=records, scan=None, now=now)
            counts.deleted = storage.mark_missing_deleted(
                account=account,
                resource_type="ec2:instance",
                region="eu-west-1",
                since=now,
                scan=None,
                now=now,
            )
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


def test_both_paths_store_the_same_history(org, other_org):
    sql = _run(org, storage.upsert_page_pg)
    orm = _run(other_org, storage.upsert_page)
    assert sql == orm
    history, resources, events, edges = sql
    assert history == [(3, 0, 0, 0), (0, 0, 3, 0), (0, 2, 0, 1), (0, 1, 2, 0)]
    assert ("i-2", {"Owner": "c"}, False) in resources
    kinds = [kind for rid, kind, _ in events if rid == "i-2"]
    assert sorted(kinds) == ["deleted", "discovered", "restored"]
    assert (
        "arn:aws:ec2:eu-west-1:123456789012:instance/i-3",
        "in_vpc",
        "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-2",
    ) in edges
