"""The limits every YAML document the portal reads is held to: rule files (policies/engine/spec.py)
and CloudFormation templates (policies/ci/cloudformation.py).

- No anchors or aliases: an alias repeats a node by reference, so a few kilobytes can expand
  into gigabytes of work and output (the "billion laughs"). Rule files never need them, and
  CloudFormation does not support them either.
- At most MAX_DEPTH levels of nesting: composing a document recurses once per level.
- Numbers of at most MAX_NUMBER_CHARS characters, and numbers or dates that cannot be built
  (an integer past Python's digit limit, a 13th month) are YAML errors, not ValueErrors:
  YAML 1.1's base-60 integers (1:2:3...) take time quadratic in their length.

`screen()` runs over the parser's events before anything is composed; `bound_scalars()` sets
the constructors of a loader class. Both raise yaml.MarkedYAMLError subclasses, with the line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode

_Loader = TypeVar("_Loader", bound=type[SafeConstructor])
_Construct = Callable[[Any, ScalarNode], Any]

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 100
ALIASES_REFUSED = "YAML anchors and aliases are not allowed"


class RefusedYAML(yaml.MarkedYAMLError):
    """A document over one of the limits; `problem` says which, `problem_mark` where."""


def screen(text: str, loader: type) -> None:
    """Raise RefusedYAML at the first anchor, alias, or level of nesting past MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _refused(ALIASES_REFUSED, event)
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _refused(f"nested deeper than {MAX_DEPTH} levels", event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _refused(problem: str, event: yaml.Event) -> RefusedYAML:
    # The C parser's marks (yaml._yaml.Mark) have the same line and column as the pure-Python
    # Mark, the only one types-PyYAML's MarkedYAMLError names.
    return RefusedYAML(problem=problem, problem_mark=event.start_mark)  # type: ignore[arg-type]


def _guarded(construct: _Construct, what: str) -> _Construct:
    def constructor(loader: Any, node: ScalarNode) -> Any:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise ConstructorError(
                None,
                None,
                f"a {what} of {len(node.value)} characters (at most {MAX_NUMBER_CHARS})",
                node.start_mark,
            )
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(
                None, None, f"not a valid {what}: {exc}", node.start_mark
            ) from None

    return constructor


def bound_scalars(loader: _Loader) -> _Loader:
    """Give `loader` (a SafeLoader or CSafeLoader subclass) the bounded constructors."""
    for tag, construct, what in (
        ("int", SafeConstructor.construct_yaml_int, "number"),
        ("float", SafeConstructor.construct_yaml_float, "number"),
        ("timestamp", SafeConstructor.construct_yaml_timestamp, "date"),
    ):
        loader.add_constructor(f"tag:yaml.org,2002:{tag}", _guarded(construct, what))
    return loader
