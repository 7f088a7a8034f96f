"""The built-in rule library and framework catalogues: they load, hang together, and flag
what an auditor would expect on a few realistic resources."""

import pytest

from policies.engine.reference import ResourceView, evaluate_resource
from policies.engine.spec import SpecError, builtin_rules
from policies.frameworks import builtin_frameworks, parse_framework

RULES = builtin_rules()
RULE_IDS = {rule.id for rule in RULES}


def test_the_four_frameworks_load():
    frameworks = builtin_frameworks()
    assert set(frameworks) == {"soc2", "hipaa", "pci-dss-4.0", "iso-27001-2022"}
    iso = frameworks["iso-27001-2022"]
    assert iso.control("5.9").title == "Inventory of information and other associated assets"
    assert iso.control("8.31").title == (
        "Separation of development, test and production environments"
    )
    assert frameworks["hipaa"].control("§164.310(d)(1)").title == (
        "Standard: Device and media controls"
    )
    assert (
        frameworks["pci-dss-4.0"]
        .control("12.5.1")
        .title.startswith("An inventory of system components that are in scope for PCI DSS")
    )
    assert frameworks["soc2"].control("C1.1").rules == (
        "data-classification-data-stores",
        "data-classification-values",
        "prod-data-classification",
    )


def test_every_control_cites_existing_rules_and_every_framework_has_a_source():
    for framework in builtin_frameworks().values():
        assert framework.source.startswith("https://")
        ids = [control.id for control in framework.controls]
        assert len(ids) == len(set(ids))
        for control in framework.controls:
            assert control.rules and set(control.rules) <= RULE_IDS, control.id


# Every built-in control's identifier and title as the official catalogue words them (the
# sources are named at the top of each data file). A paraphrase, a v3.2.1 PCI number or a
# 2013 ISO number fails here; so does a control added without a title checked here too.
CATALOGUE = {
    "soc2": {
        "CC6.1": "The entity implements logical access security software, infrastructure, and "
        "architectures over protected information assets to protect them from security events "
        "to meet the entity's objectives.",
        "CC8.1": "The entity authorizes, designs, develops or acquires, configures, documents, "
        "tests, approves, and implements changes to infrastructure, data, software, and "
        "procedures to meet its objectives.",
        "C1.1": "The entity identifies and maintains confidential information to meet the "
        "entity's objectives related to confidentiality.",
        "A1.2": "The entity authorizes, designs, develops or acquires, implements, operates, "
        "approves, maintains, and monitors environmental protections, software, data back-up "
        "processes, and recovery infrastructure to meet its objectives.",
    },
    "hipaa": {
        "§164.308(a)(1)(ii)(A)": "Risk analysis (Required)",
        "§164.308(a)(7)(ii)(A)": "Data backup plan (Required)",
        "§164.310(d)(1)": "Standard: Device and media controls",
        "§164.310(d)(2)(iii)": "Accountability (Addressable)",
    },
    "pci-dss-4.0": {
        "6.5.3": "Pre-production environments are separated from production environments and "
        "the separation is enforced with access controls.",
        "8.3.2": "Strong cryptography is used to render all authentication factors unreadable "
        "during transmission and storage on all system components.",
        "12.5.1": "An inventory of system components that are in scope for PCI DSS, including a "
        "description of function/use, is maintained and kept current.",
        # The first sentence; the data file says what follows it.
        "12.5.2": "PCI DSS scope is documented and confirmed by the entity at least once every "
        "12 months and upon significant change to the in-scope environment.",
    },
    "iso-27001-2022": {
        "5.9": "Inventory of information and other associated assets",
        "5.12": "Classification of information",
        "5.13": "Labelling of information",
        "5.17": "Authentication information",
        "5.34": "Privacy and protection of PII",
        "8.13": "Information backup",
        "8.31": "Separation of development, test and production environments",
    },
}


@pytest.mark.parametrize("framework_id", sorted(CATALOGUE))
def test_control_ids_and_titles_are_the_catalogues_own(framework_id):
    framework = builtin_frameworks()[framework_id]
    assert {c.id: c.title for c in framework.controls} == CATALOGUE[framework_id]


def test_every_built_in_control_says_how_its_rules_evidence_it():
    # The framework page shows the rationale under each control for the reviewer.
    for framework in builtin_frameworks().values():
        for control in framework.controls:
            assert len(control.rationale.split()) >= 5, (framework.id, control.id)


FRAMEWORK = """\
id: demo
name: Demo
version: "1"
source: https://example.com/catalogue
controls:
  - id: A.1
    title: First
    rules: [owner-required]
  - id: A.1
    title: Again
    rules: [owner-required, no-such-rule]
  - id: A.2
    rules: []
"""


def test_framework_problems_are_located():
    with pytest.raises(SpecError) as caught:
        parse_framework(FRAMEWORK, RULE_IDS)
    found = [(p.where, p.message, p.line) for p in caught.value.problems]
    assert ("controls[1] (A.1).rules[1]", "no rule with id 'no-such-rule'", 11) in found
    assert (
        "controls[1] (A.1).id",
        "duplicate control id 'A.1', first used by controls[0]",
        9,
    ) in found
    assert ("controls[2].title", "is required", 12) in found


def test_a_framework_with_an_http_source_is_refused():
    text = FRAMEWORK.replace("https://", "http://").split("  - id: A.1\n    title: Again")[0]
    with pytest.raises(SpecError, match="source: 'http://example.com/catalogue' is not"):
        parse_framework(text, RULE_IDS)


def failures(resource: ResourceView) -> dict[str, tuple[str, str | None]]:
    result = {}
    for rule in RULES:
        for violation in evaluate_resource(rule, resource):
            result[rule.id] = (violation.kind, violation.found_key)
    return result


def test_a_well_tagged_production_database_passes_everything():
    db = ResourceView(
        "rds:db",
        {
            "Owner": "payments@example.com",
            "CostCenter": "CC-1042",
            "Environment": "prod",
            "Application": "checkout",
            "DataClassification": "restricted",
            "PCIScope": "in-scope",
            "PHI": "false",
            "BackupPolicy": "daily",
            "aws:cloudformation:stack-name": "checkout-db",
        },
        "111111111111",
        "eu-west-1",
    )
    assert failures(db) == {}


def test_a_hastily_tagged_bucket_gets_the_findings_an_auditor_expects():
    bucket = ResourceView(
        "s3:bucket",
        {
            "owner": "ana@example.com",
            "env": "prod",
            "cost_center": "1042",
            "PCIScope": "in-scope",
            "db_password": "hunter2",
        },
        "111111111111",
        "global",
    )
    assert failures(bucket) == {
        "owner-required": ("wrong_case", "owner"),
        "owner-is-email": ("wrong_case", "owner"),
        "cost-center-required": ("wrong_case", "cost_center"),
        "cost-center-format": ("wrong_case", "cost_center"),
        "environment-required": ("wrong_case", "env"),
        "environment-values": ("wrong_case", "env"),
        "application-required": ("missing", None),
        "data-classification-data-stores": ("missing", None),
        # prod-data-classification reads Environment as spelt: env=prod does not trigger it.
        "pci-cardholder-owner": ("wrong_case", "owner"),
        "phi-scope-data-stores": ("missing", None),
        "no-secret-tags": ("prohibited", "db_password"),
    }


def test_an_instance_is_not_asked_for_data_store_tags():
    instance = ResourceView(
        "ec2:instance",
        {
            "Owner": "ops@example.com",
            "CostCenter": "CC-0001",
            "Environment": "prod",
            "Application": "web",
            "PHI": "true",
        },
        "222222222222",
        "us-east-1",
    )
    # prod -> DataClassification; PHI=true -> restricted is checked only once it is present.
    assert failures(instance) == {"prod-data-classification": ("missing", None)}
    instance.tags["DataClassification"] = "internal"  # type: ignore[index]
    assert failures(instance) == {"phi-classification": ("bad_value", "DataClassification")}


def test_a_lambda_with_too_many_tags_and_a_bad_environment():
    tags = {f"team-tag-{i}": "x" for i in range(44)} | {
        "Owner": "a@example.com",
        "CostCenter": "CC-0002",
        "Environment": "production",
        "Application": "etl",
    }
    function = ResourceView("lambda:function", tags, "111111111111", "eu-west-1")
    assert failures(function) == {
        "environment-values": ("bad_value", "Environment"),
        "max-tags": ("too_many_tags", None),
    }
