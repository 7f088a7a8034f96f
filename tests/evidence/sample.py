"""Package content for the writers' tests, built in memory (the writers never read the
database): a framework with passing, failing and unassessed controls, hostile strings where
members and tag values can put them, and failing resources generated lazily, rule by rule, as
evidence.package reads them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from evidence import content

HOSTILE = "Quote \" and ' <script>alert(1)</script> </script> a\nnew line & <b>bold</b> ünïcødé ✓"
PERIOD = content.Period(
    start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 30, 23, 59, 59, tzinfo=UTC)
)


def days(passed: int, total: int = 30) -> list[content.DayRate]:
    """`total` days, the first `passed` of them compliant, the rest at a lower rate."""
    first = PERIOD.start.date()
    return [
        content.DayRate(
            day=first + timedelta(days=n), compliant=100 if n < passed else 60, in_scope=100
        )
        for n in range(total)
    ]


def control(
    control_id: str, status: str, *, rules: list[str], title: str = "A control", **kw
) -> content.ControlResult:
    passed = kw.pop("days_passed", 30 if status == "pass" else 12)
    return content.ControlResult(
        framework_slug=kw.pop("framework_slug", "soc2"),
        framework_name=kw.pop("framework_name", "SOC 2"),
        framework_version="2017",
        control_id=control_id,
        title=title,
        rule_ids=rules,
        status=status,
        failing_resources=kw.pop("failing_resources", 0 if status == "pass" else 3),
        exempted_findings=kw.pop("exempted_findings", 1),
        days=kw.pop("days", days(passed)),
        days_passed=passed,
    )


def summary(controls: list[content.ControlResult] | None = None, **header) -> content.Summary:
    controls = (
        controls
        if controls is not None
        else [
            control("CC6.1", "fail", rules=["owner-required", "cost-center"]),
            control("CC7.2", "pass", rules=["env-valid"], title=HOSTILE),
            control("CC 8.1 (change)", "fail", rules=["cost-center"]),
            control("CC9.9", "no_rules", rules=[], failing_resources=0),
            control(
                "Req-2.2", "pass", rules=["env-valid"], framework_slug="pci-dss-4",
                framework_name="PCI DSS",
            ),
        ]
    )  # fmt: skip
    return content.Summary(
        header=content.Header(
            package_id=header.pop("package_id", "8d3f9d0e-4c1b-4a55-9a7e-6f0c5b1d2e3f"),
            organization_slug="acme",
            organization_name=header.pop("organization_name", 'Acme <Corp> & "Sons"'),
            scope=content.Scope(
                frameworks=sorted({c.framework_slug for c in controls}) or ["soc2"],
                controls=[],
                teams=["platform"],
                accounts=[],
            ),
            period=PERIOD,
            generated_at=datetime(2026, 1, 31, 8, 0, tzinfo=UTC),
            generated_by=header.pop("generated_by", "Ada Auditor <ada@example.com>"),
            generator="TagSense 1.4.0",
        ),
        controls=controls,
        coverage_gaps=header.pop("coverage_gaps", []),
        coverage_gaps_total=header.pop("coverage_gaps_total", 0),
        exemptions_in_period=4,
        chain=content.ChainCheck(
            intact=True, events_checked=1234, head_seq=1234, head_hash="ab" * 32, detail="ok"
        ),
        files=["manifest.json", "controls.csv", "assessment-results.json"],
    )


def failing(
    count: int, rules: tuple[str, ...] = ("owner-required", "cost-center")
) -> Iterator[content.FailingResource]:
    """`count` failing resources per rule, rule by rule, made one at a time."""
    opened = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for rule in rules:
        for n in range(count):
            yield content.FailingResource(
                control_keys=["soc2/CC6.1"]
                + (["soc2/CC 8.1 (change)"] if rule == "cost-center" else []),
                rule_id=rule,
                rule_version=3,
                resource_arn=f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{n:017x}",
                resource_type="ec2:instance",
                account_id="123456789012",
                region="eu-west-1",
                kind="missing" if n % 2 else "invalid_value",
                found_key=None if n % 2 else f"Owner{HOSTILE if n == 0 else ''}",
                severity="high",
                opened_at=opened,
            )
