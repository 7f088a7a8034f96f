"""The scanner plugin contract.

A scanner declares one resource type and how to list it; the runner (inventory/runner.py) owns
sessions, retries, concurrency, counting and storage. A scanner yields pages of
ResourceRecord, so memory does not grow with the estate. Adding a type is one module here that
subclasses Scanner and decorates it with @register, plus its tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.client import BaseClient

from . import load_all


@dataclass(frozen=True)
class Relation:
    kind: str
    target_arn: str


@dataclass
class ResourceRecord:
    arn: str
    resource_type: str
    resource_id: str
    region: str
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    relations: list[Relation] = field(default_factory=list)


@dataclass
class ScanContext:
    """What a scanner gets: a client factory bound to one account and region."""

    account_id: str
    region: str
    partition: str
    client: Callable[[str], BaseClient]

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        region = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"


def tag_list_to_dict(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    """[{'Key': k, 'Value': v}] (or lowercase key/value) to {k: v}."""
    result: dict[str, str] = {}
    for tag in tags or ():
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            result[key] = tag.get("Value", tag.get("value", "")) or ""
    return result


def name_from_tags(tags: dict[str, str], default: str = "") -> str:
    return tags.get("Name") or tags.get("name") or default


class Scanner(ABC):
    """Base class of every scanner. Subclasses set the class attributes and implement pages()."""

    resource_type: ClassVar[str]  # "ec2:instance"
    service: ClassVar[str]  # boto3 client name: "ec2"
    label: ClassVar[str]  # "EC2 instance"
    # How the type is tagged: "tagging-api" (Resource Groups Tagging API), "service" (only the
    # service's own API), or "none" (not taggable).
    tagging: ClassVar[str] = "tagging-api"
    # Global services are scanned once per account, from this region.
    global_region: ClassVar[str | None] = None

    @abstractmethod
    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        """Yield the type's resources in this account and region, one list per API page."""

    @staticmethod
    def paginate(client: BaseClient, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paginated operation, following every token."""
        yield from client.get_paginator(operation).paginate(**kwargs)


_registry: dict[str, type[Scanner]] = {}


def register(cls: type[Scanner]) -> type[Scanner]:
    if cls.resource_type in _registry:
        raise ValueError(f"two scanners for {cls.resource_type}")
    _registry[cls.resource_type] = cls
    return cls


def scanners() -> dict[str, type[Scanner]]:

    load_all()
    return dict(sorted(_registry.items()))


def scanner_for(resource_type: str) -> Scanner:
    try:
        return scanners()[resource_type]()
    except KeyError:
        raise ValueError(f"unknown resource type {resource_type!r}") from None


def jsonable(value: Any) -> Any:
    """A describe-call value made JSON-safe (datetimes to ISO text)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def pick(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The selected keys of a describe-call item, JSON-safe, missing ones left out."""
    return {key: jsonable(item[key]) for key in keys if key in item}
