"""The SQL engine (policies/engine/sql.py) gives the same violations as the reference evaluator
(policies/engine/reference.py): kind and found key, for every resource and rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Team
from inventory import services
from inventory.models import AwsAccount, Resource
from policies.engine import sql
from policies.engine.reference import ResourceView, evaluate_resource
from policies.engine.spec import RuleSpec, Scope, TagSelector, ValueMatcher, parse_rules, vet_regex
from tagsense.tenancy.db import tenant_scope

pytestmark = pytest.mark.django_db

KEYS = [
    "Owner", "owner", "OWNER", "owner_email", "Owner_Email", "Contact", "Environment",
    "environment", "env", "ENV", "Stage", "CostCenter", "costcenter", "Managed", "aws:createdBy",
    "AWS:CloudFormation:stack-name", "Ö", "ö", "db_password", "My_Secret", "x%y", "xay", "a_b",
    "Team", "Z", "a", 'a"b', "Own\\er", "own\ter", "Password",
]  # fmt: skip
VALUES = ["prod", "Prod", "dev", "", "true", "CC-1234", "cc-1234", "CC-12345", "a\nb", "x.y",
          "x\ny", "ab", "abab", "%_", "Ö", "zz\n"]  # fmt: skip
REGEXES = ["^CC-[0-9]{4}$", "prod|dev", "[a-z]+", "x.y", "a$\n?", "[^a]b", "(?:ab){1,3}", ".*",
           "zz$", "[.]y", "x\\.y", "[]a]b?"]  # fmt: skip
GLOBS = ["*", "prod*", "?b", "x?y", "%_", "*\n*", ""]
# AWS tag policies' values: `*` any characters, `?`, `%`, `_` and `\` themselves.
WILDCARDS = ["prod", "*", "pr*", "*d", "C*-*4", "?b", "%_", "x*y", "a\\*", "", "*\n*", "Ö*"]
PROHIBITED = ["*password*", "*secret*", "x?y", "a_b", "x%y", "ö*", "Owner", '*"*', "own?er",
              "*\\*"]  # fmt: skip
TYPES = ["ec2:instance", "ec2:vpc", "s3:bucket", "custom:thing"]
ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["eu-west-1", "us-east-1", "global"]

tag_maps = st.dictionaries(
    st.one_of(st.sampled_from(KEYS), st.text(alphabet="aAbB:_ö", min_size=1, max_size=4)),
    st.one_of(st.sampled_from(VALUES), st.text(alphabet="ab\n.", max_size=3)),
    max_size=7,
)
resources = st.lists(
    st.tuples(
        st.sampled_from(TYPES), tag_maps, st.sampled_from(ACCOUNTS), st.sampled_from(REGIONS)
    ),
    min_size=1,
    max_size=6,
)
selectors = st.one_of(
    st.none(),
    st.builds(
        TagSelector,
        st.sampled_from(["Environment", "Owner", "Managed"]),
        st.sampled_from([(), ("prod",), ("true", "")]),
    ),
)
scopes = st.builds(
    Scope,
    resource_types=st.sampled_from([("*",), ("ec2:*",), ("s3:bucket", "ec2:vpc"), ("custom:*",)]),
    accounts=st.sampled_from([(), (ACCOUNTS[0],)]),
    regions=st.sampled_from([(), ("eu-west-1", "global")]),
    teams=st.sampled_from([(), ("payments",), ("data", "nobody")]),
    tag_selector=selectors,
)
value_matchers = st.one_of(
    st.builds(
        ValueMatcher,
        st.just("list"),
        items=st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True).map(tuple),
    ),
    st.builds(ValueMatcher, st.just("glob"), pattern=st.sampled_from(GLOBS)),
    st.builds(ValueMatcher, st.just("regex"), pattern=st.sampled_from(REGEXES)),
    st.builds(
        ValueMatcher,
        st.just("wildcards"),
        items=st.lists(st.sampled_from(WILDCARDS), min_size=1, max_size=4, unique=True).map(tuple),
    ),
)
keyed = st.sampled_from(["Owner", "Environment", "CostCenter", "Ö", "a", 'A"B'])
aliases = st.lists(
    st.sampled_from(["owner_email", "env", "Stage", "ö", "Contact"]), max_size=2, unique=True
).map(tuple)


@st.composite
def rules(draw):
    check = draw(
        st.sampled_from(
            ["required_key", "allowed_values", "prohibited_key", "max_tags", "duplicate_key"]
        )
    )
    common = {"id": "r", "title": "t", "when": draw(selectors), "scope": draw(scopes)}
    if check == "max_tags":
        return RuleSpec(check=check, max=draw(st.integers(0, 5)), **common)
    if check == "prohibited_key":
        patterns = draw(st.lists(st.sampled_from(PROHIBITED), min_size=1, max_size=3, unique=True))
        return RuleSpec(check=check, key=patterns[0], aliases=tuple(patterns[1:]), **common)
    values = draw(value_matchers) if check == "allowed_values" else None
    return RuleSpec(check=check, key=draw(keyed), aliases=draw(aliases), values=values, **common)


@pytest.fixture
def estate(org, team):
    """Two AWS accounts: 111... held by team payments, 222... by payments and data."""

    with tenant_scope(org):
        payments = Team.objects.create(organization=org, slug="payments", name="Payments")
        data = Team.objects.create(organization=org, slug="data", name="Data")
        accounts = {a: AwsAccount.objects.create(organization=org, account_id=a) for a in ACCOUNTS}
        services.grant_account(accounts[ACCOUNTS[0]], payments)
        services.grant_account(accounts[ACCOUNTS[1]], payments)
        services.grant_account(accounts[ACCOUNTS[1]], data)
    teams = {ACCOUNTS[0]: frozenset({"payments"}), ACCOUNTS[1]: frozenset({"payments", "data"})}
    return org, accounts, teams


def test_every_regex_of_the_test_is_accepted():
    assert [p for p in REGEXES if vet_regex(p) is not None] == []


def _compare(estate, rows, rule):
    """The violations of one rule, checked against the reference evaluator."""
    return _compare_many(estate, rows, [rule])[0]


def _compare_many(estate, rows, rule_list):
    """The violations of several rules in one statement (policies.engine.sql evaluates every rule in
    one pass over the resources), checked rule by rule against the reference evaluator.
    Returns each rule's sorted (kind, found key) pairs."""

    org, accounts, teams = estate
    now = timezone.now()
    with tenant_scope(org):
        created = Resource.objects.bulk_create(
            Resource(
                organization=org,
                account=accounts[account],
                arn=f"arn:{i}",
                region=region,
                resource_type=rtype,
                resource_id=str(i),
                tags=tags,
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )
            for i, (rtype, tags, account, region) in enumerate(rows)
        )
        try:
            text, params = sql.violations_sql(list(enumerate(rule_list)), org.pk)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT tag, resource_id, kind, found_key FROM ({text}) x", params)
                got = {(tag, rid): (kind, found) for tag, rid, kind, found in cursor.fetchall()}
            for tag, rule in enumerate(rule_list):
                for resource, (rtype, tags, account, region) in zip(created, rows, strict=True):
                    view = ResourceView(rtype, tags, account, region, teams[account])
                    expected = [(v.kind, v.found_key) for v in evaluate_resource(rule, view)]
                    key = (tag, resource.pk)
                    assert ([got[key]] if key in got else []) == expected, (rule, tags)
        finally:
            Resource.objects.filter(pk__in=[r.pk for r in created]).delete()
    return [
        sorted((v for (tag, _), v in got.items() if tag == index), key=str)
        for index in range(len(rule_list))
    ]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=resources, rule=rules())
def test_sql_and_python_agree(estate, rows, rule):
    _compare(estate, rows, rule)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=resources, rule_list=st.lists(rules(), min_size=2, max_size=6))
def test_sql_and_python_agree_with_many_rules_in_one_pass(estate, rows, rule_list):
    """Rules sharing a key and aliases share one case-variant search, max-tags rules one count:
    sharing never changes a rule's answer."""
    _compare_many(estate, rows, rule_list)


def test_known_cases(estate):
    """Case variants, aliases, aws: keys and many tags, spelled out."""
    [owner, env, secrets, many] = parse_rules(
        """
version: 1
rules:
  - {id: owner, title: o, check: required_key, key: Owner, aliases: [owner_email]}
  - {id: env, title: e, check: allowed_values, key: Environment, values: {regex: 'prod|dev'}}
  - {id: sec, title: s, check: prohibited_key, key: "*password*"}
  - {id: many, title: m, check: max_tags, max: 2}
"""
    )
    rows = [
        ("ec2:instance", {"owner_email": "a", "OWNER": "b"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"Environment": "prod\n"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"DB_Password": "x", "aws:a": "1", "AWS:b": "2", "c": "3"}, ACCOUNTS[0],
         "eu-west-1"),
        ("ec2:instance", {"a": "1", "b": "2", "c": "3"}, ACCOUNTS[1], "global"),
    ]  # fmt: skip
    found = [_compare(estate, rows, rule) for rule in (owner, env, secrets, many)]
    assert found == [
        [("missing", None), ("missing", None), ("missing", None), ("wrong_case", "OWNER")],
        [("bad_value", "Environment")],
        [("prohibited", "DB_Password")],
        [("too_many_tags", None)],
    ]


def test_duplicate_spellings_and_aws_wildcards(estate):
    """duplicate_key reports another spelling only beside the exact key (what AWS reports for
    CostCenter and costCenter on one resource); wildcards: `*` only, `?` `%` `_` themselves,
    and a list of hundreds of values (no regex of alternatives, no length limit)."""
    [dup] = parse_rules(
        """
version: 1
rules:
  - {id: dup, title: d, check: duplicate_key, key: CostCenter, aliases: [cost-center]}
"""
    )
    # The parser refuses ? and % in values (no AWS tag holds them); resources may.
    wild = RuleSpec(
        id="wild",
        title="w",
        check="allowed_values",
        key="Team",
        values=ValueMatcher("wildcards", items=("t?-*", "%_")),
    )
    rows = [
        ("ec2:instance", {"CostCenter": "1", "costCenter": "1", "COSTCENTER": "2"}, ACCOUNTS[0],
         "eu-west-1"),
        ("ec2:instance", {"costCenter": "1"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"CostCenter": "1", "cost-center": "1"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"CostCenter": "1", "Team": "t?-x"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"Team": "ta-x"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"Team": "ab"}, ACCOUNTS[0], "eu-west-1"),
    ]  # fmt: skip
    assert _compare(estate, rows, dup) == [
        ("wrong_case", "COSTCENTER"),
        ("wrong_case", "cost-center"),
    ]
    assert _compare(estate, rows, wild) == [("bad_value", "Team"), ("bad_value", "Team")]
    many = ValueMatcher("wildcards", items=tuple(f"team-{i:03d}-*" for i in range(400)))
    rule = RuleSpec(id="many", title="m", check="allowed_values", key="Team", values=many)
    rows = [("ec2:instance", {"Team": v}, ACCOUNTS[0], "eu-west-1")
            for v in ("team-399-x", "team-400-x", "team-000-")]  # fmt: skip
    assert _compare(estate, rows, rule) == [("bad_value", "Team")]


def test_keys_that_json_escapes_are_found(estate):
    """The engine looks for keys in the tags' JSON text before enumerating them; a key holding
    a quote, a backslash or a control character is spelled differently there (escaped), and
    is still found. Rule files refuse such keys (spec), resources may carry them."""
    [required, prohibited, allowed, many] = parse_rules(
        """
version: 1
rules:
  - {id: q, title: q, check: required_key, key: K}
  - {id: b, title: b, check: prohibited_key, key: "*x*"}
  - {id: t, title: t, check: allowed_values, key: K, values: {list: [x]}}
  - {id: m, title: m, check: max_tags, max: 1}
"""
    )
    rules = [
        replace(required, key='A"B'),
        replace(prohibited, key="*\\*"),
        replace(allowed, key="Tab\tKey"),
        many,
        replace(prohibited, key="*word*"),
    ]
    rows = [
        ("ec2:instance", {'a"b': "1", "Own\\er": "2"}, ACCOUNTS[0], "eu-west-1"),
        ("ec2:instance", {"tab\tkey": "x", 'pass"word"\n': "y"}, ACCOUNTS[0], "eu-west-1"),
    ]
    assert _compare_many(estate, rows, rules) == [
        [("missing", None), ("wrong_case", 'a"b')],
        [("prohibited", "Own\\er")],
        [("wrong_case", "tab\tkey")],
        [("too_many_tags", None), ("too_many_tags", None)],
        [("prohibited", 'pass"word"\n')],
    ]


@pytest.mark.parametrize(
    "pattern",
    [r"\d{4}", r"\w+", r"a\sb", r"\x41", "a{,3}", "a{x", "[[:alpha:]]", "[a[.b]"],
)
def test_regex_syntax_the_two_dialects_read_differently_is_refused(pattern):
    assert vet_regex(pattern) is not None


def test_a_newline_is_not_any_character_and_dollar_allows_a_final_newline(estate):
    """Python's . never matches a newline and $ also matches before a final one: the SQL
    engine rewrites both (policies.engine.sql.postgres_regex)."""
    [rule] = parse_rules(
        "version: 1\nrules:\n  - {id: v, title: v, check: allowed_values, key: K, "
        'values: {regex: "a.b$\\n?"}}\n'
    )
    rows = [("ec2:vpc", {"K": v}, ACCOUNTS[0], "eu-west-1") for v in ("a\nb", "axb\n", "axb")]
    assert _compare(estate, rows, rule) == [("bad_value", "K")]
