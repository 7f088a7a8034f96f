"""Terraform plans: a real plan made by terraform from fixtures/terraform, and hand-made
variations for what a small offline config cannot produce (no-op, replace, update)."""

import copy
import json
import subprocess
from pathlib import Path

import pytest

from policies.ci.plan import MAX_DOCUMENT_BYTES, DocumentError, parse_terraform_plan

FIXTURES = Path(__file__).parent / "fixtures" / "terraform"
PLAN = FIXTURES / "plan.json"


@pytest.fixture(scope="module")
def plan():
    return json.loads(PLAN.read_bytes())


@pytest.fixture(scope="module")
def resources():
    return {r.address: r for r in parse_terraform_plan(PLAN.read_bytes())}


def _change(address="aws_sqs_queue.q", tf_type="aws_sqs_queue", actions=("create",), **change):
    return {
        "address": address,
        "mode": "managed",
        "type": tf_type,
        "name": address.rsplit(".", 1)[-1],
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": list(actions), "before": None, "after": {}, **change},
    }


def _plan(*changes):
    return {"format_version": "1.2", "resource_changes": list(changes)}


def test_real_plan_reports_every_change_in_order(plan, resources):
    assert list(resources) == [rc["address"] for rc in plan["resource_changes"]]
    assert set(resources) == {
        "data.aws_iam_policy_document.logs",
        "aws_instance.web",
        "aws_s3_bucket_policy.logs",
        "aws_sqs_queue.retired",
        "aws_subnet.a",
        "aws_vpc.main",
        "module.logs.aws_s3_bucket.this",
    }


def test_default_tags_reach_resources_through_tags_all(resources):
    # aws_instance.web has no tags of its own: default_tags only.
    web = resources["aws_instance.web"]
    assert web.tags == {"CostCenter": "cc-1234", "ManagedBy": "terraform"}
    assert (web.resource_type, web.taggable, web.action, web.checked) == (
        "ec2:instance",
        True,
        "create",
        True,
    )
    assert resources["aws_vpc.main"].tags == {
        "CostCenter": "cc-1234",
        "ManagedBy": "terraform",
        "Name": "main",
        "Owner": "platform",
    }


def test_resource_in_module_keeps_full_address_and_overrides_default_tag(resources):
    bucket = resources["module.logs.aws_s3_bucket.this"]
    assert bucket.module_address == "module.logs"
    assert bucket.resource_type == "s3:bucket"
    assert bucket.tags["ManagedBy"] == "module-bucket"
    assert bucket.tags["Owner"] == "observability"
    assert bucket.provider == "registry.terraform.io/hashicorp/aws"


def test_tag_value_known_only_after_apply_marks_tags_unknown(resources):
    subnet = resources["aws_subnet.a"]
    assert subnet.tags_unknown is True
    assert subnet.checked  # still checked: the evaluator decides what unknown means


def test_deletion_data_source_and_untaggable_are_reported_not_checked(resources):
    retired = resources["aws_sqs_queue.retired"]
    assert (retired.action, retired.skip_reason, retired.tags) == ("delete", "deleted", {})
    policy_doc = resources["data.aws_iam_policy_document.logs"]
    assert (policy_doc.mode, policy_doc.action, policy_doc.skip_reason) == (
        "data",
        "read",
        "data source",
    )
    bucket_policy = resources["aws_s3_bucket_policy.logs"]
    assert (bucket_policy.taggable, bucket_policy.skip_reason) == (False, "not taggable")
    assert not (retired.checked or policy_doc.checked or bucket_policy.checked)


def test_partially_unknown_tags_name_the_unknown_keys():
    rc = _change(
        after={"tags": {"Owner": "a", "Parent": None}, "tags_all": {"Owner": "a", "Parent": None}},
        after_unknown={"tags": {"Parent": True}, "tags_all": {"Parent": True}},
    )
    (r,) = parse_terraform_plan(_plan(rc))
    assert r.tags == {"Owner": "a"}
    assert r.unknown_tag_keys == ("Parent",)
    assert r.tags_unknown is False


def test_unknown_tags_all_keeps_the_resources_known_own_tags():
    rc = _change(after={"tags": {"Owner": "a"}}, after_unknown={"tags_all": True})
    (r,) = parse_terraform_plan(_plan(rc))
    assert (r.tags, r.tags_unknown) == ({"Owner": "a"}, True)


@pytest.mark.parametrize(
    "actions, action, skip, changed_only_skip",
    [
        (["update"], "update", "", ""),
        (["delete", "create"], "replace", "", ""),
        (["create", "delete"], "replace", "", ""),
        # unchanged resources are checked unless the caller asks for changed ones only
        (["no-op"], "no-op", "", "unchanged"),
        (["forget"], "forget", "removed from state only", "removed from state only"),
        (["delete"], "delete", "deleted", "deleted"),
    ],
)
def test_actions(actions, action, skip, changed_only_skip):
    plan = _plan(_change(actions=actions, after={"tags_all": {"A": "1"}}))
    (r,) = parse_terraform_plan(plan)
    assert (r.action, r.skip_reason) == (action, skip)
    (r,) = parse_terraform_plan(plan, changed_only=True)
    assert (r.action, r.skip_reason) == (action, changed_only_skip)


def test_other_providers_are_not_aws_resources():
    rc = _change("random_id.x", "random_id")
    rc["provider_name"] = "registry.terraform.io/hashicorp/random"
    (r,) = parse_terraform_plan(_plan(rc))
    assert (r.taggable, r.resource_type, r.skip_reason) == (
        False,
        None,
        "not an AWS provider resource",
    )


def test_type_missing_from_the_provider_table_is_not_flagged():
    (r,) = parse_terraform_plan(_plan(_change("aws_future_thing.x", "aws_future_thing")))
    assert (r.taggable, r.type_known, r.skip_reason) == (False, False, "not taggable")


def test_autoscaling_group_tag_blocks():
    rc = _change(
        "aws_autoscaling_group.g",
        "aws_autoscaling_group",
        after={
            "tag": [
                {"key": "Owner", "value": "web", "propagate_at_launch": True},
                {"key": "Build", "value": None, "propagate_at_launch": True},
            ]
        },
        after_unknown={"tag": [{}, {"value": True}]},
    )
    (r,) = parse_terraform_plan(_plan(rc))
    assert (r.taggable, r.tags, r.unknown_tag_keys) == (True, {"Owner": "web"}, ("Build",))


def test_plan_without_changes_is_empty():
    assert parse_terraform_plan({"format_version": "1.2", "planned_values": {}}) == []


# Bad input: every error names where.


def test_malformed_json_names_line_and_column():
    with pytest.raises(DocumentError) as exc:
        parse_terraform_plan(b'{"format_version": "1.2",\n "resource_changes": [,]}')
    assert exc.value.path == "line 2 column 23"
    assert "malformed JSON" in str(exc.value)


def test_not_an_object():
    with pytest.raises(DocumentError, match=r"^\$: expected a JSON object"):
        parse_terraform_plan(b"[1, 2]")


def test_unsupported_format_version():
    with pytest.raises(DocumentError, match=r"^format_version: '2.0' is not supported"):
        parse_terraform_plan({"format_version": "2.0", "resource_changes": []})


def test_state_instead_of_plan():
    with pytest.raises(DocumentError, match="looks like a state") as exc:
        parse_terraform_plan({"format_version": "1.0", "values": {}})
    assert exc.value.path == "resource_changes"


def test_wrong_type_deep_in_the_plan_names_the_json_path(plan):
    bad = copy.deepcopy(plan)
    index = next(
        i for i, rc in enumerate(bad["resource_changes"]) if rc["address"] == "aws_vpc.main"
    )
    bad["resource_changes"][index]["change"]["after"]["tags_all"] = ["Owner", "x"]
    with pytest.raises(DocumentError) as exc:
        parse_terraform_plan(json.dumps(bad))
    assert exc.value.path == f"resource_changes[{index}].change.after.tags_all"
    assert "expected an object of strings, got a list" in str(exc.value)


@pytest.mark.parametrize(
    "mutate, path, message",
    [
        (lambda rc: rc.update(change=None), "resource_changes[1].change", "got null"),
        (
            lambda rc: rc["change"].update(actions=["explode"]),
            "resource_changes[1].change.actions",
            "unknown actions",
        ),
        (lambda rc: rc.pop("type"), "resource_changes[1].type", "non-empty string"),
        (lambda rc: rc.update(mode="ghost"), "resource_changes[1].mode", "'managed' or 'data'"),
        (
            lambda rc: rc["change"]["after"].update(tags_all={"Owner": 7}),
            "resource_changes[1].change.after.tags_all.Owner",
            "got a number",
        ),
    ],
)
def test_structure_errors(mutate, path, message):
    second = _change(after={"tags_all": {}})
    mutate(second)
    with pytest.raises(DocumentError) as exc:
        parse_terraform_plan(_plan(_change(after={"tags_all": {}}), second))
    assert exc.value.path == path
    assert message in exc.value.message


def test_resource_changes_not_a_list():
    with pytest.raises(DocumentError, match=r"^resource_changes: expected a list, got an object"):
        parse_terraform_plan({"format_version": "1.2", "resource_changes": {}})


def test_50_mib_is_refused_before_parsing():
    # Valid JSON of exactly 50 MiB: refused on size alone, with the limit in the message.
    body = b'{"format_version": "1.2", "resource_changes": []}'
    body += b" " * (MAX_DOCUMENT_BYTES - len(body))
    assert len(body) == 50 * 1024 * 1024
    with pytest.raises(DocumentError, match="limit is under 50 MiB"):
        parse_terraform_plan(body)
    with pytest.raises(DocumentError, match="limit is under 50 MiB"):
        parse_terraform_plan(body.decode())
    assert parse_terraform_plan(body[:-1]) == []  # one byte less is accepted


def test_a_5000_resource_plan_in_50_modules_parses_whole():
    """Size, not speed: bench/ci_check.py measures the time (docs/benchmarks.md)."""
    changes = []
    for i in range(5000):
        rc = _change(
            f'module.app[{i % 50}].aws_instance.web["{i}"]',
            "aws_instance",
            after={
                "tags": {"Owner": "team", "Name": f"web-{i}"},
                "tags_all": {"Owner": "team", "Name": f"web-{i}", "CostCenter": "cc"},
                "ami": "ami-0123456789abcdef0",
                "instance_type": "t3.micro",
            },
            after_unknown={"id": True, "arn": True, "tags_all": {}},
        )
        rc["module_address"] = f"module.app[{i % 50}]"
        changes.append(rc)
    body = json.dumps(_plan(*changes)).encode()
    parsed = parse_terraform_plan(body)
    assert len(parsed) == 5000 and parsed[-1].tags["Name"] == "web-4999"
    assert {r.module_address for r in parsed} == {f"module.app[{i}]" for i in range(50)}


def test_committed_plan_is_what_terraform_produces_today(tmp_path, terraform_mirror):
    """regenerate.sh plans main.tf offline; its output parses to the same resources."""
    out = tmp_path / "plan.json"
    subprocess.run([str(FIXTURES / "regenerate.sh"), str(out)], check=True, capture_output=True)
    assert parse_terraform_plan(out.read_bytes()) == parse_terraform_plan(PLAN.read_bytes())
