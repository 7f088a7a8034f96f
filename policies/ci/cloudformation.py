"""CloudFormation templates (JSON or YAML, short-form tags such as !Ref and !Sub) as a list of
PlannedResource.

A template describes the desired state, not a change: every resource is reported with action
"create". Tags are read from the type's tag property (`Tags`, `FileSystemTags` for EFS; see
taggable.py), either a [{Key, Value}] list or a {key: value} map (SAM, SSM parameters, EKS node
groups). A value given by an intrinsic function (!Ref, !Sub, !GetAtt, Fn::If, ...) is known
only at deploy time: its key goes to `unknown_tag_keys`; an intrinsic in place of a key or of
the whole tag property sets `tags_unknown`.

Stack-level tags (`aws cloudformation deploy --tags`, or a parent stack's Tags) propagate to the
stack's resources but are not in the template: pass them as `stack_tags` when they are known,
otherwise a rule requiring them will flag resources that will in fact carry them.
"""

from __future__ import annotations

from typing import Any

import yaml

from policies import yaml_limits
from policies.ci.inputs import not_a_plan
from policies.ci.plan import DocumentError, PlannedResource, check_size
from policies.ci.taggable import cloudformation_type_info

PROVIDER = "cloudformation"
SKIP_NOT_TAGGABLE = "not taggable"

_SHORT_FORMS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CloudFormationLoader(_Loader):  # type: ignore[misc, valid-type]
    """yaml.SafeLoader that reads CloudFormation's short forms (!Ref x -> {"Ref": x})."""


def _short_form(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _SHORT_FORMS.get(suffix, f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)  # !GetAtt Res.Attr -> ["Res", "Attr"]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # the third and last kind of YAML node
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _short_form)
yaml_limits.bound_scalars(CloudFormationLoader)


def load_template(text: bytes | str) -> Any:
    check_size(text)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"byte {exc.start}", "not UTF-8 text") from None
    try:
        # No anchors or aliases (CloudFormation refuses them too), bounded depth and numbers.
        yaml_limits.screen(text, CloudFormationLoader)
        return yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise DocumentError(where, f"malformed YAML/JSON: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DocumentError("", f"malformed YAML/JSON: {exc}") from None


def is_intrinsic(value: Any) -> bool:
    """{"Ref": ...}, {"Fn::Sub": ...}, {"Condition": ...}: a value CloudFormation computes."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def parse_cloudformation(
    text: bytes | str | dict[str, Any], stack_tags: dict[str, str] | None = None
) -> list[PlannedResource]:
    """Every resource of the template, in template order. Raises DocumentError."""
    if not isinstance(text, dict):
        what = not_a_plan(text)  # a Terraform output sent as a template
        if what:
            raise DocumentError("", what)
    template = text if isinstance(text, dict) else load_template(text)
    if not isinstance(template, dict):
        raise DocumentError("$", "expected a template (a mapping with Resources)")
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise DocumentError("Resources", "missing or empty: a template needs at least one resource")
    globals_ = template.get("Globals")
    sam_tags = None
    if isinstance(globals_, dict) and isinstance(globals_.get("Function"), dict):
        sam_tags = globals_["Function"].get("Tags")
    return [
        _resource(str(logical_id), body, f"Resources.{logical_id}", stack_tags or {}, sam_tags)
        for logical_id, body in resources.items()
    ]


def _resource(
    logical_id: str, body: Any, path: str, stack_tags: dict[str, str], sam_tags: Any
) -> PlannedResource:
    if not isinstance(body, dict):
        raise DocumentError(path, "expected a mapping with Type")
    cfn_type = body.get("Type")
    if not isinstance(cfn_type, str) or not cfn_type:
        raise DocumentError(f"{path}.Type", "missing: every resource needs a Type string")
    properties = body.get("Properties") or {}
    if is_intrinsic(properties):
        properties = {}
    if not isinstance(properties, dict):
        raise DocumentError(f"{path}.Properties", "expected a mapping")
    info = cloudformation_type_info(cfn_type, properties)
    tags: dict[str, str] = {}
    unknown: list[str] = []
    tags_unknown = False
    if info.taggable:
        tags = dict(stack_tags)
        prop = info.tag_property or "Tags"
        if cfn_type == "AWS::Serverless::Function" and sam_tags is not None:
            tags_unknown |= _read_tags(sam_tags, "Globals.Function.Tags", tags, unknown)
        if prop in properties:
            tags_unknown |= _read_tags(properties[prop], f"{path}.Properties.{prop}", tags, unknown)
    for key in unknown:
        tags.pop(key, None)
    return PlannedResource(
        address=logical_id,
        module_address="",
        tf_type=cfn_type,
        resource_type=info.resource_type,
        taggable=info.taggable,
        action="create",
        tags=tags,
        unknown_tag_keys=tuple(sorted(set(unknown))),
        tags_unknown=tags_unknown,
        provider=PROVIDER,
        skip_reason="" if info.taggable else SKIP_NOT_TAGGABLE,
        type_known=info.known,
    )


def _read_tags(value: Any, path: str, tags: dict[str, str], unknown: list[str]) -> bool:
    """Adds known tags to `tags`, unknown keys to `unknown`; True if keys themselves are unknown."""
    if is_intrinsic(value):
        return True
    whole_unknown = False
    if isinstance(value, dict):
        items = [(k, v, f"{path}.{k}") for k, v in value.items()]
    elif isinstance(value, list):
        items, whole_unknown = _list_items(value, path)
    else:
        raise DocumentError(path, "expected a list of {Key, Value} or a mapping of tags")
    for key, item, where in items:
        whole_unknown |= _read_tag(key, item, where, tags, unknown)
    return whole_unknown


def _list_items(value: list[Any], path: str) -> tuple[list[tuple[Any, Any, str]], bool]:
    """A list of {Key, Value}'s (key, value, path of the value); True if an entry is a whole
    intrinsic (its key is unknown)."""
    items: list[tuple[Any, Any, str]] = []
    whole_unknown = False
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if is_intrinsic(item):  # e.g. Fn::If choosing a whole tag
            whole_unknown = True
            continue
        if not isinstance(item, dict) or "Key" not in item:
            raise DocumentError(where, "expected a mapping with Key and Value")
        if "Value" not in item:
            raise DocumentError(f"{where}.Value", "missing")
        items.append((item["Key"], item["Value"], f"{where}.Value"))
    return items, whole_unknown


def _read_tag(key: Any, item: Any, where: str, tags: dict[str, str], unknown: list[str]) -> bool:
    """One tag into `tags` (or its key into `unknown`); True if the key itself is unknown."""
    if is_intrinsic(key):
        return True
    if not isinstance(key, str | int | float) or isinstance(key, bool):
        raise DocumentError(where.rsplit(".", 1)[0] + ".Key", "expected a string")
    if is_intrinsic(item):
        unknown.append(str(key))
    elif isinstance(item, str | int | float | bool):
        # YAML reads `Version: 1.0` as a number; CloudFormation sends it as text.
        tags[str(key)] = _scalar_text(item)
    else:
        raise DocumentError(where, "expected a string or an intrinsic function")
    return False


def _scalar_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
