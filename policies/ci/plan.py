"""Terraform plans (`terraform show -json <planfile>`) as a list of PlannedResource.

Reads `resource_changes[]`. The tags a resource will carry are its effective tags: the
provider's `default_tags` merged with the resource's own `tags` (the resource wins on a shared
key). The plan gives them in `change.after.tags_all` when the AWS provider could compute them;
when it could not (the plugin SDK leaves `tags_all` unknown when the merge is empty; the plugin
framework when one own value is unknown), they are computed here from the provider
configuration the resource uses (`configuration.provider_config`, found through the
configuration's `provider_config_key`, which Terraform resolves through aliases and providers
passed into modules):

- no `default_tags`: the effective tags are the resource's own tags (none: every key is missing);
- constant `default_tags`: the defaults merged with the resource's own tags;
- `default_tags` given by an expression (a variable, a function, a resource attribute): trusted
  only when the plan shows the provider had them while planning (some resource's `tags_all`
  carries a key its own tags do not); otherwise the tags are undetermined, since the provider
  drops default tags it only learns at apply from every `tags_all` of the plan.

A `dynamic "default_tags"` block and the TF_AWS_DEFAULT_TAGS_<key> environment variables do not
appear in the configuration: a resource whose known `tags_all` has keys that neither its own
tags nor the configured defaults explain shows them, and the provider's resources whose
`tags_all` is unknown are then undetermined rather than computed. Values Terraform only learns at
apply time (`change.after_unknown`) are reported as unknown, never guessed: a key with an unknown
value is in `unknown_tag_keys`; a map whose keys are unknown sets `tags_unknown`.

Unchanged (`no-op`) resources are checked unless `changed_only` (then only creations, updates
and replacements are); deletions never are.

The caller gets either the full list or a DocumentError naming the JSON path of the first
problem (`resource_changes[12].change.after.tags_all`). Documents of MAX_DOCUMENT_BYTES or
more are refused before parsing, and so are a `terraform plan -json` event stream and a binary
plan file, with the command that makes a plan. One pass over the resources, nothing quadratic:
a plan of 5,000 resources (2 MB) parses in about 0.07 s on the 2-core build machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from policies.ci.inputs import not_a_plan
from policies.ci.taggable import TypeInfo, terraform_type_info

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # 50 MiB: this size and above is refused
SUPPORTED_FORMAT_MAJOR = "1"

ACTIONS = {
    ("no-op",): "no-op",
    ("create",): "create",
    ("read",): "read",
    ("update",): "update",
    ("delete",): "delete",
    ("forget",): "forget",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("create", "forget"): "replace",
}

# Why a resource is reported but not checked against rules ("" means it is checked).
SKIP_DATA_SOURCE = "data source"
SKIP_DELETED = "deleted"
SKIP_FORGOTTEN = "removed from state only"
SKIP_UNCHANGED = "unchanged"
SKIP_NOT_TAGGABLE = "not taggable"
SKIP_NOT_AWS = "not an AWS provider resource"

# Why a resource's tags are undetermined (PlannedResource.unknown_reason).
UNKNOWN_OWN = "its tags are known only after apply"
UNKNOWN_DEFAULTS = "its provider's default_tags are known only after apply"


class DocumentError(ValueError):
    """A plan or template that cannot be read; `path` says where (JSON path or line)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class PlannedResource:
    address: str  # full address: module.logs.aws_s3_bucket.this["a"]; a CloudFormation logical id
    module_address: str  # "module.logs", "" at the root
    tf_type: str  # Terraform type (aws_instance) or CloudFormation type (AWS::EC2::Instance)
    resource_type: str | None  # TagSense's type ("ec2:instance"), None if TagSense lacks it
    taggable: bool
    action: str  # create | update | delete | replace | no-op | read | forget
    tags: dict[str, str] = field(default_factory=dict)  # the known tags after the change
    unknown_tag_keys: tuple[str, ...] = ()  # keys whose values are known only after apply
    tags_unknown: bool = False  # the whole tag map (or part of its keys) is known only after apply
    provider: str = ""  # registry.terraform.io/hashicorp/aws, or "cloudformation"
    mode: str = "managed"  # managed | data
    skip_reason: str = ""  # why rules do not apply; "" when they do
    type_known: bool = True  # False: the type is not in the taggable table (see taggable.py)
    unknown_reason: str = ""  # with tags_unknown: UNKNOWN_OWN or UNKNOWN_DEFAULTS

    @property
    def checked(self) -> bool:
        return not self.skip_reason


def check_size(data: bytes | str) -> None:
    # A str of N characters is at least N bytes of UTF-8: only encode when it could fit.
    size = len(data)
    if isinstance(data, str) and size < MAX_DOCUMENT_BYTES:
        size = len(data.encode("utf-8"))
    if size >= MAX_DOCUMENT_BYTES:
        raise DocumentError(
            "",
            f"document of {size} bytes refused: the limit is under "
            f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB ({MAX_DOCUMENT_BYTES} bytes)",
        )


def load_json(data: bytes | str) -> Any:
    """Size check, then parse; a syntax error names its line and column."""
    check_size(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DocumentError(
            f"line {exc.lineno} column {exc.colno}", f"malformed JSON: {exc.msg}"
        ) from None


def parse_terraform_plan(
    data: bytes | str | dict[str, Any], *, changed_only: bool = False
) -> list[PlannedResource]:
    """Every entry of `resource_changes`, in plan order. Raises DocumentError.

    changed_only: check only creations, updates and replacements; unchanged resources are then
    reported with skip_reason "unchanged" (by default they are checked like the others)."""
    if not isinstance(data, dict):
        what = not_a_plan(data)
        if what:
            raise DocumentError("", what)
    plan = data if isinstance(data, dict) else load_json(data)
    if isinstance(plan, dict) and "@level" in plan and "@message" in plan:
        raise DocumentError("", not_a_plan(orjson.dumps(plan)) or "not a plan")
    if not isinstance(plan, dict):
        raise DocumentError(
            "$", f"expected a JSON object (terraform show -json), got {_kind(plan)}"
        )
    version = plan.get("format_version")
    if not isinstance(version, str):
        raise DocumentError(
            "format_version", "missing: is this the output of `terraform show -json <planfile>`?"
        )
    if version.split(".", 1)[0] != SUPPORTED_FORMAT_MAJOR:
        raise DocumentError(
            "format_version",
            f"{version!r} is not supported (supported: {SUPPORTED_FORMAT_MAJOR}.x)",
        )
    if "resource_changes" not in plan:
        if "planned_values" in plan:
            return []  # a plan with nothing to do
        raise DocumentError(
            "resource_changes",
            "missing: this looks like a state (`terraform show -json` without a plan file), "
            "not a plan",
        )
    changes = plan["resource_changes"]
    if not isinstance(changes, list):
        raise DocumentError("resource_changes", f"expected a list, got {_kind(changes)}")
    providers = _Providers(plan.get("configuration"), plan.get("variables"))
    read = [
        _resource(change, f"resource_changes[{i}]", changed_only, providers)
        for i, change in enumerate(changes)
    ]
    for _, facts in read:
        if facts is not None:
            providers.observe(facts)
    return [
        resource if facts is None else providers.effective(resource, facts)
        for resource, facts in read
    ]


@dataclass(slots=True)
class _TagFacts:
    """What the plan says of one resource's tags before the provider's defaults are applied."""

    provider_key: str | None  # the configuration's provider_config_key; None: not found
    own: dict[str, str] | None  # the known values of its own `tags`; None: the map is unknown
    own_unknown: tuple[str, ...]  # own keys whose values are unknown
    all_known: dict[str, str] | None  # `tags_all` when it is not wholly unknown, less own_unknown
    all_unknown: tuple[str, ...]  # tags_all keys whose values are unknown


@dataclass(slots=True)
class _Defaults:
    kind: str  # "none" | "constant" | "expression" | "unresolved"
    tags: dict[str, str] = field(default_factory=dict)  # "constant" only
    hidden: bool = False  # a tags_all of the plan carries defaults this does not explain


_MODULE_STEP = re.compile(r'module\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[(?:[0-9]+|"(?:[^"\\]|\\.)*")\])?')


def _module_path(module_address: str) -> tuple[str, ...] | None:
    """module.a["k"].module.b[0] -> ("a", "b"); None when it cannot be read."""
    names: list[str] = []
    at = 0
    while at < len(module_address):
        if names:
            if module_address[at] != ".":
                return None
            at += 1
        step = _MODULE_STEP.match(module_address, at)
        if step is None:
            return None
        names.append(step.group(1))
        at = step.end()
    return tuple(names)


class _Providers:
    """The provider configuration of each resource, from the plan's `configuration`. Anything
    unexpected there makes the provider "unresolved" (tags_all is then taken as it is, as when
    the plan has no configuration), never an error: the configuration is read only for this."""

    def __init__(self, configuration: Any, variables: Any = None):
        self.defaults: dict[str, _Defaults] = {}
        self.keys: dict[tuple[Any, ...], str] = {}
        if not isinstance(configuration, dict):
            return
        root_values = {
            name: entry["value"]
            for name, entry in (variables.items() if isinstance(variables, dict) else ())
            if isinstance(entry, dict) and "value" in entry
        }
        config = configuration.get("provider_config")
        if isinstance(config, dict):
            for key, provider in config.items():
                if isinstance(provider, dict):
                    # A root provider's `var.X` is the plan's root variable X; a module's is not.
                    known = {} if provider.get("module_address") else root_values
                    self.defaults[key] = _provider_defaults(provider, known)
        root = configuration.get("root_module")
        if isinstance(root, dict):
            self._index(root, ())

    def _index(self, module: dict[str, Any], path: tuple[str, ...]) -> None:
        for resource in module.get("resources") or ():
            if isinstance(resource, dict) and isinstance(resource.get("provider_config_key"), str):
                ident = (path, resource.get("mode"), resource.get("type"), resource.get("name"))
                self.keys[ident] = resource["provider_config_key"]
        calls = module.get("module_calls")
        for name, call in calls.items() if isinstance(calls, dict) else ():
            if isinstance(call, dict) and isinstance(call.get("module"), dict):
                self._index(call["module"], (*path, name))

    def key(self, rc: dict[str, Any]) -> str | None:
        path = _module_path(rc.get("module_address") or "")
        if path is None:
            return None
        return self.keys.get((path, rc.get("mode"), rc.get("type"), rc.get("name")))

    def _of(self, key: str | None) -> _Defaults:
        found = self.defaults.get(key) if key is not None else None
        return found if found is not None else _UNRESOLVED

    def observe(self, facts: _TagFacts) -> None:
        """A known tags_all with keys that neither the resource's own tags nor the configured
        constant defaults explain: the provider had default tags the configuration hides."""
        defaults = self._of(facts.provider_key)
        if defaults is _UNRESOLVED or defaults.hidden:
            return
        if facts.all_known is None or facts.own is None:
            return
        explained = {*defaults.tags, *facts.own, *facts.own_unknown}
        if any(key not in explained for key in (*facts.all_known, *facts.all_unknown)):
            defaults.hidden = True

    def effective(self, resource: PlannedResource, facts: _TagFacts) -> PlannedResource:
        defaults = self._of(facts.provider_key)
        own = facts.own or {}
        if facts.all_known is not None:
            # The provider computed tags_all. Default tags it only learns at apply are missing
            # from it, so it is not trusted when they may exist, except for an unchanged
            # resource (its tags_all is the state's).
            if defaults.kind != "expression" or defaults.hidden or resource.action == "no-op":
                return replace(resource, tags=facts.all_known, unknown_tag_keys=facts.all_unknown)
            return replace(
                resource,
                tags=own,
                unknown_tag_keys=(),
                tags_unknown=True,
                unknown_reason=UNKNOWN_DEFAULTS,
            )
        if facts.own is None:
            return replace(resource, tags={}, tags_unknown=True, unknown_reason=UNKNOWN_OWN)
        if defaults.kind in ("none", "constant") and not defaults.hidden:
            tags = {**defaults.tags, **own}
            for key in facts.own_unknown:
                tags.pop(key, None)
            return replace(resource, tags=tags, unknown_tag_keys=facts.own_unknown)
        reason = UNKNOWN_DEFAULTS if defaults.kind != "unresolved" else UNKNOWN_OWN
        return replace(resource, tags=own, tags_unknown=True, unknown_reason=reason)


_UNRESOLVED = _Defaults("unresolved")


def _tag_string(value: Any) -> str | None:
    """A default tag's value as the provider stores it: strings as they are, numbers and
    booleans as Terraform converts them to strings; None for anything else (null, nested)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value if isinstance(value, str) else None


def _constant_tags(value: Any) -> dict[str, str] | None:
    """A map of default tags with every value a string (numbers and booleans converted), or
    None when it is not one. A null value leaves its key out, as the provider does."""
    if not isinstance(value, dict):
        return None
    tags: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        text = _tag_string(item)
        if text is None:
            return None
        tags[key] = text
    return tags


def _provider_defaults(
    provider: dict[str, Any], variables: dict[str, Any] | None = None
) -> _Defaults:
    """`expressions.default_tags` of one provider configuration: a list of one block whose
    `tags` is {"constant_value": {...}} when constant, {"references": [...]} or {} otherwise.
    `tags = var.NAME` alone is constant too when `variables` (the plan's root variables, for a
    root provider) holds NAME's value."""
    expressions = provider.get("expressions")
    if not isinstance(expressions, dict):
        return _Defaults("none")
    blocks = expressions.get("default_tags")
    if blocks is None or blocks == []:
        return _Defaults("none")
    if not isinstance(blocks, list):
        return _Defaults("expression")
    tags: dict[str, str] = {}
    for block in blocks:
        if not isinstance(block, dict):
            return _Defaults("expression")
        if "tags" not in block:
            continue  # `default_tags {}`: no tags
        expression = block["tags"]
        if not isinstance(expression, dict):
            return _Defaults("expression")
        if "constant_value" in expression:
            value = expression["constant_value"]
        else:
            name = _lone_variable(expression.get("references"))
            if name is None or variables is None or name not in variables:
                return _Defaults("expression")
            value = variables[name]
        if value is None:
            continue
        constant = _constant_tags(value)
        if constant is None:
            return _Defaults("expression")
        tags.update(constant)
    return _Defaults("constant", tags) if tags else _Defaults("none")


def _lone_variable(references: Any) -> str | None:
    """NAME when an expression's references are exactly `var.NAME` (Terraform may list it
    with its attribute path too, e.g. `var.NAME.x`, which is not a whole variable)."""
    if not isinstance(references, list) or not references:
        return None
    names = {r for r in references if isinstance(r, str)}
    if len(names) != len(references) or len(names) != 1:
        return None
    (reference,) = names
    if not reference.startswith("var.") or "." in reference[4:] or "[" in reference:
        return None
    return reference[4:]


def _resource(
    rc: Any, path: str, changed_only: bool, providers: _Providers
) -> tuple[PlannedResource, _TagFacts | None]:
    """The resource, and for a type that takes default tags what is needed to decide its
    effective tags (_Providers.effective) once every resource has been read."""
    if not isinstance(rc, dict):
        raise DocumentError(path, f"expected an object, got {_kind(rc)}")
    address = _string(rc, "address", path)
    tf_type = _string(rc, "type", path)
    mode = _string(rc, "mode", path)
    if mode not in ("managed", "data"):
        raise DocumentError(f"{path}.mode", f"expected 'managed' or 'data', got {mode!r}")
    module_address = rc.get("module_address", "")
    if not isinstance(module_address, str):
        raise DocumentError(
            f"{path}.module_address", f"expected a string, got {_kind(module_address)}"
        )
    provider = rc.get("provider_name", "")
    if not isinstance(provider, str):
        raise DocumentError(f"{path}.provider_name", f"expected a string, got {_kind(provider)}")
    change, action = _change(rc, path)

    is_aws = (
        provider.endswith("/aws")
        or provider == "aws"
        or (not provider and tf_type.startswith("aws_"))
    )
    info = terraform_type_info(tf_type)
    taggable = mode == "managed" and is_aws and info.taggable
    if taggable and action not in ("delete", "forget"):
        tags, unknown_keys, tags_unknown, facts = _planned_tags(rc, change, path, info, providers)
    else:
        tags, unknown_keys, tags_unknown, facts = {}, (), False, None

    resource = PlannedResource(
        address=address,
        module_address=module_address,
        tf_type=tf_type,
        resource_type=info.resource_type if is_aws else None,
        taggable=taggable,
        action=action,
        tags=tags,
        unknown_tag_keys=unknown_keys,
        tags_unknown=tags_unknown,
        provider=provider,
        mode=mode,
        skip_reason=_skip_reason(mode, action, is_aws, taggable, changed_only),
        type_known=info.known or not is_aws or mode == "data",
        unknown_reason=UNKNOWN_OWN if tags_unknown else "",
    )
    return resource, facts


def _change(rc: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The resource's `change` object and its action (a key of ACTIONS' values)."""
    change = rc.get("change")
    if not isinstance(change, dict):
        raise DocumentError(f"{path}.change", f"expected an object, got {_kind(change)}")
    actions = change.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise DocumentError(f"{path}.change.actions", "expected a list of strings")
    action = ACTIONS.get(tuple(actions))
    if action is None:
        raise DocumentError(f"{path}.change.actions", f"unknown actions {actions!r}")
    return change, action


def _skip_reason(mode: str, action: str, is_aws: bool, taggable: bool, changed_only: bool) -> str:
    """Why the rules do not apply to the resource; "" when they do."""
    if mode == "data":
        return SKIP_DATA_SOURCE
    if action == "delete":
        return SKIP_DELETED
    if action == "forget":
        return SKIP_FORGOTTEN
    if not is_aws:
        return SKIP_NOT_AWS
    if not taggable:
        return SKIP_NOT_TAGGABLE
    if action == "no-op" and changed_only:
        return SKIP_UNCHANGED
    return ""


def _planned_tags(
    rc: dict[str, Any],
    change: dict[str, Any],
    path: str,
    info: TypeInfo,
    providers: _Providers,
) -> tuple[dict[str, str], tuple[str, ...], bool, _TagFacts | None]:
    """A taggable resource's tags after the change: (known tags, keys with unknown values,
    whether keys themselves are unknown, None) when the plan decides them alone; for a type
    that takes default tags, (empty, (), False, the facts _Providers.effective decides from)."""
    after = change.get("after")
    if after is not None and not isinstance(after, dict):
        raise DocumentError(f"{path}.change.after", f"expected an object, got {_kind(after)}")
    after_unknown = change.get("after_unknown") or {}
    if not isinstance(after_unknown, dict):
        raise DocumentError(
            f"{path}.change.after_unknown", f"expected an object, got {_kind(after_unknown)}"
        )
    after = after or {}
    if info.tag_blocks:
        return (*_tag_blocks(after, after_unknown, path), None)
    facts = _tag_map(after, after_unknown, path, info.default_tags)
    if info.default_tags:
        facts.provider_key = providers.key(rc)
        return {}, (), False, facts
    if facts.all_known is None:
        return facts.own or {}, facts.own_unknown, True, None
    return facts.all_known, facts.all_unknown, False, None


def _tag_map(
    after: dict[str, Any], after_unknown: dict[str, Any], path: str, default_tags: bool
) -> _TagFacts:
    """The resource's own `tags` and, for a type that takes default tags, its `tags_all`; a
    plan without `tags_all` (hand-written, or an older provider) gives `tags` in its place.
    For types without default tags, `all_known`/`all_unknown` are the own tags."""
    own, own_unknown = _known_part(after, after_unknown, "tags", path)
    if default_tags and ("tags_all" in after or "tags_all" in after_unknown):
        all_known, all_unknown = _known_part(after, after_unknown, "tags_all", path)
    else:
        all_known, all_unknown = own, own_unknown
    return _TagFacts(None, own, own_unknown, all_known, all_unknown)


def _known_part(
    after: dict[str, Any], after_unknown: dict[str, Any], attr: str, path: str
) -> tuple[dict[str, str] | None, tuple[str, ...]]:
    """The known values of a tag map and the keys whose values are unknown; (None, ()) when
    the whole map is unknown (the plugin SDK does that as soon as one value is)."""
    unknown = after_unknown.get(attr, False)
    if unknown is True:
        return None, ()
    tags = _string_map(after.get(attr), f"{path}.change.after.{attr}")
    if not unknown:
        return tags, ()
    if not isinstance(unknown, dict):
        raise DocumentError(
            f"{path}.change.after_unknown.{attr}",
            f"expected true or an object, got {_kind(unknown)}",
        )
    keys = tuple(sorted(k for k, v in unknown.items() if v is True))
    for key in keys:
        tags.pop(key, None)
    return tags, keys


def _tag_blocks(
    after: dict[str, Any], after_unknown: dict[str, Any], path: str
) -> tuple[dict[str, str], tuple[str, ...], bool]:
    """aws_autoscaling_group: repeated `tag { key value propagate_at_launch }` blocks."""
    blocks = after.get("tag") or []
    unknown = after_unknown.get("tag") or []
    if unknown is True:
        return {}, (), True
    if not isinstance(blocks, list) or not isinstance(unknown, list):
        raise DocumentError(f"{path}.change.after.tag", "expected a list of tag blocks")
    tags: dict[str, str] = {}
    unknown_keys: list[str] = []
    tags_unknown = False
    for i, block in enumerate(blocks):
        where = f"{path}.change.after.tag[{i}]"
        if not isinstance(block, dict):
            raise DocumentError(where, f"expected an object, got {_kind(block)}")
        marks = unknown[i] if i < len(unknown) and isinstance(unknown[i], dict) else {}
        key, value = block.get("key"), block.get("value")
        if marks.get("key") or not isinstance(key, str):
            if marks.get("key"):
                tags_unknown = True
                continue
            raise DocumentError(f"{where}.key", f"expected a string, got {_kind(key)}")
        if marks.get("value"):
            unknown_keys.append(key)
        elif isinstance(value, str):
            tags[key] = value
        else:
            raise DocumentError(f"{where}.value", f"expected a string, got {_kind(value)}")
    return tags, tuple(sorted(unknown_keys)), tags_unknown


def _string_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DocumentError(path, f"expected an object of strings, got {_kind(value)}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            result[key] = item
        elif item is not None:  # unknown values are null in `after`
            raise DocumentError(f"{path}.{key}", f"expected a string, got {_kind(item)}")
    return result


def _string(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise DocumentError(f"{path}.{key}", f"expected a non-empty string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
