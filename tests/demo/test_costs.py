"""The demo's labelled, invented costs (demo/costs.py): only for the demo organization, never
over a measured day; and `import_costs --demo`, which reaches them through the plug."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from demo import costs
from inventory.models import Resource, ResourceCost
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.inventory.conftest import make_account
from tests.inventory.test_costs import EC2, MEMBER, TODAY, resource

pytestmark = pytest.mark.django_db


def test_demo_costs_are_only_for_the_demo_labelled_and_leave_measured_days(org, settings):
    account = make_account(org, MEMBER)
    running = resource(org, account, "ec2:instance", "i-0run")
    stopped = resource(org, account, "ec2:instance", "i-0stop")
    volume = resource(org, account, "ec2:volume", "vol-0aaa")
    with tenant_scope(org):
        Resource.objects.filter(pk=running.pk).update(config={"InstanceType": "m6i.large"})
        Resource.objects.filter(pk=stopped.pk).update(config={"State": "stopped"})
    with tenant_scope(org, actor=Actor.system("test")), pytest.raises(costs.NotTheDemo):
        costs.seed_demo_costs(org, today=TODAY)

    settings.TAGSENSE_DEMO_ORG_SLUG = org.slug
    measured_day = TODAY - timedelta(days=1)
    with tenant_scope(org, actor=Actor.system("test")):
        ResourceCost.objects.create(
            organization=org,
            account=account,
            resource=running,
            cost_resource_id="i-0run",
            service=EC2,
            period_start=measured_day,
            period_end=TODAY,
            amount=Decimal("2.30"),
            source=ResourceCost.COST_EXPLORER,
            imported_at=timezone.now(),
        )
        assert costs.seed_demo_costs(org, today=TODAY) == 13
        assert costs.seed_demo_costs(org, today=TODAY) == 13  # rewritten, not added
        demo = list(ResourceCost.objects.filter(source="demo"))
        [event] = AuditEvent.objects.filter(action="cost.import").order_by("-seq")[:1]
    assert {r.resource_id for r in demo} == {running.pk}  # no stopped instance, no volume
    assert volume.pk not in {r.resource_id for r in demo}
    assert measured_day not in {r.period_start for r in demo}
    assert {r.period_start for r in demo} == {TODAY - timedelta(days=n) for n in range(2, 15)}
    # m6i.large at about $0.096 an hour, within the demo's ±10 % daily noise.
    assert all(Decimal("2.07") <= r.amount <= Decimal("2.54") for r in demo)
    assert event.data["source"] == "demo" and event.data["rows"] == 13


def test_import_costs_demo_writes_the_demo_organizations_costs_and_refuses_others(
    org, other_org, settings, capsys
):
    account = make_account(org, MEMBER)
    running = resource(org, account, "ec2:instance", "i-0run")
    with tenant_scope(org):
        Resource.objects.filter(pk=running.pk).update(config={"InstanceType": "t3.micro"})
    settings.TAGSENSE_DEMO_ORG_SLUG = org.slug
    call_command("import_costs", "--org", org.slug, "--demo")
    assert f"{org.slug}: 14 rows of demo costs (not measured)" in capsys.readouterr().out
    with tenant_scope(org):
        assert ResourceCost.objects.filter(source="demo").count() == 14
    with pytest.raises(CommandError, match="demo costs are only for the demo organization"):
        call_command("import_costs", "--org", other_org.slug, "--demo")
