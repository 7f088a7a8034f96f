"""AWS Organizations tag policies, checked against the examples in AWS's documentation.

Pages quoted below (policies copied verbatim unless a comment says otherwise):
- SYNTAX  "Tag policy syntax and examples"
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_example-tag-policies.html
- INHERIT "Understanding management policy inheritance" -> "Inheritance examples"
  https://docs.aws.amazon.com/organizations/latest/userguide/inheritance-examples.html
"""

import json

import pytest

from inventory.scanners.base import scanners
from policies.aws.documents import (
    AWS_TYPE_BY_SCANNER_TYPE,
    MAX_DOCUMENT_CHARACTERS,
    EffectivePolicy,
    EffectiveTag,
    ExportRule,
    Noncompliance,
    TagPolicyError,
    aws_resource_type,
    effective_policy,
    export_json,
    export_policy,
    noncompliance,
    parse_policy,
    scanner_types_for,
    value_allowed,
)

# SYNTAX, "Tag policy syntax" (current page).
SYNTAX_EXAMPLE = """
{
    "tags": {
        "costcenter": {
            "tag_key": {
                "@@assign": "CostCenter"
            },
            "tag_value": {
                "@@assign": [
                    "100",
                    "200",
                    "300*"
                ]
            },
            "enforced_for": {
                "@@assign": [
                    "secretsmanager:ALL_SUPPORTED"
                ]
            }
        }
    }
}
"""

# INHERIT, examples 1-3: Policy A, the organization root tag policy.
POLICY_A = """
{
    "tags": {
        "costcenter": {
            "tag_key": {
                "@@assign": "CostCenter"
            },
            "tag_value": {
                "@@assign": [
                    "Development",
                    "Support"
                ]
            }
        }
    }
}
"""

# INHERIT, example 1: Policy B, attached to OU1.
POLICY_B = """
{
    "tags": {
        "costcenter": {
            "tag_key": {
                "@@assign": "CostCenter"
            },
            "tag_value": {
                "@@assign": [
                    "Sandbox"
                ]
            },
            "enforced_for": {
                "@@assign": [
                    "redshift:*",
                    "dynamodb:table"
                ]
            }
        }
    }
}
"""

# INHERIT, example 2: Policy C, attached to OU2.
POLICY_C = """
{
    "tags": {
        "costcenter": {
            "tag_key": {
                "@@assign": "CostCenter"
            },
            "tag_value": {
                "@@append": [
                    "Marketing"
                ]
            },
            "enforced_for": {
                "@@append": [
                    "redshift:*",
                    "dynamodb:table"
                ]
            }
        }
    }
}
"""

# INHERIT, example 3: Policy D, attached to account 999999999999. AWS's page nests
# "enforced_for" INSIDE "tag_value" (a misplaced brace); the text says D removes the
# enforced_for values, so here enforced_for is a sibling of tag_value. The page's nesting is
# rejected by the parser (test_aws_example_3_as_printed_is_rejected).
POLICY_D = """
{
    "tags": {
        "costcenter": {
            "tag_key": {
                "@@assign": "CostCenter"
            },
            "tag_value": {
                "@@remove": [
                    "Development",
                    "Marketing"
                ]
            },
            "enforced_for": {
                "@@remove": [
                    "redshift:*",
                    "dynamodb:table"
                ]
            }
        }
    }
}
"""

# INHERIT, example 4: Policy E (root) and Policy F (OU).
POLICY_E = """
{
    "tags": {
        "project": {
            "tag_key": {
                "@@operators_allowed_for_child_policies": ["@@none"],
                "@@assign": "Project"
            },
            "tag_value": {
                "@@operators_allowed_for_child_policies": ["@@append"],
                "@@assign": [
                    "Maintenance",
                    "Escalations"
                ]
            }
        }
    }
}
"""
POLICY_F = """
{
    "tags": {
        "project": {
            "tag_key": {
                "@@assign": "PROJECT"
            },
            "tag_value": {
                "@@append": [
                    "Escalations - research"
                ]
            }
        }
    }
}
"""

# INHERIT, example 5: Policies G and H, both attached to the root.
POLICY_G = """
{
    "tags": {
        "project": {
            "tag_value": {
                "@@operators_allowed_for_child_policies": ["@@append"],
                "@@assign": [
                    "Maintenance"
                ]
            }
        }
    }
}
"""
POLICY_H = """
{
    "tags": {
        "project": {
            "tag_value": {
                "@@operators_allowed_for_child_policies": ["@@append", "@@remove"]
            }
        }
    }
}
"""

# INHERIT, example 6: Policy J attached to the root first, then Policy K.
POLICY_J = """
{
    "tags": {
        "project": {
            "tag_key": {
                "@@assign": "PROJECT"
            },
            "tag_value": {
                "@@append": ["Maintenance"]
            }
        }
    }
}
"""
POLICY_K = """
{
    "tags": {
        "project": {
            "tag_key": {
                "@@assign": "project"
            }
        }
    }
}
"""

# SYNTAX, example 1 "Define organization-wide tag key case": Policy A (root) ...
SYNTAX_CASE_ROOT = """
{
    "tags": {
        "CostCenter": {
            "tag_key": {
                "@@assign": "CostCenter",
                "@@operators_allowed_for_child_policies": ["@@none"]
            }
        },
        "Project": {
            "tag_key": {
                "@@assign": "Project",
                "@@operators_allowed_for_child_policies": ["@@none"]
            }
        }
    }
}
"""
# ... and "Next step: Define values": Policy B (account).
SYNTAX_VALUES_ACCOUNT = """
{
    "tags": {
        "CostCenter": {
            "tag_value": {
                "@@assign": [
                    "Production",
                    "Test"
                ]
            }
        },
        "Project": {
            "tag_value": {
                "@@assign": [
                    "A",
                    "B"
                ]
            }
        }
    }
}
"""

# SYNTAX, example 2 "Prevent use of a tag key".
SYNTAX_PREVENT_KEY = """
{
    "tags": {
        "Color": {
            "tag_key": {
                "@@operators_allowed_for_child_policies": [
                    "@@none"
                ],
                "@@assign": "Color"
            },
            "tag_value": {
                "@@operators_allowed_for_child_policies": [
                    "@@none"
                ],
                "@@assign": []
            },
            "enforced_for": {
                "@@assign": [
                    "dynamodb:table"
                ]
            }
        }
    }
}
"""


def problems_of(document) -> list[tuple[str, str]]:
    with pytest.raises(TagPolicyError) as caught:
        parse_policy(document)
    return [(problem.path, problem.message) for problem in caught.value.problems]


def paths_of(document) -> list[str]:
    return [path for path, _ in problems_of(document)]


# --- parsing ---------------------------------------------------------------------------------


def test_syntax_example_parses_into_typed_settings():
    policy = parse_policy(SYNTAX_EXAMPLE)
    tag = policy.tags["costcenter"]
    assert tag.policy_key == "costcenter"
    assert tag.settings["tag_key"].assign == "CostCenter"
    assert tag.settings["tag_value"].assign == ("100", "200", "300*")
    assert tag.settings["enforced_for"].assign == ("secretsmanager:ALL_SUPPORTED",)


def test_every_documented_example_parses():
    for document in (
        POLICY_A,
        POLICY_B,
        POLICY_C,
        POLICY_D,
        POLICY_E,
        POLICY_F,
        POLICY_G,
        POLICY_H,
        POLICY_J,
        POLICY_K,
        SYNTAX_CASE_ROOT,
        SYNTAX_VALUES_ACCOUNT,
        SYNTAX_PREVENT_KEY,
    ):
        parse_policy(document)


def test_aws_example_3_as_printed_is_rejected():
    printed = json.loads(POLICY_D)
    tag = printed["tags"]["costcenter"]
    tag["tag_value"]["enforced_for"] = tag.pop("enforced_for")
    assert problems_of(printed) == [
        (
            "tags.costcenter.tag_value.enforced_for",
            "unknown operator; expected @@assign, @@append, @@remove or "
            "@@operators_allowed_for_child_policies",
        )
    ]


def test_malformed_json_names_line_and_column():
    assert problems_of('{\n  "tags": {\n    "a": {,\n}') == [
        ("line 3 column 11", "malformed JSON: Expecting property name enclosed in double quotes")
    ]


def test_bytes_are_read_as_utf8_and_other_encodings_are_refused():
    assert parse_policy(SYNTAX_EXAMPLE.encode()).tags["costcenter"].policy_key == "costcenter"
    assert problems_of(b'{"tags": {"caf\xe9": {}}}') == [("byte 15", "the file is not UTF-8 text")]


def test_error_message_names_every_problem_and_the_source():
    with pytest.raises(TagPolicyError) as caught:
        parse_policy('{"tags": {"a": {"tag_key": {"@@append": ["a"]}}}, "x": 1}', name="p.json")
    message = str(caught.value)
    assert message.startswith("p.json: the tag policy has 2 problems: ")
    assert "x: unknown key" in message
    assert "tags.a.tag_key.@@append: tag_key is a single value" in message


def test_unexpected_structures_name_their_paths():
    assert problems_of([]) == [("", "a tag policy is a JSON object, not a list")]
    assert problems_of({"Tags": {}}) == [
        ("Tags", 'unknown key: a tag policy has only the top-level key "tags"'),
        ("tags", 'missing: a tag policy starts with the key "tags"'),
    ]
    assert problems_of({"tags": ["costcenter"]}) == [("tags", "must be an object, not a list")]
    assert paths_of({"tags": {"costcenter": "CostCenter"}}) == ["tags.costcenter"]
    assert problems_of({"tags": {"costcenter": {"tag_values": {"@@assign": ["1"]}}}}) == [
        (
            "tags.costcenter.tag_values",
            "unknown setting; expected one of tag_key, tag_value, enforced_for, "
            "report_required_tag_for",
        )
    ]
    assert problems_of({"tags": {"costcenter": {"tag_value": ["100"]}}}) == [
        (
            "tags.costcenter.tag_value",
            "must be an object of operators such as {'@@assign': ...}, not a list",
        )
    ]


def test_wrong_value_types_name_the_list_index():
    document = {"tags": {"costcenter": {"tag_value": {"@@assign": ["100", "200", 300]}}}}
    assert problems_of(document) == [
        ("tags.costcenter.tag_value.@@assign[2]", "must be a string, not a number")
    ]
    assert problems_of({"tags": {"costcenter": {"tag_key": {"@@assign": ["CostCenter"]}}}}) == [
        ("tags.costcenter.tag_key.@@assign", "must be a string, not a list")
    ]
    assert problems_of(
        {"tags": {"costcenter": {"enforced_for": {"@@append": "ec2:instance"}}}}
    ) == [("tags.costcenter.enforced_for.@@append", "must be a list of strings, not a string")]


def test_operator_misuse():
    assert problems_of({"tags": {"costcenter": {"tag_key": {"@@remove": "CostCenter"}}}}) == [
        (
            "tags.costcenter.tag_key.@@remove",
            "tag_key is a single value: only @@assign applies to it "
            "(@@append and @@remove are for lists)",
        )
    ]
    assert paths_of({"tags": {"costcenter": {"tag_value": {"@@replace": ["1"]}}}}) == [
        "tags.costcenter.tag_value.@@replace"
    ]
    assert paths_of({"tags": {"costcenter": {"@@assign": "CostCenter"}}}) == [
        "tags.costcenter.@@assign"
    ]
    assert problems_of({"tags": {"costcenter": {"tag_value": {}}}}) == [
        (
            "tags.costcenter.tag_value",
            "declares nothing: use @@assign, @@append, @@remove or "
            "@@operators_allowed_for_child_policies",
        )
    ]
    control = "tags.costcenter.tag_value.@@operators_allowed_for_child_policies"
    assert paths_of(
        {"tags": {"costcenter": {"tag_value": {"@@operators_allowed_for_child_policies": []}}}}
    ) == [control]
    assert problems_of(
        {
            "tags": {
                "costcenter": {
                    "tag_value": {"@@operators_allowed_for_child_policies": ["@@none", "@@append"]}
                }
            }
        }
    ) == [(control + "[0]", "@@none cannot be combined with other operators")]
    assert problems_of(
        {"tags": {"costcenter": {"tag_value": {"@@operators_allowed_for_child_policies": ["@@x"]}}}}
    ) == [(control + "[0]", "'@@x' is not @@all, @@none, @@assign, @@append or @@remove")]


def test_tag_key_must_match_policy_key_except_case():
    parse_policy({"tags": {"costcenter": {"tag_key": {"@@assign": "COSTCENTER"}}}})
    assert problems_of({"tags": {"costcenter": {"tag_key": {"@@assign": "Cost-Center"}}}}) == [
        (
            "tags.costcenter.tag_key.@@assign",
            "'Cost-Center' must match the policy key 'costcenter' except for capitalization",
        )
    ]


def test_policy_keys_are_case_insensitive_so_repeats_are_rejected():
    assert problems_of('{"tags": {"CostCenter": {}, "costcenter": {}}}') == [
        (
            "tags.costcenter",
            "policy keys are not case sensitive: 'costcenter' repeats 'CostCenter'",
        )
    ]
    assert problems_of('{"tags": {"a": {}, "a": {}}}') == [
        ("", "the key 'a' appears twice in one JSON object")
    ]


def test_limits_aws_documents():
    long_key = "k" * 129
    assert problems_of({"tags": {long_key: {}}}) == [
        (f"tags.{long_key}", "the policy key has 129 characters; tag keys have at most 128")
    ]
    parse_policy({"tags": {"k" * 128: {"tag_value": {"@@assign": ["v" * 256]}}}})
    assert problems_of({"tags": {"k": {"tag_value": {"@@assign": ["ok", "v" * 257]}}}}) == [
        ("tags.k.tag_value.@@assign[1]", "257 characters; tag values have at most 256")
    ]
    padded = SYNTAX_EXAMPLE + " " * (MAX_DOCUMENT_CHARACTERS - len(SYNTAX_EXAMPLE))
    parse_policy(padded)
    assert problems_of(padded + " ") == [
        ("", "the document has 10001 characters; AWS allows at most 10000 in a tag policy")
    ]


def test_wildcards_only_where_aws_allows_them():
    # SYNTAX: "You can use only one wildcard per tag value. For example, *@example.com is
    # allowed, but *@*.com is not."
    parse_policy({"tags": {"owner": {"tag_value": {"@@assign": ["*@example.com", "*", "300*"]}}}})
    assert problems_of({"tags": {"owner": {"tag_value": {"@@append": ["*@*.com"]}}}}) == [
        (
            "tags.owner.tag_value.@@append[0]",
            "'*@*.com' has 2 wildcards; AWS allows one per tag value "
            "(*@example.com is allowed, *@*.com is not)",
        )
    ]
    assert problems_of({"tags": {"owner": {"tag_key": {"@@assign": "own*"}}}}) == [
        (
            "tags.owner.tag_key.@@assign",
            "wildcards are allowed in tag values and resource types, not in tag keys",
        )
    ]
    # SYNTAX: "You can't use a wildcard to specify all services or to specify a resource for
    # all services."
    for bad, message in (
        ("*:instance", "'*:instance': a wildcard cannot stand for every service"),
        ("*:*", "'*:*': a wildcard cannot stand for every service"),
        (
            "ec2:inst*",
            "'ec2:inst*': a wildcard stands only for a whole type (ec2:ALL_SUPPORTED or ec2:*)",
        ),
        ("ec2", "'ec2' is not of the form service:type (such as ec2:instance)"),
        ("EC2:instance", "'EC2:instance': 'EC2' is not a service name (lowercase, such as ec2)"),
    ):
        document = {"tags": {"owner": {"report_required_tag_for": {"@@assign": [bad]}}}}
        assert problems_of(document) == [
            ("tags.owner.report_required_tag_for.@@assign[0]", message)
        ]


def test_all_problems_are_reported_at_once():
    document = {
        "tags": {
            "a": {"tag_value": {"@@assign": [1]}},
            "b": {"enforced_for": {"@@assign": ["*:*"]}},
        }
    }
    assert paths_of(document) == ["tags.a.tag_value.@@assign[0]", "tags.b.enforced_for.@@assign[0]"]


# --- the effective policy: AWS's inheritance examples -----------------------------------------


def test_inherit_example_1_child_assign_overwrites_values():
    effective = effective_policy([[POLICY_A], [POLICY_B]])
    # "Resultant effective tag policy for accounts 111111111111 and 222222222222"
    assert effective.rendered() == {
        "tags": {
            "costcenter": {
                "tag_key": "CostCenter",
                "tag_value": ["Sandbox"],
                "enforced_for": ["redshift:*", "dynamodb:table"],
            }
        }
    }
    assert effective.ignored == ()


def test_inherit_example_2_child_append_adds_values():
    effective = effective_policy([[POLICY_A], [POLICY_C]])
    # "Effective tag policy for account 999999999999"
    assert effective.rendered() == {
        "tags": {
            "costcenter": {
                "tag_key": "CostCenter",
                "tag_value": ["Development", "Support", "Marketing"],
                "enforced_for": ["redshift:*", "dynamodb:table"],
            }
        }
    }


def test_inherit_example_3_account_remove_takes_values_out():
    effective = effective_policy([[POLICY_A], [POLICY_C], [POLICY_D]])
    # "New effective tag policy for account 999999999999": only Support, and "Compliance is
    # not enforced for the CostCenter tag key" (the emptied enforced_for is not displayed).
    assert effective.rendered() == {
        "tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": ["Support"]}}
    }
    assert effective.tags["costcenter"].enforced_for == ()


def test_inherit_example_4_locked_tag_key_ignores_child_assign_but_allows_append():
    effective = effective_policy([[POLICY_E], [POLICY_F]])
    # The page's text: "Policy F attempts to change the case treatment, but it can't" and "can
    # append tag values". (Its displayed JSON prints "tag_key": "project", which contradicts
    # that text and policy E's "Project"; the text is followed.)
    assert effective.rendered() == {
        "tags": {
            "project": {
                "tag_key": "Project",
                "tag_value": ["Maintenance", "Escalations", "Escalations - research"],
            }
        }
    }
    [ignored] = effective.ignored
    assert (ignored.level, ignored.path, ignored.operator) == (
        1,
        "tags.project.tag_key.@@assign",
        "@@assign",
    )
    assert ignored.reason == (
        "a parent policy allows no operators here "
        "(@@operators_allowed_for_child_policies: ['@@none'])"
    )


def test_inherit_example_4_child_assign_of_values_is_refused_by_append_only():
    child = {"tags": {"project": {"tag_value": {"@@assign": ["Other"]}}}}
    effective = effective_policy([[POLICY_E], [child]])
    assert effective.tags["project"].tag_value == ("Maintenance", "Escalations")
    assert [item.reason for item in effective.ignored] == [
        "a parent policy allows only @@append here, not @@assign "
        "(@@operators_allowed_for_child_policies)"
    ]


def test_inherit_example_5_same_level_child_controls_intersect():
    child = {"tags": {"project": {"tag_value": {"@@append": ["X"], "@@remove": ["Maintenance"]}}}}
    effective = effective_policy([[POLICY_G, POLICY_H], [child]])
    # "child policies can append values, but not remove values"
    assert effective.tags["project"].tag_value == ("Maintenance", "X")
    assert [(item.operator, item.path) for item in effective.ignored] == [
        ("@@remove", "tags.project.tag_value.@@remove")
    ]


def test_inherit_example_6_first_attached_assign_wins_at_one_level():
    effective = effective_policy([[POLICY_J, POLICY_K]])
    # "the tag key PROJECT is used in the effective tag policy because the policy that
    # defined it was attached to the organization root first" (the page prints " PROJECT"
    # with a stray space).
    assert effective.rendered() == {
        "tags": {"project": {"tag_key": "PROJECT", "tag_value": ["Maintenance"]}}
    }
    reversed_order = effective_policy([[POLICY_K, POLICY_J]])
    assert reversed_order.tags["project"].tag_key == "project"


def test_lower_level_assign_still_overwrites_across_levels():
    effective = effective_policy([[POLICY_J], [POLICY_K]])
    assert effective.tags["project"].tag_key == "project"


def test_syntax_example_1_locked_key_with_values_from_account():
    effective = effective_policy([[SYNTAX_CASE_ROOT], [SYNTAX_VALUES_ACCOUNT]])
    # "Policy A + Policy B = effective tag policy for account"
    assert effective.rendered() == {
        "tags": {
            "Project": {"tag_value": ["A", "B"], "tag_key": "Project"},
            "CostCenter": {"tag_value": ["Production", "Test"], "tag_key": "CostCenter"},
        }
    }
    assert effective.ignored == ()


def test_child_cannot_widen_an_inherited_restriction():
    ou = {"tags": {"project": {"tag_key": {"@@operators_allowed_for_child_policies": ["@@all"]}}}}
    account = {"tags": {"project": {"tag_key": {"@@assign": "PROJECT"}}}}
    effective = effective_policy([[POLICY_E], [ou], [account]])
    assert effective.tags["project"].tag_key == "Project"
    assert [item.level for item in effective.ignored] == [2]


def test_restriction_on_tags_node_applies_to_every_key():
    root = {
        "tags": {
            "@@operators_allowed_for_child_policies": ["@@none"],
            "costcenter": {"tag_key": {"@@assign": "CostCenter"}},
        }
    }
    account = {"tags": {"owner": {"tag_key": {"@@assign": "Owner"}}}}
    effective = effective_policy([[root], [account]])
    assert list(effective.tags) == ["costcenter"]
    assert [item.path for item in effective.ignored] == ["tags.owner.tag_key.@@assign"]


def test_restriction_does_not_bind_policies_at_its_own_level():
    effective = effective_policy([[POLICY_E, POLICY_F]])
    assert effective.tags["project"].tag_value == (
        "Maintenance",
        "Escalations",
        "Escalations - research",
    )


def test_policy_keys_merge_whatever_their_case():
    effective = effective_policy(
        [
            [{"tags": {"CostCenter": {"tag_value": {"@@assign": ["1"]}}}}],
            [{"tags": {"COSTCENTER": {"tag_value": {"@@append": ["2"]}}}}],
        ]
    )
    assert effective.rendered() == {"tags": {"CostCenter": {"tag_value": ["1", "2"]}}}


def test_effective_policy_errors_name_the_level_and_policy():
    with pytest.raises(TagPolicyError) as caught:
        effective_policy(
            [[POLICY_A], [POLICY_B, '{"tags": {"x": {"tag_value": {"@@assign": 1}}}}']]
        )
    assert [str(problem) for problem in caught.value.problems] == [
        "levels[1][1] tags.x.tag_value.@@assign: must be a list of strings, not a number"
    ]


def test_rendered_json_is_the_display_without_operators():
    rendered = effective_policy([[SYNTAX_PREVENT_KEY]]).rendered_json()
    assert json.loads(rendered) == {
        "tags": {"Color": {"tag_key": "Color", "tag_value": [], "enforced_for": ["dynamodb:table"]}}
    }
    assert "@@" not in rendered


# --- evaluation ------------------------------------------------------------------------------


def costcenter_policy(**settings) -> EffectivePolicy:
    base = {"tag_key": "CostCenter", "tag_value": None, "enforced_for": (), "report": ()}
    base.update(settings)
    tag = EffectiveTag(
        "costcenter",
        base["tag_key"],
        base["tag_value"],
        tuple(base["enforced_for"]),
        tuple(base["report"]),
    )
    return EffectivePolicy({"costcenter": tag})


def test_evaluate_syntax_example_values_and_wildcard():
    effective = effective_policy([[SYNTAX_EXAMPLE]])
    for value in ("100", "200", "300", "3001", "300-x"):
        assert noncompliance(effective, "secretsmanager:secret", {"CostCenter": value}) == []
    [finding] = noncompliance(effective, "secretsmanager:secret", {"CostCenter": "400"})
    assert finding == Noncompliance(
        "costcenter", "CostCenter", "value", "CostCenter", "400", True, ("100", "200", "300*")
    )
    [finding] = noncompliance(effective, "ec2:instance", {"CostCenter": "1300"})
    assert (finding.kind, finding.enforced) == ("value", False)


def test_evaluate_capitalization():
    effective = effective_policy([[POLICY_A], [POLICY_B]])
    findings = noncompliance(effective, "dynamodb:table", {"costcenter": "Sandbox", "Name": "x"})
    assert findings == [
        Noncompliance("costcenter", "CostCenter", "capitalization", "costcenter", "Sandbox", True)
    ]


def test_evaluate_reports_capitalization_and_value_separately_for_each_variant():
    effective = costcenter_policy(tag_value=("100",))
    findings = noncompliance(effective, "s3:bucket", {"COSTCENTER": "100", "CostCenter": "9"})
    assert [(item.kind, item.found_key, item.found_value) for item in findings] == [
        ("capitalization", "COSTCENTER", "100"),
        ("value", "CostCenter", "9"),
    ]


def test_values_are_case_sensitive_and_wildcard_matches_anywhere_once():
    assert value_allowed(["Production"], "Production")
    assert not value_allowed(["Production"], "production")
    assert value_allowed(["*@example.com"], "ops@example.com")
    assert value_allowed(["*@example.com"], "@example.com")
    assert not value_allowed(["*@example.com"], "ops@example.org")
    assert value_allowed(["*"], "")
    assert not value_allowed(["ab*ba"], "aba")  # prefix and suffix may not overlap
    assert value_allowed(["ab*ba"], "abba")


def test_no_tag_value_means_any_value_and_empty_list_means_none():
    assert noncompliance(costcenter_policy(), "s3:bucket", {"CostCenter": "anything"}) == []
    effective = effective_policy([[SYNTAX_PREVENT_KEY]])
    [finding] = noncompliance(effective, "dynamodb:table", {"Color": "red"})
    assert (finding.kind, finding.enforced, finding.allowed_values) == ("value", True, ())
    [finding] = noncompliance(effective, "ec2:instance", {"Color": ""})
    assert (finding.kind, finding.enforced) == ("value", False)


def test_missing_required_key_by_type_and_all_supported():
    effective = costcenter_policy(report=("ec2:ALL_SUPPORTED", "s3:bucket"), enforced_for=("s3:*",))
    assert noncompliance(effective, "ec2:volume", {"Name": "v"}) == [
        Noncompliance("costcenter", "CostCenter", "missing", None, None, False)
    ]
    assert noncompliance(effective, "s3:bucket", {})[0].kind == "missing"
    assert noncompliance(effective, "s3:bucket", {})[0].enforced is False  # enforcement never
    assert noncompliance(effective, "rds:db", {}) == []  # not a required type
    assert noncompliance(effective, "ec2:instance", {"CostCenter": "1"}) == []
    # Present in the wrong case: capitalization, not missing.
    assert [
        item.kind for item in noncompliance(effective, "ec2:instance", {"costCenter": "1"})
    ] == ["capitalization"]


def test_without_tag_key_lowercase_policy_key_is_required():
    effective = effective_policy([[SYNTAX_VALUES_ACCOUNT]])  # values only, no tag_key
    assert effective.tags["costcenter"].required_key == "costcenter"
    [finding] = noncompliance(effective, "s3:bucket", {"CostCenter": "Test"})
    assert (finding.kind, finding.expected_key) == ("capitalization", "costcenter")


def test_untagged_keys_not_in_the_policy_are_not_evaluated():
    assert noncompliance(costcenter_policy(tag_value=("1",)), "s3:bucket", {"Owner": "me"}) == []


# --- resource types --------------------------------------------------------------------------


def test_every_scanner_type_has_an_aws_type():

    assert set(AWS_TYPE_BY_SCANNER_TYPE) == set(scanners())


def test_resource_type_table():
    assert aws_resource_type("elb:loadbalancer") == "elasticloadbalancing:loadbalancer"
    assert aws_resource_type("rds:db") == "rds:db"
    with pytest.raises(ValueError, match="no AWS tag-policy resource type for 'sqs:queue'"):
        aws_resource_type("sqs:queue")
    assert scanner_types_for(["elasticloadbalancing:loadbalancer"]) == [
        "elasticloadbalancing:loadbalancer",
        "elb:loadbalancer",
    ]
    assert scanner_types_for(["rds:ALL_SUPPORTED", "s3:bucket"]) == [
        "rds:cluster",
        "rds:db",
        "s3:bucket",
    ]


# --- export ----------------------------------------------------------------------------------


def test_export_round_trips_through_the_parser():
    rules = [
        ExportRule(
            "CostCenter",
            ("100", "200", "300*"),
            enforced_for=("ec2:instance",),
            report_required_for=("ec2:ALL_SUPPORTED", aws_resource_type("elb:loadbalancer")),
        ),
        ExportRule("Owner"),
    ]
    document = export_policy(rules)
    assert document == {
        "tags": {
            "costcenter": {
                "tag_key": {"@@assign": "CostCenter"},
                "tag_value": {"@@assign": ["100", "200", "300*"]},
                "enforced_for": {"@@assign": ["ec2:instance"]},
                "report_required_tag_for": {
                    "@@assign": ["ec2:ALL_SUPPORTED", "elasticloadbalancing:loadbalancer"]
                },
            },
            "owner": {"tag_key": {"@@assign": "Owner"}},
        }
    }
    effective = effective_policy([[export_json(document)]])
    tag = effective.tags["costcenter"]
    assert (tag.tag_key, tag.tag_value, tag.enforced_for) == (
        "CostCenter",
        ("100", "200", "300*"),
        ("ec2:instance",),
    )
    assert effective.tags["owner"].tag_value is None


def test_export_refuses_what_aws_would_refuse():
    with pytest.raises(TagPolicyError) as caught:
        export_policy([ExportRule("Owner", ("*@*.com",))])
    assert [str(problem) for problem in caught.value.problems] == [
        "tags.owner.tag_value.@@assign[0]: '*@*.com' has 2 wildcards; AWS allows one per tag "
        "value (*@example.com is allowed, *@*.com is not)"
    ]
    with pytest.raises(TagPolicyError) as caught:
        export_policy([ExportRule("Owner"), ExportRule("owner")])
    assert str(caught.value.problems[0]) == "rules[1]: a second rule for the key 'owner'"
    many = [ExportRule(f"key{index:03}", ("v" * 200,)) for index in range(60)]
    with pytest.raises(TagPolicyError, match="AWS allows at most 10000"):
        export_policy(many)
