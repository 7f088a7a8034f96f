"""Inventory announces, policies listens: the evaluation after a scan is a task of its own,
queued once the scan's transaction has committed (inventory.signals, policies.receivers)."""

from __future__ import annotations

import threading

import pytest
from celery import Task
from django.db import connections
from django.utils import timezone

from audit.models import AuditEvent
from inventory import runner
from inventory.models import ScanRun, TagEvent
from inventory.signals import scan_finished
from policies import evaluation, services, tasks
from policies.models import Finding
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.policies.test_evaluation import OWNER
from tests.policies.test_rules import make_resources, retag

pytestmark = pytest.mark.django_db
SCANNER = Actor.system("scanner")


def actions(organization):
    with tenant_scope(organization):
        return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def touched_scan(org):
    """A running scan that changed one resource (it lost its Owner tag), and the rule it fails."""
    [resource] = make_resources(org, tags_list=[{"Owner": "ann@x"}])
    with tenant_scope(org):
        services.create_rule(org, OWNER)
        scan = ScanRun.objects.create(organization=org, started_by="test", status="running")
        retag(resource, {})
        TagEvent.objects.create(organization=org, resource=resource, scan=scan,
                                seen_at=timezone.now(), kind="changed")  # fmt: skip
    return scan


def test_the_evaluation_is_queued_as_a_task_once_the_scan_commits(
    org, touched_scan, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []

    def send(task, args=None, kwargs=None, **options):  # what would go to the broker
        queued.append((task.name, args, kwargs))

    monkeypatch.setattr(Task, "apply_async", send)  # under TenantTask's, which adds _tenancy
    with django_capture_on_commit_callbacks() as callbacks:
        runner.finish_scan(touched_scan, SCANNER)
    assert queued == []  # nothing before the commit
    for callback in callbacks:
        callback()
    [(name, args, kwargs)] = queued
    assert name == tasks.evaluate_after_scan.name == "policies.evaluate_after_scan"
    assert tuple(args) == (touched_scan.pk,)
    assert kwargs["_tenancy"]["organization_id"] == org.pk
    assert kwargs["_tenancy"]["actor"]["label"] == "scanner"
    assert "policy.evaluate" not in actions(org)  # the task evaluates, not the scan


@pytest.mark.django_db(transaction=True)
def test_a_failing_evaluation_keeps_the_committed_scan_and_is_audited(
    org, touched_scan, celery_eager, monkeypatch
):
    seen_by_another_connection = []

    def failing(scan, actor=None):
        def look():  # a connection of its own sees only what is committed
            try:
                with tenant_scope(org):
                    seen_by_another_connection.append(ScanRun.objects.get(pk=scan.pk).status)
            finally:
                connections.close_all()

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        evaluate(scan, actor)  # its finding and event roll back with the failure
        raise RuntimeError("evaluation broke")

    evaluate = evaluation.evaluate_after_scan
    monkeypatch.setattr(evaluation, "evaluate_after_scan", failing)
    scan = runner.finish_scan(touched_scan, SCANNER)
    assert seen_by_another_connection == [ScanRun.SUCCEEDED]
    with tenant_scope(org):
        assert ScanRun.objects.get(pk=scan.pk).status == ScanRun.SUCCEEDED
        assert not Finding.objects.filter(organization=org).exists()
        [failed] = AuditEvent.objects.filter(action="policy.evaluate_fail")
    assert failed.target_id == str(scan.pk)
    assert failed.data == {"trigger": "scan", "scan": scan.pk, "error": "RuntimeError"}
    assert failed.actor_label == "scanner"
    assert actions(org)[-2:] == ["scan.finish", "policy.evaluate_fail"]


def test_a_failing_receiver_loses_neither_the_scan_nor_the_evaluation(
    org, touched_scan, django_capture_on_commit_callbacks, celery_eager
):
    def broken(sender, **kwargs):
        raise RuntimeError("a listener broke")

    scan_finished.connect(broken, dispatch_uid="test.broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            scan = runner.finish_scan(touched_scan, SCANNER)
    finally:
        scan_finished.disconnect(dispatch_uid="test.broken")
    with tenant_scope(org):
        assert ScanRun.objects.get(pk=scan.pk).status == ScanRun.SUCCEEDED
        [finding] = Finding.objects.filter(organization=org, status=Finding.OPEN)
        assert finding.resource.name == "acme-0"
    assert actions(org)[-2:] == ["scan.finish", "policy.evaluate"]
