"""An evidence package end to end: requested on the page, built by the Celery task (eager),
downloaded; what the ZIP holds, its hashes, its CSV cells, its scope, and what a failed build
leaves (nothing). The other branches' sources are stood in for (tests/evidence/conftest.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from audit.models import AuditEvent
from evidence import package, services, sources, tasks
from evidence.models import EvidenceExport
from policies.models import Framework
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.evidence.conftest import ACCOUNT, HOSTILE, OTHER_ACCOUNT
from tests.test_exports import spreadsheet_would_run

pytestmark = pytest.mark.django_db


def request_package(client, org, captured, **fields):
    """POST the page's form as a member would; the build runs when the request commits."""
    today = timezone.now().date()
    data = {
        "frameworks": ["baseline"],
        "period_start": (today - timedelta(days=2)).isoformat(),
        "period_end": today.isoformat(),
        **fields,
    }
    with captured(execute=True):
        response = client.post(f"/o/{org.slug}/evidence/", data)
    return response


def _export(org):
    with tenant_scope(org):
        return EvidenceExport.objects.get()


def _events(org, action):
    with tenant_scope(org):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info.filename) for info in zf.infolist()}


@pytest.fixture
def built(
    org, auditor, estate, stand_ins, evidence_root, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(auditor)
    response = request_package(client, org, django_capture_on_commit_callbacks)
    export = _export(org)
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/evidence/{export.uuid}/"
    return client, export


def test_a_requested_package_is_built_signed_and_downloadable(org, auditor, built, stand_ins):
    client, export = built
    path = services.package_path(export)
    assert export.status == EvidenceExport.READY, export.error
    assert (export.progress, export.stage) == (100, "ready")
    # Nothing but the package in its folder: no .part, no spooled rows.
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{export.uuid}.zip"]
    body = path.read_bytes()
    assert export.size == len(body)
    assert export.sha256 == hashlib.sha256(body).hexdigest()
    assert export.key_fingerprint == "SHA256:stand-in-key"
    assert export.expires_at - export.finished_at == timedelta(days=7)
    members = _members(path)
    assert list(members) == list(package.FILES)
    # Each member's size and SHA-256, recorded while it streamed, are what the ZIP holds.
    manifest = orjson.loads(members["manifest.json"])
    recorded = {f["name"]: (f["size"], f["sha256"]) for f in manifest["files"]}
    assert set(recorded) == set(package.FILES) - {"manifest.json", "manifest.sig"}
    for name, (size, sha256) in recorded.items():
        assert (size, sha256) == (len(members[name]), hashlib.sha256(members[name]).hexdigest())
    assert members["manifest.sig"] == hashlib.sha256(members["manifest.json"]).digest()
    assert manifest["chain_head"]["seq"] > 0
    completed = _events(org, "evidence.export_complete")
    assert [(e.data["sha256"], e.data["size"]) for e in completed] == [(export.sha256, len(body))]
    [requested] = _events(org, "evidence.export_request")
    assert requested.actor_label == auditor.email
    assert requested.data["scope"]["frameworks"] == ["baseline"]

    page = client.get(f"/o/{org.slug}/evidence/{export.uuid}/").content.decode()
    assert export.sha256 in page and "Download package" in page
    assert 'hx-trigger="every 1s"' not in page  # done: the page stops polling
    response = client.get(f"/o/{org.slug}/evidence/{export.uuid}/download")
    assert response.status_code == 200
    downloaded = b"".join(response.streaming_content)
    assert downloaded == body
    assert response["X-Evidence-SHA256"] == export.sha256
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    [download] = _events(org, "evidence.export_download")
    assert download.data["sha256"] == export.sha256
    assert download.actor_label == auditor.email


def test_the_files_hold_the_scopes_rows(org, built, stand_ins, estate):
    _, export = built
    members = _members(services.package_path(export))
    findings = orjson.loads(members["findings-open-at-end.json"])
    # Seven hostile instances in one account, three in the other; one finding is exempted.
    assert len(findings) == len(HOSTILE) + 3 - 1
    assert {f["account_id"] for f in findings} == {ACCOUNT, OTHER_ACCOUNT}
    first = findings[0]
    assert first["resource_arn"].startswith(f"arn:aws:ec2:eu-west-1:{first['account_id']}:")
    assert first["resource_type"] == "ec2:instance" and first["region"] == "eu-west-1"
    assert sorted(first["controls"]) == ["baseline/BL-1", "baseline/BL-2"]
    controls = orjson.loads(members["controls.json"])
    assert [c["control_id"] for c in controls] == ["BL-1", "BL-2"]
    assert controls[0]["status_at_end"] == "fail" and len(controls[0]["daily"]) == 3
    [exemption] = orjson.loads(members["exemptions.json"])
    assert exemption["justification"] == HOSTILE[1]
    assert exemption["status_at_end"] == "approved" and exemption["decided_by"]
    coverage = orjson.loads(members["scan-coverage.json"])
    assert {(r["account_id"], r["record"]) for r in coverage} == {
        (ACCOUNT, "last_success"),
        (OTHER_ACCOUNT, "failed"),
        (OTHER_ACCOUNT, "no_success"),
    }
    # The OSCAL writer got the same findings back from the spool, and the summary the rest.
    assert len(stand_ins.failing) == len(findings)
    assert {f.resource_arn for f in stand_ins.failing} == {f["resource_arn"] for f in findings}
    assert stand_ins.summary.exemptions_in_period == 1
    assert stand_ins.summary.coverage_gaps_total == 2
    assert stand_ins.summary.chain.intact
    assert [c.key for c in stand_ins.summary.controls] == ["baseline/BL-1", "baseline/BL-2"]
    # CSV and JSON carry the same rows.
    for name in package.FILES:
        if name.endswith(".csv"):
            rows = list(csv.reader(io.StringIO(members[name].decode())))
            twin = orjson.loads(members[name.replace(".csv", ".json")])
            assert len(rows) - 1 == len(twin), name


def test_no_cell_of_any_csv_file_starts_like_a_formula(org, built):
    _, export = built
    members = _members(services.package_path(export))
    csv_names = [n for n in members if n.endswith(".csv")]
    assert len(csv_names) == 7
    cells = []
    for name in csv_names:
        rows = list(csv.reader(io.StringIO(members[name].decode())))
        running = [c for row in rows for c in row if spreadsheet_would_run(c)]
        assert running == [], name
        cells += [c for row in rows for c in row]
    # Every hostile text reached a file, behind a quote: rule and control titles (rule
    # versions, controls), found keys (findings, changes), the justification (exemptions), a
    # scan error (coverage), a tag policy's name and author (tag policy versions).
    for payload in HOSTILE:
        assert any(c.startswith("'" + payload) for c in cells), payload


def test_a_build_that_fails_midway_leaves_nothing_and_is_audited(
    org, auditor, estate, stand_ins, evidence_root, celery_eager, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    real = sources.changes_between

    def breaks_after_some_rows(*args, **kwargs):
        for n, change in enumerate(real(*args, **kwargs)):
            if n == 3:
                raise ConnectionError("database connection lost: secret-host:5432")
            yield change

    monkeypatch.setattr(sources, "changes_between", breaks_after_some_rows)
    client = client_for(auditor)
    request_package(client, org, django_capture_on_commit_callbacks)
    export = _export(org)
    assert export.status == EvidenceExport.FAILED
    assert "Finding changes" in export.error
    assert "secret-host" not in export.error  # what members see names the stage, not internals
    assert not services.package_path(export).exists()
    assert not services.partial_path(export).exists()
    assert list(services.organization_folder(org.pk).iterdir()) == []
    [failed] = _events(org, "evidence.export_fail")
    assert failed.data["reason"] == "ConnectionError"
    assert failed.data["stage"].startswith("Finding changes")
    assert _events(org, "evidence.export_complete") == []
    assert client.get(f"/o/{org.slug}/evidence/{export.uuid}/download").status_code == 404
    api = client.get(f"/api/v1/o/{org.slug}/evidence/exports/{export.uuid}/download")
    assert api.status_code == 404
    assert (
        client.get(f"/api/v1/o/{org.slug}/evidence/exports/{export.uuid}/").json()["download_url"]
        is None
    )
    page = client.get(f"/o/{org.slug}/evidence/{export.uuid}/").content.decode()
    assert "Download package" not in page and "could not be built" in page


def test_a_failure_after_the_last_member_leaves_nothing_either(
    org, auditor, estate, stand_ins, evidence_root, celery_eager, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    def refuses(organization, manifest):
        raise RuntimeError("no key")

    monkeypatch.setattr(sources, "signature_bytes", refuses)
    request_package(client_for(auditor), org, django_capture_on_commit_callbacks)
    export = _export(org)
    assert export.status == EvidenceExport.FAILED
    assert list(services.organization_folder(org.pk).iterdir()) == []


def test_a_scope_that_cannot_be_built_any_more_says_why(
    org, auditor, estate, stand_ins, evidence_root, celery_eager, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        export = services.request_export(
            org,
            scope={"frameworks": ["baseline"]},
            period_start=timezone.now().date(),
            period_end=timezone.now().date(),
            actor=_actor(auditor),
        )
        Framework.objects.filter(slug="baseline").delete()  # removed before the build ran
        tasks.build_export.delay(export.pk)
    with tenant_scope(org):
        export.refresh_from_db()
    assert export.status == EvidenceExport.FAILED
    assert "unknown framework 'baseline'" in export.error


def _actor(user):
    return Actor.for_user(user)


def test_teams_and_accounts_narrow_the_accounts_and_nothing_widens_them(
    org,
    auditor,
    estate,
    stand_ins,
    evidence_root,
    celery_eager,
    team,
    django_capture_on_commit_callbacks,
):
    client = client_for(auditor)
    request_package(client, org, django_capture_on_commit_callbacks, teams=[team.slug])
    export = _export(org)
    assert export.status == EvidenceExport.READY, export.error
    assert {tuple(c["account_pks"]) for c in stand_ins.calls["findings_at"]} == {
        (estate.account.pk,)
    }
    members = _members(services.package_path(export))
    findings = orjson.loads(members["findings-open-at-end.json"])
    assert {f["account_id"] for f in findings} == {ACCOUNT}
    coverage = orjson.loads(members["scan-coverage.json"])
    assert {r["account_id"] for r in coverage} == {ACCOUNT}
    # A team and an account together: both.
    request_package(
        client, org, django_capture_on_commit_callbacks, teams=[team.slug], accounts=[OTHER_ACCOUNT]
    )
    assert stand_ins.calls["findings_at"][-1]["account_pks"] == sorted(
        [estate.account.pk, estate.other.pk]
    )


def test_progress_is_written_between_files_not_per_row(
    org, auditor, estate, stand_ins, monkeypatch
):
    """The row is written at most once per interval, and only when the progress changed."""
    with tenant_scope(org):
        export = services.request_export(
            org,
            scope={"frameworks": ["baseline"]},
            period_start=timezone.now().date(),
            period_end=timezone.now().date(),
            actor=_actor(auditor),
        )
    writer = tasks.ProgressWriter(export, interval=3600)
    for n in range(1000):
        writer(10, f"rows {n}")
    assert writer.writes == 1 and writer.stage == "rows 999"
    with tenant_scope(org):
        export.refresh_from_db()
    assert (export.progress, export.stage) == (0, "")  # queued: progress only while building
    with tenant_scope(org):
        services.start_build(export.pk)
    writer = tasks.ProgressWriter(export, interval=0)
    writer(42, "Findings open at period end")
    writer(42, "Findings open at period end")
    assert writer.writes == 1
    with tenant_scope(org):
        export.refresh_from_db()
    assert (export.progress, export.stage) == (42, "Findings open at period end")


def test_the_page_polls_while_building(org, auditor, estate, stand_ins):
    with tenant_scope(org):
        export = services.request_export(
            org,
            scope={"frameworks": ["baseline"]},
            period_start=timezone.now().date(),
            period_end=timezone.now().date(),
            actor=_actor(auditor),
        )
        services.start_build(export.pk)
        services.save_progress(export, 37, "Scan coverage")
    client = client_for(auditor)
    page = client.get(f"/o/{org.slug}/evidence/{export.uuid}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and 'value="37"' in page and "Scan coverage" in page
    assert "Download package" not in page
    fragment = client.get(f"/o/{org.slug}/evidence/{export.uuid}/", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section class="card" id="export-progress"')
    assert "<html" not in body
    assert client.get(f"/o/{org.slug}/evidence/{export.uuid}/download").status_code == 404


def test_expired_packages_lose_their_file_and_are_audited(
    org, built, django_capture_on_commit_callbacks
):
    client, export = built
    path = services.package_path(export)
    with tenant_scope(org):
        EvidenceExport.objects.filter(pk=export.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    # Past its retention, it is no longer served even before the hourly task runs.
    assert client.get(f"/o/{org.slug}/evidence/{export.uuid}/download").status_code == 404
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire_exports.apply().get() == 1
    with tenant_scope(org):
        export.refresh_from_db()
    assert export.status == EvidenceExport.EXPIRED
    assert not path.exists()
    [expired] = _events(org, "evidence.export_expire")
    assert expired.data["sha256"] == export.sha256
    assert tasks.expire_exports.apply().get() == 0
