"""Compliance frameworks as reviewable data: controls and the tag rules that evidence them.

A framework file (policies/data/frameworks/*.yaml) is
``{id, name, version, source, controls: [{id, title, rationale?, rules: [rule ids]}]}``.
``parse_framework`` checks its shape, that control ids are unique and that every rule it
cites exists, and raises the same SpecError as the rule parser, naming every problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .engine.spec import (
    DATA_DIR,
    RULE_ID_RE,
    SpecError,
    SpecProblem,
    _join,
    _Reader,
    builtin_rules,
    load_yaml,
)

FRAMEWORK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
CONTROL_ID_RE = re.compile(r"^\S{1,64}$")
SOURCE_RE = re.compile(r"^https://\S+$")


@dataclass(frozen=True)
class ControlDefinition:
    id: str  # as the standard numbers it: "CC6.1", "§164.310(d)(1)", "12.5.1", "5.9"
    title: str  # as the standard words it
    rules: tuple[str, ...]  # ids of the tag rules that evidence it
    rationale: str = ""  # how those rules evidence the control, for the reviewer


@dataclass(frozen=True)
class FrameworkDefinition:
    id: str
    name: str
    version: str
    source: str  # URL of the official catalogue
    controls: tuple[ControlDefinition, ...]

    def control(self, control_id: str) -> ControlDefinition:
        for control in self.controls:
            if control.id == control_id:
                return control
        raise KeyError(control_id)


def parse_framework(text: str | bytes, rule_ids: Iterable[str]) -> FrameworkDefinition:
    """A framework file checked against the ids of the rules it may cite."""
    known = set(rule_ids)
    root = load_yaml(text, what="framework")
    reader = _Reader()
    top = reader.mapping(
        root,
        "",
        ("id", "name", "version", "source", "controls"),
        ("id", "name", "version", "source", "controls"),
    )
    if top is None or reader.problems:
        raise SpecError(reader.problems)
    framework_id = reader.text(top["id"], "id", FRAMEWORK_ID_RE, "a framework slug")
    name = reader.text(top["name"], "name")
    version = reader.text(top["version"], "version")
    source = reader.text(top["source"], "source", SOURCE_RE, "an https:// URL")
    controls: list[ControlDefinition] = []
    node = top["controls"]
    if not isinstance(node.value, list) or not node.value:
        reader.fail("controls", "expected a non-empty list of controls", node)
        raise SpecError(reader.problems)
    seen: dict[str, int] = {}
    for index, item in enumerate(node.value):
        label = f"controls[{index}]"
        fields = reader.mapping(
            item, label, ("id", "title", "rationale", "rules"), ("id", "title", "rules")
        )
        if fields is None or not {"id", "title", "rules"} <= fields.keys():
            continue
        control_id = reader.text(fields["id"], _join(label, "id"), CONTROL_ID_RE, "a control id")
        if control_id is not None:
            label = f"controls[{index}] ({control_id})"
        title = reader.text(fields["title"], _join(label, "title"))
        rationale = ""
        if "rationale" in fields:
            rationale = reader.text(fields["rationale"], _join(label, "rationale")) or ""
        rules = reader.texts(
            fields["rules"], _join(label, "rules"), RULE_ID_RE, "a rule id", non_empty=True
        )
        for i, rule_id in enumerate(rules or ()):
            if rule_id not in known:
                reader.fail(
                    f"{_join(label, 'rules')}[{i}]",
                    f"no rule with id {rule_id!r}",
                    fields["rules"].value[i],
                )
        if control_id is not None and control_id in seen:
            reader.fail(
                _join(label, "id"),
                f"duplicate control id {control_id!r}, first used by controls[{seen[control_id]}]",
                fields["id"],
            )
            continue
        if control_id is None or title is None or rules is None:
            continue
        seen[control_id] = index
        controls.append(ControlDefinition(control_id, " ".join(title.split()), rules, rationale))
    if reader.problems:
        raise SpecError(reader.problems)
    assert framework_id and name and version and source  # reader.problems would be non-empty
    return FrameworkDefinition(framework_id, name, version, source, tuple(controls))


def top_line(path) -> int:
    return load_yaml(path.read_bytes(), what=path.name).value["id"].line


def builtin_frameworks() -> dict[str, FrameworkDefinition]:
    """The frameworks shipped in policies/data/frameworks/, by id, checked against the
    built-in rule library."""
    rule_ids = [rule.id for rule in builtin_rules()]
    frameworks: dict[str, FrameworkDefinition] = {}
    for path in sorted((DATA_DIR / "frameworks").glob("*.yaml")):
        try:
            framework = parse_framework(path.read_bytes(), rule_ids)
        except SpecError as exc:
            raise SpecError(
                [SpecProblem(f"{path.name}: {p.where}", p.message, p.line) for p in exc.problems]
            ) from None
        if framework.id in frameworks:
            message = f"duplicate framework id {framework.id!r}"
            raise SpecError([SpecProblem(f"{path.name}: id", message, top_line(path))])
        frameworks[framework.id] = framework
    return frameworks
