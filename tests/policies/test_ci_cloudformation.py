"""CloudFormation templates: YAML with short-form tags, JSON (SAM), and bad input."""

from pathlib import Path

import pytest

from policies.ci.cloudformation import load_template, parse_cloudformation
from policies.ci.plan import MAX_DOCUMENT_BYTES, DocumentError

FIXTURES = Path(__file__).parent / "fixtures" / "cloudformation"


@pytest.fixture(scope="module")
def web():
    return {r.address: r for r in parse_cloudformation((FIXTURES / "web.yaml").read_text())}


def test_short_forms_load_as_intrinsic_functions():
    template = load_template((FIXTURES / "web.yaml").read_text())
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
    assert template["Resources"]["Ingress"]["Properties"]["GroupId"] == {
        "Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]
    }


def test_every_resource_in_template_order_with_tagsense_types(web):
    assert list(web) == ["Vpc", "Subnet", "Web", "Ingress", "Files", "Setting", "Hook", "Widget"]
    assert web["Vpc"].resource_type == "ec2:vpc"
    assert web["Web"].resource_type == "ec2:instance"
    assert web["Files"].resource_type == "elasticfilesystem:file-system"
    assert {r.action for r in web.values()} == {"create"}
    assert {r.provider for r in web.values()} == {"cloudformation"}


def test_intrinsic_values_are_unknown_keys(web):
    vpc = web["Vpc"]
    assert vpc.tags == {"Owner": "platform"}
    assert vpc.unknown_tag_keys == ("Env", "Name")
    assert vpc.tags_unknown is False


def test_conditional_tag_makes_the_key_set_unknown(web):
    assert (web["Subnet"].tags, web["Subnet"].tags_unknown) == ({"Owner": "platform"}, True)


def test_yaml_numbers_become_tag_text(web):
    # YAML reads 1.10 as a float; the value CloudFormation sends is its text, as YAML prints it.
    assert web["Web"].tags == {"Owner": "web", "Version": "1.1"}


def test_efs_tags_and_map_form_tags(web):
    assert web["Files"].tags == {"Owner": "storage"}
    assert (web["Setting"].tags, web["Setting"].unknown_tag_keys) == ({"Owner": "ops"}, ("Env",))


def test_untaggable_custom_and_unlisted_types(web):
    assert (web["Ingress"].taggable, web["Ingress"].skip_reason) == (False, "not taggable")
    assert (web["Hook"].taggable, web["Hook"].checked) == (False, False)
    widget = web["Widget"]  # not in the table: taggable because the template tags it
    assert (widget.taggable, widget.type_known, widget.tags) == (True, False, {"Owner": "widgets"})


def test_stack_tags_apply_and_resource_tags_win():
    parsed = parse_cloudformation(
        (FIXTURES / "web.yaml").read_text(), stack_tags={"CostCenter": "cc-9", "Owner": "stack"}
    )
    by_id = {r.address: r for r in parsed}
    assert by_id["Web"].tags == {"CostCenter": "cc-9", "Owner": "web", "Version": "1.1"}
    assert by_id["Ingress"].tags == {}


def test_json_sam_template_with_globals():
    parsed = {r.address: r for r in parse_cloudformation((FIXTURES / "function.json").read_bytes())}
    handler = parsed["Handler"]
    assert handler.resource_type == "lambda:function"
    assert handler.tags == {"CostCenter": "cc-42", "Owner": "api"}
    assert handler.unknown_tag_keys == ("Stage",)
    assert parsed["Table"].tags == {"Owner": "api"}
    assert parsed["Permission"].skip_reason == "not taggable"


def test_malformed_yaml_names_line_and_column():
    with pytest.raises(DocumentError) as exc:
        parse_cloudformation("Resources:\n  A:\n    Type: [unclosed\n")
    assert exc.value.path.startswith("line 4")
    assert "malformed YAML/JSON" in exc.value.message


def test_malformed_json_names_line():
    with pytest.raises(DocumentError) as exc:
        parse_cloudformation('{"Resources": {"A": {"Type": "AWS::S3::Bucket",}\n')
    assert exc.value.path.startswith("line ")


@pytest.mark.parametrize(
    "text, path, message",
    [
        ("- a\n- b\n", "$", "expected a template"),
        ("AWSTemplateFormatVersion: '2010-09-09'\n", "Resources", "missing or empty"),
        ("Resources:\n  A: 3\n", "Resources.A", "mapping with Type"),
        ("Resources:\n  A:\n    Properties: {}\n", "Resources.A.Type", "needs a Type"),
        (
            "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties:\n"
            "      Tags: [{Key: a}]\n",
            "Resources.A.Properties.Tags[0].Value",
            "missing",
        ),
        (
            "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags: [x]\n",
            "Resources.A.Properties.Tags[0]",
            "Key and Value",
        ),
        (
            "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags: oops\n",
            "Resources.A.Properties.Tags",
            "a list of {Key, Value}",
        ),
        (
            "Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
            "      Tags: {Owner: [1]}\n",
            "Resources.A.Properties.Tags.Owner",
            "a string or an intrinsic",
        ),
    ],
)
def test_structure_errors_name_the_path(text, path, message):
    with pytest.raises(DocumentError) as exc:
        parse_cloudformation(text)
    assert exc.value.path == path
    assert message in exc.value.message


def test_unknown_yaml_tags_are_not_constructed_as_python_objects():
    # A SafeLoader: !!python/object is refused, not executed.
    with pytest.raises(DocumentError):
        parse_cloudformation("Resources: !!python/object/apply:os.system ['true']\n")


def test_50_mib_template_is_refused_before_parsing():
    text = "Resources: {A: {Type: AWS::S3::Bucket}}\n"
    text += "#" * (MAX_DOCUMENT_BYTES - len(text))
    with pytest.raises(DocumentError, match="limit is under 50 MiB"):
        parse_cloudformation(text)
