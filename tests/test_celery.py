"""Tasks carry organization, actor and request id from the caller into a real worker (Redis)."""

import time

import boto3
import pytest
from celery.contrib.testing.worker import start_worker
from django_celery_beat.models import PeriodicTask

from audit.models import AuditEvent
from audit.tasks import verify_all_chains, verify_organization_chain
from inventory.models import ScanRun
from inventory.runner import Scope
from inventory.services import start_scan
from tagsense.celery import app
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.factories import OrganizationFactory, UserFactory
from tests.inventory.conftest import HOME, make_account


def _wait_for_event(organization, action, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with tenant_scope(organization):
            event = AuditEvent.objects.filter(action=action).first()
        if event is not None:
            return event
        time.sleep(0.2)
    raise AssertionError(f"no {action} event within {timeout}s")


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_for_the_callers_organization_as_the_caller(org, owner, other_org):
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with (
            context.use(actor=Actor.for_user(owner), request_id="req-from-web-1234"),
            tenant_scope(org),
        ):
            verify_organization_chain.delay()
        event = _wait_for_event(org, "audit.verify")
    assert event.actor_label == owner.email
    assert event.actor_kind == "user"
    assert event.request_id == "req-from-web-1234"
    assert event.data["intact"] is True
    with tenant_scope(other_org):
        assert not AuditEvent.objects.filter(action="audit.verify").exists()


@pytest.mark.django_db
def test_the_nightly_task_verifies_every_chain_as_the_system(org, other_org):
    result = verify_all_chains.apply().get()
    assert result == {"acme": True, "globex": True, "(global)": True}
    with all_tenants():
        events = AuditEvent.objects.filter(action="audit.verify")
        assert {e.organization_id for e in events} == {org.pk, other_org.pk, None}
        assert {e.actor_label for e in events} == {"audit.verify_all_chains"}


def test_beat_schedule_holds_the_nightly_verification(db):

    task = PeriodicTask.objects.get(name="Verify audit chains nightly")
    assert task.task == "audit.verify_all_chains"
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("3", "17")


@pytest.mark.django_db(transaction=True)
def test_a_scan_started_in_the_portal_runs_through_the_workers(aws_env, settings):
    """start_scan → (on commit) inventory.run_scan → one task per account × region → finished,
    with the organization and the user carried all the way (eager Celery, real fan-out code)."""

    org = OrganizationFactory(slug="viaworkers")
    user = UserFactory(email="starter@example.com")
    make_account(org, HOME, role=False, regions=["eu-west-1", "us-east-1"])
    boto3.client("ec2", region_name="eu-west-1").run_instances(
        ImageId="ami-12c6146b", MinCount=2, MaxCount=2
    )
    app.conf.task_always_eager = True
    try:
        with context.use(actor=Actor.for_user(user)), tenant_scope(org):
            scan = start_scan(org, actor=Actor.for_user(user), scope=_scope())
    finally:
        app.conf.task_always_eager = False
    with tenant_scope(org):
        scan = ScanRun.objects.get(pk=scan.pk)
        finished = AuditEvent.objects.get(action="scan.finish")
    assert scan.status == ScanRun.SUCCEEDED
    assert scan.units_done == scan.units_total == 4
    assert scan.new >= 2
    assert finished.actor_label == user.email


def _scope():

    return Scope(types=("ec2:instance", "ec2:vpc"))
