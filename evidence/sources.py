"""The package's seams to the other parts of issue 16: the finding ledger and the versions in
force (policies.history), the audit chain's segment (audit.exports), the OSCAL and PDF writers
(evidence.oscal, evidence.pdf) and the signing (evidence.keys, evidence.manifest). One function
each, so evidence.package makes one call per file and a test can stand in for one source.

The imports are inside the functions while those modules are written on their own branches;
once merged they move to the top of this module (and the noqa comments go).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import IO, Any

from accounts.models import Organization
from policies.models import Control

from .content import FailingResource, Header, Summary

# --- the ledger (policies.history) ---------------------------------------------------------


def findings_at(
    organization: Organization,
    at: datetime,
    *,
    rule_ids: list[str],
    account_pks: list[int] | None,
) -> Iterator[Any]:
    """FindingState rows of the findings open at `at` (streamed)."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.findings_at(organization, at, rule_ids=rule_ids, account_pks=account_pks)


def changes_between(
    organization: Organization,
    start: datetime,
    end: datetime,
    *,
    rule_ids: list[str],
    account_pks: list[int] | None,
) -> Iterator[Any]:
    """FindingChange rows, every state change of a finding in [start, end] (streamed)."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.changes_between(
        organization, start, end, rule_ids=rule_ids, account_pks=account_pks
    )


def control_status_at(
    organization: Organization, control: Control, at: datetime, *, account_pks: list[int] | None
) -> Any:
    """ControlState(status, open_findings, failing_resources, exempted_findings,
    rules_in_force) of one control at `at`."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.control_status_at(organization, control, at, account_pks=account_pks)


def daily_control_states(
    organization: Organization,
    control: Control,
    first_day: date,
    last_day: date,
    *,
    account_pks: list[int] | None,
) -> list[tuple[date, int, int, bool]]:
    """(day, compliant, in_scope, passed) per day, oldest first."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.daily_control_states(
        organization, control, first_day, last_day, account_pks=account_pks
    )


def rule_versions_in_force(organization: Organization, start: datetime, end: datetime) -> list:
    """RuleInterval(rule_id, version, change, active, spec, changed_by, valid_from, valid_to)."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.rule_versions_in_force(organization, start, end)


def tag_policy_versions_in_force(
    organization: Organization, start: datetime, end: datetime
) -> list:
    """PolicyInterval(name, version, change, target_type, target, position, document,
    changed_by, valid_from, valid_to)."""
    from policies import history  # noqa: PLC0415 - on the ledger's branch until merged

    return history.tag_policy_versions_in_force(organization, start, end)


# --- the audit chain (audit.exports) -------------------------------------------------------


def write_chain_segment(
    fp: IO[bytes], organization_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """audit-log.jsonl: the period's events with their hashes; returns what the manifest says
    of the segment."""
    from audit import exports  # noqa: PLC0415 - write_chain_segment is on the signing branch

    return exports.write_chain_segment(fp, organization_id, start, end)


# --- the writers and the signature (evidence.oscal, evidence.pdf, keys, manifest) -----------


def write_assessment_results(
    fp: IO[bytes], summary: Summary, failing: Iterable[FailingResource]
) -> None:
    from . import oscal  # noqa: PLC0415 - on its own branch until merged

    oscal.write_assessment_results(fp, summary, failing)


def write_summary_pdf(fp: IO[bytes], summary: Summary) -> None:
    from . import pdf  # noqa: PLC0415 - on its own branch until merged

    pdf.write_summary_pdf(fp, summary)


def active_key(organization: Organization) -> Any:
    """The organization's signing key (an EvidenceKey), created on first use."""
    from . import keys  # noqa: PLC0415 - on the signing branch until merged

    return keys.active_key(organization)


def manifest_bytes(
    header: Header,
    files: list[tuple[str, int, str]],
    audit_segment: dict[str, Any],
    chain_head: dict[str, Any],
    key: Any,
) -> bytes:
    from . import manifest  # noqa: PLC0415 - on the signing branch until merged

    return manifest.manifest_bytes(header, files, audit_segment, chain_head, key)


def signature_bytes(organization: Organization, manifest_data: bytes) -> bytes:
    from . import manifest  # noqa: PLC0415 - on the signing branch until merged

    return manifest.signature_bytes(organization, manifest_data)
