"""The policy-as-code format: what a user sees when a file is wrong, and the round trip."""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine.spec import (
    AWS_MAX_USER_TAGS,
    DESCRIPTION_RE,
    MAX_TEXT_BYTES,
    TITLE_RE,
    RuleSpec,
    Scope,
    SpecError,
    TagSelector,
    ValueMatcher,
    builtin_rules,
    dump_rules,
    parse_rules,
    vet_regex,
)


def yaml_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def problems(text: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(SpecError) as caught:
        parse_rules(text)
    return [(p.where, p.message, p.line) for p in caught.value.problems]


GOOD = yaml_text(
    """
    version: 1
    rules:
      - id: owner-required
        title: Every resource names its Owner
        check: required_key
        key: Owner
        aliases: [owner_email]
        severity: high
        enforcement: enforced
      - id: env-values
        title: Environment values
        check: allowed_values
        key: Environment
        values: {list: [prod, dev]}
        when: {key: Team}
        scope:
          resource_types: [ec2:instance, "s3:*"]
          accounts: ["111111111111"]
          regions: [eu-west-1, global]
          teams: [platform]
          tag_selector: {key: Managed, values: ["true"]}
      - id: few-tags
        title: Few tags
        check: max_tags
        max: 10
    """
)


def test_a_good_file_gives_every_rule_with_defaults_filled_in():
    owner, env, few = parse_rules(GOOD)
    assert owner == RuleSpec(
        id="owner-required",
        title="Every resource names its Owner",
        check="required_key",
        key="Owner",
        aliases=("owner_email",),
        severity="high",
        enforcement="enforced",
    )
    assert owner.scope == Scope(resource_types=("*",))
    assert env.values == ValueMatcher("list", items=("prod", "dev"))
    assert env.when == TagSelector("Team", ())
    assert env.scope == Scope(
        resource_types=("ec2:instance", "s3:*"),
        accounts=("111111111111",),
        regions=("eu-west-1", "global"),
        teams=("platform",),
        tag_selector=TagSelector("Managed", ("true",)),
    )
    assert (env.severity, env.enforcement) == ("medium", "report")
    assert few.max == 10 and few.key == ""


def test_json_is_accepted_too():
    text = (
        '{"version": 1, "rules": [{"id": "a", "title": "A", "check": "required_key",'
        ' "key": "Owner"}]}'
    )
    assert parse_rules(text)[0].key == "Owner"


def test_malformed_yaml_names_the_line():
    text = yaml_text(
        """
        version: 1
        rules:
          - id: a
            title: [unclosed
        """
    )
    ((where, message, line),) = problems(text)
    assert where == "file" and "not valid YAML" in message
    assert line in (4, 5)


def test_every_problem_is_reported_at_once_with_rule_field_and_line():
    text = yaml_text(
        """
        version: 1
        rules:
          - id: owner-required
            title: Owner
            check: required_key
            key: Owner
            colour: blue
          - id: bad-regex
            title: Cost centre
            check: allowed_values
            key: CostCenter
            values: {regex: "CC-[0-9"}
          - id: typed
            title: Typed
            check: required_key
            key: Owner
            scope: {resource_types: [ec2:instanse]}
            severity: urgent
        """
    )
    found = problems(text)
    assert ("rules[0] (owner-required).colour", found[0][1], 7) == found[0]
    assert "unknown field 'colour'" in found[0][1]
    where, message, line = found[1]
    assert where == "rules[1] (bad-regex).values.regex" and line == 12
    assert "not a valid regular expression" in message
    where, message, line = found[2]
    assert where == "rules[2] (typed).scope.resource_types[0]" and line == 17
    assert "unknown resource type 'ec2:instanse'" in message
    assert found[3][:1] == ("rules[2] (typed).severity",) and found[3][2] == 18
    assert len(found) == 4


def test_duplicate_ids_point_at_the_second_one():
    text = yaml_text(
        """
        version: 1
        rules:
          - {id: owner, title: A, check: required_key, key: Owner}
          - {id: owner, title: B, check: required_key, key: owner}
        """
    )
    assert problems(text) == [
        ("rules[1] (owner).id", "duplicate id 'owner', first used by rules[0]", 4)
    ]


def test_duplicate_mapping_keys_are_not_silently_overwritten():
    text = yaml_text(
        """
        version: 1
        rules:
          - id: a
            title: A
            check: required_key
            key: Owner
            key: owner
        """
    )
    assert problems(text) == [("rules[0].key", "appears twice", 7)]


def test_unquoted_yes_and_numbers_are_refused_with_a_hint():
    text = yaml_text(
        """
        version: 1
        rules:
          - id: a
            title: A
            check: allowed_values
            key: Backup
            values: {list: [yes, 1234]}
        """
    )
    found = problems(text)
    assert [w for w, _, _ in found] == [
        "rules[0] (a).values.list[0]",
        "rules[0] (a).values.list[1]",
    ]
    assert "quote" in found[0][1] and "quotes" in found[1][1]


@pytest.mark.parametrize(
    ("rule", "where", "fragment"),
    [
        ("{id: a, title: A, check: allowed_values, key: K}", "values", "is required"),
        ("{id: a, title: A, check: required_key}", "key", "is required by check required_key"),
        ("{id: a, title: A, check: max_tags, max: 51}", "max", "between 0 and 50"),
        ("{id: a, title: A, check: max_tags, key: K}", "key", "not used by check max_tags"),
        ("{id: a, title: A, check: required_key, key: 'aws:x'}", "key", "reserved"),
        ("{id: a, title: A, check: required_key, key: K, max: 3}", "max", "only used"),
        ("{id: a, title: A, check: audit, key: K}", "check", "is not one of"),
        ("{id: A_1, title: A, check: required_key, key: K}", "id", "is not a slug"),
        (
            "{id: a, title: A, check: allowed_values, key: K, values: {list: [x], glob: y}}",
            "values",
            "exactly one of",
        ),
        (
            "{id: a, title: A, check: required_key, key: K, scope: {accounts: ['12345']}}",
            "scope.accounts[0]",
            "12-digit",
        ),
        (
            "{id: a, title: A, check: required_key, key: K, scope: {regions: [Europe]}}",
            "scope.regions[0]",
            "AWS region",
        ),
        (
            "{id: a, title: A, check: required_key, key: K, when: {values: [x]}}",
            "when.key",
            "is required",
        ),
        (
            "{id: a, title: A, check: required_key, key: K, aliases: [K]}",
            "aliases[0]",
            "the key itself",
        ),
    ],
)
def test_rule_shape_problems(rule, where, fragment):
    found = problems(f"version: 1\nrules:\n  - {rule}\n")
    assert any(w.endswith(where) and fragment in m and line == 3 for w, m, line in found), found


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("rules: []\n", "version", "is required"),
        ("version: 2\nrules: []\n", "version", "unsupported version 2"),
        ("version: 1\nrules: {}\n", "rules", "expected a list"),
        ("- 1\n", "file", "expected a mapping"),
        ("version: 1\nrules: []\n---\nversion: 1\n", "file", "exactly one YAML document"),
        ("version: 1\nrules: &r []\nmore: *r\n", "file", "anchors and aliases"),
        ("version: 1\nrules: !!python/object:os.system []\n", "rules", "unsupported YAML tag"),
        ("version: 1\nrules: [2026-01-01]\n", "rules[0]", "unsupported YAML tag"),
    ],
)
def test_file_structure_problems(text, where, fragment):
    found = problems(text)
    assert any(w == where and fragment in m for w, m, _ in found), found


@pytest.mark.parametrize(
    "title", ["''", "'  '", '"two\\nlines"', '"nel\\x85here"', "'" + "t" * 201 + "'"]
)
def test_titles_are_one_line_of_plain_text(title):
    found = problems(f"version: 1\nrules:\n  - {{id: a, title: {title}, check: max_tags}}\n")
    assert [(w, line) for w, _, line in found] == [("rules[0] (a).title", 3)]
    assert "one-line title" in found[0][1]


def test_oversized_text_is_refused_before_parsing():
    text = "version: 1\nrules: []\n" + "#" * MAX_TEXT_BYTES
    assert problems(text) == [("file", f"larger than {MAX_TEXT_BYTES} bytes", None)]


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(a+)+$", "nested unbounded"),
        ("(x|y*)*", "nested unbounded"),
        ("(?=a)b", "only plain"),
        ("(?i)prod", "only plain"),
        ("(?P<n>a)(?P=n)", "only plain"),
        (r"(a)\1", "backreferences"),
        (r"\bprod\b", "backreferences"),
        ("a" * 201, "longer than 200"),
        ("[z-a]", "not a valid regular expression"),
        # The shapes of catastrophic backtracking (issue 13), each named in the message.
        ("^(a|aa)+$", "alternation inside a repeat"),
        ("(a|a)*", "alternation inside a repeat"),
        ("(foo|foobar)+", "alternation inside a repeat"),
        ("(?:x|y?)+", "alternation inside a repeat"),
        ("(?:.|a){2,9}", "alternation inside a repeat"),
        ("^(a{1,100}){1,100}b$", "nested repeats"),
        ("(?:ab{2}){3}", "nested repeats"),
        ("(.*)*", "nested unbounded"),
        ("(?:a+){0,20}b", "nested unbounded"),
        ("[a-z]+(?:-[a-z]+){0,20}", "nested unbounded"),
        ("a*+b", "possessive"),
        ("a{1001}", "repeat counts above 1000"),
        ("[a-z]{900}[0-9]{900}[A-Z]{900}", "more than 2000 states"),
    ],
)
def test_dangerous_or_unportable_regexes_are_refused(pattern, fragment):
    assert fragment in (vet_regex(pattern) or "")


@pytest.mark.parametrize(
    "pattern",
    [
        "^CC-[0-9]{4}$",
        "(?:prod|dev)-[a-z]+",
        "[a-z](?:[a-z]|-[a-z])*",  # kebab-case: branches that cannot start alike
        "(?:ab){1,3}",
        "a{1,5}b+",
        "[0-9]{1000}",
    ],
)
def test_ordinary_regexes_pass(pattern):
    assert vet_regex(pattern) is None


def test_the_builtin_library_loads_and_round_trips():
    rules = builtin_rules()
    ids = {rule.id for rule in rules}
    assert {"owner-required", "environment-values", "no-secret-tags", "max-tags"} <= ids
    assert parse_rules(dump_rules(rules)) == rules


# --- round trip property -----------------------------------------------------------------

KNOWN = {"ec2:instance": "tagging-api", "s3:bucket": "tagging-api", "eks:cluster": "service"}
tag_chars = st.sampled_from(list("abcXYZ09 _.:/=+-@é"))
tag_keys = st.text(tag_chars, min_size=1, max_size=12).filter(
    lambda k: not k.lower().startswith("aws:")
)
tag_values = st.text(tag_chars, max_size=12)
titles = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda s: TITLE_RE.match(s) is not None
)
descriptions = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60).filter(
    lambda s: DESCRIPTION_RE.match(s) is not None
)
unique = lambda strategy, **kw: st.lists(strategy, unique=True, **kw).map(tuple)  # noqa: E731
selectors = st.builds(TagSelector, tag_keys, unique(tag_values, max_size=3))
scopes = st.builds(
    Scope,
    resource_types=st.sampled_from([("*",), ("ec2:instance",), ("s3:bucket", "ec2:*")]),
    accounts=unique(st.from_regex(r"\A[0-9]{12}\Z"), max_size=2),
    regions=unique(st.sampled_from(["eu-west-1", "us-east-1", "global"]), max_size=2),
    teams=unique(st.from_regex(r"\A[a-z0-9-]{1,10}\Z"), max_size=2),
    tag_selector=st.none() | selectors,
)
value_matchers = st.one_of(
    st.builds(ValueMatcher, st.just("list"), items=unique(tag_values, min_size=1, max_size=4)),
    st.builds(ValueMatcher, st.just("glob"), pattern=st.text(st.sampled_from("ab*?-"), max_size=8)),
    st.builds(ValueMatcher, st.just("regex"), pattern=st.sampled_from(["^a+$", "[0-9]{4}", "x|y"])),
)


@st.composite
def rules(draw, index):
    check = draw(st.sampled_from(["required_key", "allowed_values", "prohibited_key", "max_tags"]))
    key = "" if check == "max_tags" else draw(tag_keys)
    aliases = (
        () if check == "max_tags" else draw(unique(tag_keys.filter(lambda a: a != key), max_size=3))
    )
    return RuleSpec(
        id=f"rule-{index}",
        title=draw(titles),
        description=draw(descriptions),
        check=check,
        key=key,
        aliases=aliases,
        values=draw(value_matchers) if check == "allowed_values" else None,
        max=draw(st.integers(0, AWS_MAX_USER_TAGS)) if check == "max_tags" else None,
        when=draw(st.none() | selectors),
        scope=draw(scopes),
        severity=draw(st.sampled_from(["high", "medium", "low"])),
        enforcement=draw(st.sampled_from(["enforced", "report"])),
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 4).flatmap(lambda n: st.tuples(*(rules(i) for i in range(n)))))
def test_dump_then_parse_is_the_identity(rule_list):
    rule_list = list(rule_list)
    assert parse_rules(dump_rules(rule_list), known_types=KNOWN) == rule_list


def test_malformed_json_names_the_line_and_the_error_serialises_for_an_api_answer():
    text = '{"version": 1,\n "rules": [\n  {"id": "a",}\n  }\n'
    with pytest.raises(SpecError) as caught:
        parse_rules(text)
    (problem,) = caught.value.as_dicts()
    assert problem["where"] == "file" and problem["line"] == 4
    assert problem["message"].startswith("not valid YAML or JSON")
    assert str(caught.value).startswith("line 4, file: not valid YAML or JSON")
