"""An evidence package end to end, against the real sources: an estate with a history written by
real evaluations and members (tests/evidence/conftest.py), requested on the page, built by the
Celery task (eager), downloaded; what the ZIP holds against the ledger it was read from, its
signature and hashes under both verifiers, its OSCAL document under NIST's schema, its PDF, its
CSV cells, its scope, and what a failed build leaves (nothing)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from types import SimpleNamespace

import orjson
import pypdf
import pytest
from django.utils import timezone

from audit.models import AuditEvent
from evidence import keys, manifest, package, services, tasks
from evidence.models import EvidenceExport
from policies import history
from policies.models import Framework
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.evidence.conftest import ACCOUNT, HOSTILE, OTHER_ACCOUNT
from tests.evidence.package_kit import SCRIPT, both_fail, flip, public_key_file, rezip, run_command
from tests.evidence.test_oscal import errors as oscal_errors
from tests.test_exports import spreadsheet_would_run

pytestmark = pytest.mark.django_db

PERIOD_DAYS = 30


def request_package(client, org, captured, **fields):
    """POST the page's form as a member would; the build runs when the request commits."""
    today = timezone.now().date()
    data = {
        "frameworks": ["baseline"],
        "period_start": (today - timedelta(days=PERIOD_DAYS - 1)).isoformat(),
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
def built(org, auditor, estate, evidence_root, celery_eager, django_capture_on_commit_callbacks):
    client = client_for(auditor)
    response = request_package(client, org, django_capture_on_commit_callbacks)
    export = _export(org)
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/evidence/{export.uuid}/"
    return client, export


def test_a_requested_package_is_built_signed_and_downloadable(org, auditor, built):
    client, export = built
    path = services.package_path(export)
    assert export.status == EvidenceExport.READY, export.error
    assert (export.progress, export.stage) == (100, "ready")
    # Nothing but the package in its folder: no .part, no spooled rows.
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{export.uuid}.zip"]
    body = path.read_bytes()
    assert export.size == len(body)
    assert export.sha256 == hashlib.sha256(body).hexdigest()
    with tenant_scope(org):
        assert export.key_fingerprint == keys.active_key(org).fingerprint
    assert export.expires_at - export.finished_at == timedelta(days=7)
    members = _members(path)
    assert list(members) == list(package.FILES)
    # Each member's size and SHA-256, recorded while it streamed, are what the ZIP holds.
    listed = orjson.loads(members["manifest.json"])
    recorded = {f["name"]: (f["size"], f["sha256"]) for f in listed["files"]}
    assert set(recorded) == set(package.FILES) - {"manifest.json", "manifest.sig"}
    for name, (size, sha256) in recorded.items():
        assert (size, sha256) == (len(members[name]), hashlib.sha256(members[name]).hexdigest())
    assert listed["signing_key"]["fingerprint"] == export.key_fingerprint
    assert json.loads(members["manifest.sig"])["key_fingerprint"] == export.key_fingerprint
    assert listed["chain_head"]["seq"] >= listed["audit_log"]["last_seq"] > 0
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


def _ledger(org, export, rule_ids=("costcenter",)):
    """What policies.history says of the export's period: the findings open at its end and
    the changes in it (the period includes its start; changes_between covers (start, end])."""
    start = export.period_start - timedelta(microseconds=1)
    with tenant_scope(org):
        open_at_end = list(history.findings_at(org, export.period_end, rule_ids=list(rule_ids)))
        changes = list(
            history.changes_between(org, start, export.period_end, rule_ids=list(rule_ids))
        )
    return open_at_end, changes


def test_the_files_hold_what_the_ledger_says(org, built, estate, editor, admin):
    _, export = built
    members = _members(services.package_path(export))
    open_at_end, changes = _ledger(org, export)

    findings = orjson.loads(members["findings-open-at-end.json"])
    # Ten instances lacking the tag; at the period's end one is exempted (B), one resolved.
    assert len(findings) == len(HOSTILE) + 3 - 2
    assert [
        (f["finding_id"], f["rule_version"], f["severity"], f["open_since"]) for f in findings
    ] == [(s.finding_id, s.rule_version, s.severity, s.since.isoformat()) for s in open_at_end]
    assert estate.first_finding not in {f["finding_id"] for f in findings}
    assert {f["account_id"] for f in findings} == {ACCOUNT, OTHER_ACCOUNT}
    first = findings[0]
    assert first["resource_arn"].startswith(f"arn:aws:ec2:eu-west-1:{first['account_id']}:")
    assert first["resource_type"] == "ec2:instance" and first["region"] == "eu-west-1"
    assert sorted(first["controls"]) == ["baseline/BL-1", "baseline/BL-2"]

    # The period's changes: A's expiry, B's exemption, the resolution; the findings opened 40
    # days ago, before the period, and the rule's edit changed no status.
    recorded = orjson.loads(members["finding-changes.json"])
    assert [
        (c["at"], c["event"], c["from_status"], c["to_status"], c["finding_id"], c["exemption_id"])
        for c in recorded
    ] == [
        (c.at.isoformat(), c.event, c.from_status, c.to_status, c.finding_id, c.exemption_id)
        for c in changes
    ]
    assert [(c["event"], c["exemption_id"]) for c in recorded] == [
        ("exemption_expired", estate.old_exemption.pk),
        ("exempted", estate.exemption.pk),
        ("resolved", None),
    ]

    # Both exemptions, the old one found through the ledger alone (the finding names B now).
    exemptions = {e["exemption_id"]: e for e in orjson.loads(members["exemptions.json"])}
    assert set(exemptions) == {estate.old_exemption.pk, estate.exemption.pk}
    old, new = exemptions[estate.old_exemption.pk], exemptions[estate.exemption.pk]
    assert (old["justification"], new["justification"]) == (HOSTILE[2], HOSTILE[1])
    assert (old["status_at_end"], new["status_at_end"]) == ("expired", "approved")
    for exemption in (old, new):
        assert exemption["requested_by"] == editor.email
        assert exemption["decided_by"] == admin.email
        assert exemption["requested_at"] and exemption["decided_at"] and exemption["expires_at"]

    controls = orjson.loads(members["controls.json"])
    assert [c["control_id"] for c in controls] == ["BL-1", "BL-2"]
    for control in controls:
        assert control["status_at_end"] == "fail" and control["open_findings"] == len(findings)
        assert control["rules_in_force"] == ["costcenter"]
        assert len(control["daily"]) == PERIOD_DAYS and control["days_passed"] == 0

    # The rule as edited mid-period: version 1 until the edit, version 2 since.
    versions = orjson.loads(members["rule-versions.json"])
    assert [(v["version"], v["severity"]) for v in versions] == [(1, "medium"), (2, "low")]
    assert versions[0]["valid_to"] == versions[1]["valid_from"] and versions[1]["valid_to"] is None
    [policy] = orjson.loads(members["tag-policy-versions.json"])
    assert policy["name"] == HOSTILE[4]

    coverage = orjson.loads(members["scan-coverage.json"])
    assert {(r["account_id"], r["record"]) for r in coverage} == {
        (ACCOUNT, "last_success"),
        (OTHER_ACCOUNT, "failed"),
        (OTHER_ACCOUNT, "no_success"),
    }
    # CSV and JSON carry the same rows.
    for name in package.FILES:
        if name.endswith(".csv"):
            rows = list(csv.reader(io.StringIO(members[name].decode())))
            twin = orjson.loads(members[name.replace(".csv", ".json")])
            assert len(rows) - 1 == len(twin), name


def test_the_package_verifies_and_its_documents_read_back(org, built, estate, tmp_path):
    """Issue 16's "done when", for a package built by the task: both verifiers say intact,
    the OSCAL document is valid under NIST's schema, the PDF names the controls, and one byte
    changed in any member makes both fail naming it."""
    _, export = built
    path = services.package_path(export)
    key_file = public_key_file(org, tmp_path)

    # The standalone script, as docs/evidence.md tells an auditor to run it.
    script = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-I", str(SCRIPT), str(path), "--public-key", str(key_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stdout.startswith("intact:")
    assert f"{len(package.FILES) - 2} files" in script.stdout
    code, text = run_command(path)
    assert code == 0 and "intact:" in text, text

    members = _members(path)
    document = json.loads(members["assessment-results.json"])
    assert oscal_errors(document) == []
    [result] = document["assessment-results"]["results"]
    subjects = [s["subject-uuid"] for o in result["observations"] for s in o.get("subjects", [])]
    assert len(subjects) == len(orjson.loads(members["findings-open-at-end.json"]))
    states = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in result["findings"]}
    assert states == {"BL-1": "not-satisfied", "BL-2": "not-satisfied"}

    reader = pypdf.PdfReader(io.BytesIO(members["summary.pdf"]))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "BL-1" in text and "BL-2" in text and "Baseline" in text

    for name in members:
        changed = rezip(
            path,
            tmp_path / "changed.zip",
            lambda n, data, name=name: (n, flip(data) if n == name else data),
        )
        both_fail(changed, key_file, tmp_path, name)


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
    org, auditor, estate, evidence_root, celery_eager, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    # The connection drops while the changes file is being written: two rows written.
    real = package.query_rows

    def breaks_after_some_rows(query, columns, csv_out, json_lines, on_rows=None):
        if columns != package.CHANGE_COLUMNS:
            return real(query, columns, csv_out, json_lines, on_rows)
        written = []

        def two_then_lost(data):
            written.append(data)
            if len(written) > 2:
                raise ConnectionError("database connection lost: secret-host:5432")
            return csv_out.write(data)

        monkeypatch.setattr(package, "QUERY_FETCH", 1)
        return real(query, columns, SimpleNamespace(write=two_then_lost), json_lines, on_rows)

    monkeypatch.setattr(package, "query_rows", breaks_after_some_rows)
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
    org, auditor, estate, evidence_root, celery_eager, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    def refuses(organization, manifest):
        raise RuntimeError("no key")

    monkeypatch.setattr(manifest, "signature_bytes", refuses)
    request_package(client_for(auditor), org, django_capture_on_commit_callbacks)
    export = _export(org)
    assert export.status == EvidenceExport.FAILED
    assert list(services.organization_folder(org.pk).iterdir()) == []


def test_a_scope_that_cannot_be_built_any_more_says_why(
    org, auditor, estate, evidence_root, celery_eager, django_capture_on_commit_callbacks
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
    evidence_root,
    celery_eager,
    team,
    django_capture_on_commit_callbacks,
):
    client = client_for(auditor)
    request_package(client, org, django_capture_on_commit_callbacks, teams=[team.slug])
    export = _export(org)
    assert export.status == EvidenceExport.READY, export.error
    members = _members(services.package_path(export))
    findings = orjson.loads(members["findings-open-at-end.json"])
    assert {f["account_id"] for f in findings} == {ACCOUNT}
    coverage = orjson.loads(members["scan-coverage.json"])
    assert {r["account_id"] for r in coverage} == {ACCOUNT}
    # A team and an account together: both.
    request_package(
        client, org, django_capture_on_commit_callbacks, teams=[team.slug], accounts=[OTHER_ACCOUNT]
    )
    with tenant_scope(org):
        both = EvidenceExport.objects.order_by("-requested_at", "-pk").first()
    assert both.status == EvidenceExport.READY, both.error
    findings = orjson.loads(_members(services.package_path(both))["findings-open-at-end.json"])
    assert {f["account_id"] for f in findings} == {ACCOUNT, OTHER_ACCOUNT}


def test_progress_is_written_between_files_not_per_row(org, auditor, estate, monkeypatch):
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


def test_the_page_polls_while_building(org, auditor, estate):
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


# --- the audit log written in the background ----------------------------------------------------


class _Recorded(package.threading.Thread):
    """threading.Thread, remembering the names of the threads the builder starts."""

    started: list[str] = []

    def start(self):
        _Recorded.started.append(self.name)
        super().start()


@pytest.mark.django_db(transaction=True)
def test_a_worker_writes_the_slow_parts_beside_the_other_files_and_the_same(
    org, auditor, estate, evidence_root, celery_eager, monkeypatch
):
    """Outside a transaction (a worker's build), the period's audit log, the controls' history
    and the changes are each written by a thread with its own connection while the findings
    files are: the members are still what the sources say (the audit log every event of the
    period as the chain holds it, the changes every ledger change, the controls their status),
    the package verifies, and no thread outlives the build."""
    _Recorded.started = []
    monkeypatch.setattr(package.threading, "Thread", _Recorded)
    commands = []

    class Popen(package.subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            if args[0] == sys.executable:  # not others' (WeasyPrint looks libraries up)
                commands.append(args[2])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(package.subprocess, "Popen", Popen)
    client = client_for(auditor)
    today = timezone.now().date()
    response = client.post(
        f"/o/{org.slug}/evidence/",
        {
            "frameworks": ["baseline"],
            "period_start": (today - timedelta(days=PERIOD_DAYS - 1)).isoformat(),
            "period_end": today.isoformat(),
        },
    )
    assert response.status_code == 302
    export = _export(org)
    assert export.status == EvidenceExport.READY, export.error
    started = ["evidence-audit-log", "evidence-controls", "evidence-changes", "evidence-oscal"]
    assert _Recorded.started == started
    # The audit log's hashing and the OSCAL subjects each in a process of its own.
    assert commands == ["evidence_audit_log", "evidence_oscal_observations"]
    assert not [t for t in package.threading.enumerate() if t.name in started]

    members = _members(services.package_path(export))
    expected = io.BytesIO()
    with tenant_scope(org):
        segment = package.audit_exports.write_chain_segment(
            expected, org.pk, export.period_start, export.period_end
        )
    assert segment["events"] > 0
    assert members[manifest.AUDIT_LOG_NAME] == expected.getvalue()
    listed = json.loads(members[manifest.MANIFEST_NAME])
    assert listed["audit_log"]["last_seq"] == segment["last_seq"]
    open_at_end, changes = _ledger(org, export)
    recorded = orjson.loads(members["finding-changes.json"])
    assert [(c["at"], c["event"], c["finding_id"]) for c in recorded] == [
        (c.at.isoformat(), c.event, c.finding_id) for c in changes
    ]
    assert len(list(csv.reader(io.StringIO(members["finding-changes.csv"].decode())))) == 4
    controls = orjson.loads(members["controls.json"])
    assert [(c["control_id"], c["status_at_end"]) for c in controls] == [
        ("BL-1", "fail"),
        ("BL-2", "fail"),
    ]
    assert all(len(c["daily"]) == PERIOD_DAYS for c in controls)
    document = json.loads(members["assessment-results.json"])
    assert oscal_errors(document) == []
    [result] = document["assessment-results"]["results"]
    subjects = [s for o in result["observations"] for s in o.get("subjects", [])]
    assert (
        len(subjects) == len(open_at_end) == len(orjson.loads(members["findings-open-at-end.json"]))
    )
    code, text = run_command(services.package_path(export))
    assert code == 0 and "intact:" in text, text


@pytest.mark.django_db(transaction=True)
def test_a_failed_build_stops_its_background_audit_log(
    org, auditor, estate, evidence_root, celery_eager, monkeypatch
):
    def breaks(self):
        raise ConnectionError("database connection lost")

    monkeypatch.setattr(package.Build, "write_changes", breaks)
    client = client_for(auditor)
    today = timezone.now().date()
    client.post(
        f"/o/{org.slug}/evidence/",
        {
            "frameworks": ["baseline"],
            "period_start": (today - timedelta(days=PERIOD_DAYS - 1)).isoformat(),
            "period_end": today.isoformat(),
        },
    )
    export = _export(org)
    assert export.status == EvidenceExport.FAILED
    assert not [t for t in package.threading.enumerate() if t.name.startswith("evidence-")]
    assert list(services.organization_folder(org.pk).iterdir()) == []
