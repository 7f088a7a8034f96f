"""What an evidence package says, as plain data: evidence.package gathers it from the ledger,
the rules' versions, the scans and the audit log; the writers (evidence.oscal for
assessment-results.json, evidence.pdf for summary.pdf, the CSV and JSON files) only render it.
Nothing here touches the database.

Untrusted text (tag values, rule titles written by members, justifications, actor labels)
reaches these objects as it was stored: every writer escapes it for its format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, timezone-aware
    end: datetime  # inclusive: the instant "at period end" means


@dataclass(frozen=True)
class Scope:
    frameworks: list[str]  # slugs, never empty once resolved
    controls: list[str]  # "<framework>/<control>"; empty: every control of the frameworks
    teams: list[str]  # slugs; empty: the whole organization
    accounts: list[str]  # 12-digit AWS account ids; empty: the whole organization


@dataclass(frozen=True)
class Header:
    """Who asked for what: the first page of summary.pdf, the OSCAL metadata, manifest.json."""

    package_id: str  # the export's UUID (also the OSCAL document's uuid source)
    organization_slug: str
    organization_name: str
    scope: Scope
    period: Period
    generated_at: datetime
    generated_by: str  # the requester's label
    generator: str  # "TagSense <version>"


@dataclass(frozen=True)
class DayRate:
    day: date
    compliant: int
    in_scope: int

    @property
    def rate(self) -> float | None:
        return round(100 * self.compliant / self.in_scope, 1) if self.in_scope else None


@dataclass(frozen=True)
class ControlResult:
    """One control of one framework, as evaluated at the period's end and over the period."""

    framework_slug: str
    framework_name: str
    framework_version: str
    control_id: str
    title: str
    rule_ids: list[str]  # the rules it cites
    status: str  # "pass", "fail" or "no_rules", at period end
    failing_resources: int  # resources with an open finding of its rules at period end
    exempted_findings: int  # findings of its rules exempted at period end
    days: list[DayRate]  # one per day of the period (oldest first), from the recorded history
    days_passed: int  # days the control passed at the day's end

    @property
    def key(self) -> str:
        return f"{self.framework_slug}/{self.control_id}"

    @property
    def pass_rate(self) -> float | None:
        """Share of the period's days it passed, as a percentage."""
        return round(100 * self.days_passed / len(self.days), 1) if self.days else None


@dataclass(slots=True)
class FailingResource:
    """A finding open at period end (streamed: there may be a million, so not frozen: a frozen
    dataclass's __init__ costs three times as much)."""

    control_keys: list[str]  # the controls in scope whose rules it fails
    rule_id: str
    rule_version: int
    resource_arn: str
    resource_type: str
    account_id: str
    region: str
    kind: str  # missing, invalid_value, ...
    found_key: str | None
    severity: str
    opened_at: datetime  # when this episode of the finding opened


@dataclass(frozen=True)
class CoverageGap:
    """A scan unit (account x region x resource type) failed or partial in the period, or never
    scanned successfully in it."""

    account_id: str
    region: str
    resource_type: str
    problem: str  # "failed", "partial", "not scanned in the period"
    at: datetime | None
    detail: str


@dataclass(frozen=True)
class ChainCheck:
    """The portal's own verification of the audit chain at export time (audit.services)."""

    intact: bool
    events_checked: int
    head_seq: int | None
    head_hash: str
    detail: str


@dataclass
class Summary:
    """Everything summary.pdf shows: one page per framework at most, never a row per resource."""

    header: Header
    controls: list[ControlResult]
    coverage_gaps: list[CoverageGap]  # capped by the builder; coverage_gaps_total says how many
    coverage_gaps_total: int
    exemptions_in_period: int
    chain: ChainCheck
    files: list[str] = field(default_factory=list)  # the package's other files, for the reader
