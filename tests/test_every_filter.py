"""Every inventory filter and every findings filter, on the page, its CSV and the API, against
what the data says.

The estate holds the tag keys and values a JSON path or a LIKE pattern could misread: a key that
looks like an array index, keys with a dot, a space, a double quote, colons or non-ASCII
letters, values that look like JSON literals or numbers, an empty value, a value with "=", and
a name with the LIKE wildcards % and _."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource
from policies import evaluation
from policies import services as policy_services
from policies.engine.spec import parse_rules
from policies.models import Finding
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

A, B = "111111111111", "222222222222"

# name: (account, region, type, tags, deleted)
ESTATE = {
    "web-1": (A, "eu-west-1", "ec2:instance", {"Owner": "alice", "Environment": "prod",
                                               "cost-center": "42"}, False),
    "web-2": (A, "us-east-1", "ec2:instance", {"owner": "bob", "Environment": "Prod"}, False),
    "bare": (B, "eu-west-1", "ec2:instance", {}, False),
    "logs": (B, "us-east-1", "s3:bucket", {"Environment": "dev", "team.name": "data",
                                           "2024": "budget", "0": "zero"}, False),
    "odd-keys": (A, "eu-west-1", "s3:bucket", {'quote"key': 'x"y', "a b": "c=d", "Owner": "",
                                               "aws:cloudformation:stack-name": "stack-1",
                                               "Émoji✓": "naïve", "db_secret": "x"}, False),
    "100%_done": (B, "eu-west-1", "lambda:function", {"Owner": "carol", "Environment": "true",
                                                      "count": "null"}, False),
    "gone": (A, "eu-west-1", "ec2:instance", {"Owner": "dave"}, True),
}  # fmt: skip

RULES = """
version: 1
rules:
  - {id: owner-required, title: Owner, check: required_key, key: Owner, severity: high}
  - id: env-values
    title: Environment values
    check: allowed_values
    key: Environment
    values: {list: [prod, dev]}
    severity: low
  - {id: no-secrets, title: No secrets, check: prohibited_key, key: "*secret*"}
"""


@pytest.fixture
def estate(org, owner):
    now = timezone.now()
    with tenant_scope(org, actor=Actor.system("test")):
        accounts = {
            aws_id: AwsAccount.objects.create(organization=org, account_id=aws_id, name=aws_id)
            for aws_id in (A, B)
        }
        inventory_services.grant_account(
            accounts[A], TeamFactory(organization=org, name="Payments", slug="payments")
        )
        inventory_services.grant_account(
            accounts[B], TeamFactory(organization=org, name="Payments EU", slug="payments-eu")
        )
        made = {}
        for name, (account, region, rtype, tags, deleted) in ESTATE.items():
            made[name] = Resource.objects.create(
                organization=org,
                account=accounts[account],
                arn=f"arn:aws:x:{region}:{account}:{name}",
                region=region,
                resource_type=rtype,
                resource_id=name,
                name=name,
                tags=tags,
                fingerprint="x",
                first_seen=now,
                last_written=now,
                deleted_at=now if deleted else None,
            )
        for spec in parse_rules(RULES):
            policy_services.create_rule(org, spec)
        evaluation.evaluate_organization(org)
        # One finding resolves: `bare` gets an Owner.
        made["bare"].tags = {"Owner": "erin"}
        made["bare"].save()
        evaluation.evaluate_organization(org, force=True)
    return made


def _live(name):
    return not ESTATE[name][4]


def _where(test):
    return {name for name, (acct, region, rtype, tags, _) in ESTATE.items() if test(
        name, acct, region, rtype, tags
    )}  # fmt: skip


# (query, which resources the data says match, before the live/deleted filter)
INVENTORY_FILTERS = [
    ({}, _where(lambda *_: True)),
    ({"q": "WEB"}, {"web-1", "web-2"}),
    ({"q": "%"}, {"100%_done"}),
    ({"q": "%_D"}, {"100%_done"}),
    ({"q": "0_"}, set()),  # "_" is a character, not a wildcard
    ({"q": "1:odd"}, {"odd-keys"}),  # the ARN: "...:111111111111:odd-keys"
    ({"account": B}, _where(lambda n, acct, *_: acct == B)),
    ({"region": "us-east-1"}, _where(lambda n, a, region, *_: region == "us-east-1")),
    ({"type": "s3:bucket"}, _where(lambda n, a, r, rtype, t: rtype == "s3:bucket")),
    ({"account": A, "region": "eu-west-1", "type": "ec2:instance"}, {"web-1", "gone"}),
    ({"untagged": "on"}, set()),  # `bare` was tagged after the first evaluation
    ({"deleted": "only"}, {"gone"}),
    ({"deleted": "include"}, set(ESTATE)),
    ({"deleted": "include", "has_key": "Owner"},
     {"web-1", "odd-keys", "100%_done", "bare", "gone"}),
    ({"sort": "-name"}, _where(lambda *_: True)),
]  # fmt: skip
KEYS = ["Owner", "owner", "Environment", "2024", "0", "team.name", "a b", 'quote"key',
        "aws:cloudformation:stack-name", "Émoji✓", "db_secret", "absent", "$", "*"]  # fmt: skip
TAGS = ["Environment=prod", "Environment=Prod", "Environment=true", "count=null", "Owner=",
        "cost-center=42", "2024=budget", "0=zero", "team.name=data", "a b=c=d", 'quote"key=x"y',
        "aws:cloudformation:stack-name=stack-1", "Émoji✓=naïve", "Owner=ALICE",
        "absent=x"]  # fmt: skip


def _tags(name):
    return {"Owner": "erin"} if name == "bare" else ESTATE[name][3]


def _expected_inventory(params, expected):
    if params.get("deleted") == "only":
        return {n for n in expected if not _live(n)}
    if params.get("deleted") == "include":
        return set(expected)
    return {n for n in expected if _live(n)}


def _cases():
    yield from INVENTORY_FILTERS
    for key in KEYS:
        yield {"has_key": key}, {n for n in ESTATE if key in _tags(n)}
        yield {"missing_key": key}, {n for n in ESTATE if key not in _tags(n)}
    for tag in TAGS:
        key, _, value = tag.partition("=")
        yield {"tag": tag}, {n for n in ESTATE if _tags(n).get(key) == value}


def test_every_inventory_filter_on_page_csv_and_api(org, owner, estate):
    """One test walks every case (one estate, built once): the failures are listed together."""
    client = client_for(owner)
    failures = [f"{params}: {problem}" for params, matches in _cases()
                if (problem := _inventory_problem(client, org, params, matches))]  # fmt: skip
    assert not failures, "\n".join(failures)


def _inventory_problem(client, org, params, matches) -> str | None:
    expected = _expected_inventory(params, matches)
    url = f"/o/{org.slug}/inventory/"
    page = client.get(url, params)
    if page.status_code != 200:
        return f"page answered {page.status_code}"
    shown = [r.name for r in page.context["resources"]]
    if set(shown) != expected:
        return f"page shows {sorted(shown)}, the data says {sorted(expected)}"
    exported = client.get(url, {**params, "format": "csv"})
    if exported.status_code != 200:
        return f"CSV answered {exported.status_code}"
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    if [r["name"] for r in rows] != shown:  # the same rows, in the same order
        return f"CSV rows {[r['name'] for r in rows]}, the page's {shown}"
    for row in rows:
        tags = ";".join(f"{k}={v}" for k, v in sorted(_tags(row["name"]).items()))
        if row["tags"] != tags:
            return f"CSV tags of {row['name']}: {row['tags']!r}, the data's {tags!r}"
    api = client.get(f"/api/v1/o/{org.slug}/inventory/resources/", params)
    if api.status_code != 200:
        return f"API answered {api.status_code}"
    listed = {r["name"] for r in api.json()["results"]}
    if listed != expected:
        return f"API lists {sorted(listed)}, the data says {sorted(expected)}"
    return None


# Every finding the rules give on the estate: (rule, resource, status, found key).
FINDINGS = {
    ("owner-required", "web-2", "open", "owner"),  # the key in another case
    ("owner-required", "logs", "open", None),
    ("owner-required", "bare", "resolved", None),
    ("env-values", "web-2", "open", "Environment"),
    ("env-values", "100%_done", "open", "Environment"),
    ("no-secrets", "odd-keys", "open", "db_secret"),
}
RULE_INFO = {  # rule: (severity, key)
    "owner-required": ("high", "Owner"),
    "env-values": ("low", "Environment"),
    "no-secrets": ("medium", "*secret*"),
}
TEAMS = {A: ["payments"], B: ["payments-eu"]}


def _finding_cases():
    rows = [
        {"rule": rule, "name": name, "status": status, "severity": RULE_INFO[rule][0],
         "keys": {found, RULE_INFO[rule][1]}, "account": ESTATE[name][0], "type": ESTATE[name][2],
         "teams": set(TEAMS[ESTATE[name][0]])}
        for rule, name, status, found in FINDINGS
    ]  # fmt: skip

    def where(field, value):
        return {(r["rule"], r["name"]) for r in rows
                if value in (r[field] if isinstance(r[field], set) else {r[field]})}  # fmt: skip

    yield {}, {(r["rule"], r["name"]) for r in rows}
    for rule in (*RULE_INFO, "absent"):
        yield {"rule": rule}, where("rule", rule)
    for severity in ("high", "medium", "low", "HIGH"):
        yield {"severity": severity}, where("severity", severity)
    for status in ("open", "resolved", "exempted"):
        yield {"status": status}, where("status", status)
    for account in (A, B, "1111"):
        yield {"account": account}, where("account", account)
    for rtype in ("ec2:instance", "s3:bucket", "lambda:function", "s3"):
        yield {"type": rtype}, where("type", rtype)
    for team in ("payments", "payments-eu", "Payments", "pay", "payments%", '"payments"'):
        yield {"team": team}, where("teams", team)
    for key in ("Owner", "Environment", "db_secret", "*secret*", "owner", "absent"):
        yield {"key": key}, where("keys", key)
    yield {"account": B, "status": "open", "rule": "owner-required"}, {("owner-required", "logs")}


def test_every_findings_filter_on_page_csv_and_api(org, owner, estate):
    client = client_for(owner)
    arns = {r.arn: name for name, r in estate.items()}
    failures = [f"{params}: {problem}" for params, expected in _finding_cases()
                if (problem := _findings_problem(client, org, arns, params, expected))]  # fmt: skip
    assert not failures, "\n".join(failures)


def _findings_problem(client, org, arns, params, expected) -> str | None:
    page = client.get(f"/o/{org.slug}/findings/", params)
    if page.status_code != 200:
        return f"page answered {page.status_code}"
    shown = [(f.rule.rule_id, f.resource.name) for f in page.context["page"].object_list]
    if set(shown) != expected:
        return f"page shows {sorted(shown)}, the data says {sorted(expected)}"
    exported = client.get(f"/o/{org.slug}/findings/", {**params, "format": "csv"})
    if exported.status_code != 200:
        return f"CSV answered {exported.status_code}"
    body = b"".join(exported.streaming_content).decode()
    rows = [(r["rule"], arns[r["arn"]]) for r in csv.DictReader(io.StringIO(body))]
    if rows != shown:
        return f"CSV rows {rows}, the page's {shown}"
    api = client.get(f"/api/v1/o/{org.slug}/policies/findings/", params)
    if api.status_code != 200:
        return f"API answered {api.status_code}"
    listed = {(f["rule"], arns[f["arn"]]) for f in api.json()["results"]}
    if listed != expected:
        return f"API lists {sorted(listed)}, the data says {sorted(expected)}"
    return None


def test_the_estate_gives_the_findings_the_rules_say(org, estate):

    with tenant_scope(org):
        found = {
            (f.rule.rule_id, f.resource.name, f.status, f.found_key)
            for f in Finding.objects.for_org(org).select_related("rule", "resource")
        }
    assert found == FINDINGS
