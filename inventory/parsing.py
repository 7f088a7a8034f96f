"""botocore's XML response parsers (EC2 and query protocols), for scanning sessions, with what
they recompute at every XML element computed once instead.

botocore walks each response against the operation's output shape. For every structure in the
response (about twenty per EC2 instance) it lists the shape's members again, works out each
member's XML name again, and strips the namespace from every child element's tag with a
regular expression. On a page of 1,000 instances that bookkeeping is most of the parse.
Here each structure's member plan is computed once per shape, each tag's local name once per
tag, each shape type's handler once per type; the walk itself, and so the result, is
botocore's (tests/inventory/test_parsing.py compares both parsers' output, dict for dict, on
every query-protocol response the scanners read).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from botocore.parsers import EC2QueryParser, QueryParser, ResponseParserFactory

_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # shape -> member plan
_plans_lock = threading.Lock()
_local_names: dict[str, str] = {}  # "{namespace}tag" -> "tag"


class _MemoisedXMLParsing:
    def _node_tag(self, node: Any) -> str:
        tag = node.tag
        local = _local_names.get(tag)
        if local is None:
            local = _local_names[tag] = super()._node_tag(node)  # type: ignore[misc]
        return local

    def _parse_shape(self, shape: Any, node: Any) -> Any:
        handler = getattr(self, _HANDLERS.get(shape.type_name) or _handler(shape.type_name), None)
        if handler is None:
            return self._default_handle(shape, node)  # type: ignore[attr-defined]
        return handler(shape, node)

    def _build_name_to_xml_node(self, parent_node: Any) -> dict[str, Any]:
        if isinstance(parent_node, list):
            return self._build_name_to_xml_node(parent_node[0])
        xml_dict: dict[str, Any] = {}
        for item in parent_node:
            key = _local_names.get(item.tag) or self._node_tag(item)
            if key in xml_dict:
                if isinstance(xml_dict[key], list):
                    xml_dict[key].append(item)
                else:
                    xml_dict[key] = [xml_dict[key], item]
            else:
                xml_dict[key] = item
        return xml_dict

    def _plan(self, shape: Any) -> tuple[dict[str, tuple[str, Any]], list[tuple[str, Any]]]:
        """({XML name: (member name, member shape)}, [XML-attribute members]) of a structure;
        None when two members share an XML name (then botocore's own walk is used)."""
        plan = _plans.get(shape, _MISSING)
        if plan is _MISSING:
            by_xml: dict[str, tuple[str, Any]] = {}
            attributes = []
            for member_name, member_shape in shape.members.items():
                serialization = member_shape.serialization
                location = serialization.get("location")
                if location in self.KNOWN_LOCATIONS or serialization.get("eventheader"):  # type: ignore[attr-defined]
                    continue  # handled elsewhere, as botocore does
                xml_name = self._member_key_name(member_shape, member_name)  # type: ignore[attr-defined]
                if xml_name in by_xml:
                    by_xml = None  # type: ignore[assignment]
                    break
                by_xml[xml_name] = (member_name, member_shape)
                if serialization.get("xmlAttribute"):
                    attributes.append((member_name, member_shape))
            plan = None if by_xml is None else (by_xml, attributes)
            with _plans_lock:
                _plans[shape] = plan
        return plan

    def _handle_structure(self, shape: Any, node: Any) -> Any:
        if shape.is_tagged_union or shape.metadata.get("exception", False):
            return super()._handle_structure(shape, node)  # type: ignore[misc]
        plan = self._plan(shape)
        if plan is None:
            return super()._handle_structure(shape, node)  # type: ignore[misc]
        by_xml, attributes = plan
        xml_dict = self._build_name_to_xml_node(node)
        parsed = {}
        # Walk the elements present (a few) rather than every member the shape could have
        # (sixty for an EC2 instance); elements the shape does not name are ignored, as botocore
        # ignores them.
        for xml_name, member_node in xml_dict.items():
            member = by_xml.get(xml_name)
            if member is not None:
                parsed[member[0]] = self._parse_shape(member[1], member_node)
        for member_name, member_shape in attributes:
            if member_name in parsed:
                continue
            location_name = member_shape.serialization["name"]
            prefix = location_name.split(":")[0] + ":"
            attribs = {
                self._namespace_re.sub(prefix, key): value  # type: ignore[attr-defined]
                for key, value in node.attrib.items()
            }
            if location_name in attribs:
                parsed[member_name] = attribs[location_name]
        return parsed


_MISSING = object()


_HANDLERS: dict[str, str] = {}


def _handler(type_name: str) -> str:
    name = _HANDLERS[type_name] = f"_handle_{type_name}"
    return name


class ScanEC2QueryParser(_MemoisedXMLParsing, EC2QueryParser):
    pass


class ScanQueryParser(_MemoisedXMLParsing, QueryParser):
    pass


class ScanParserFactory(ResponseParserFactory):
    """The session component that makes each response's parser (botocore asks for one per
    response): the memoised parsers for the EC2 and query protocols, botocore's for the rest."""

    PARSERS = {"ec2": ScanEC2QueryParser, "query": ScanQueryParser}

    def create_parser(self, protocol_name: str):
        parser_class = self.PARSERS.get(protocol_name)
        if parser_class is None:
            return super().create_parser(protocol_name)
        return parser_class(**self._defaults)
