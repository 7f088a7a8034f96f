from .accounts import AwsAccount
from .costs import ResourceCost
from .graph import Edge
from .resources import Resource, TagEvent
from .scans import ScanRun, ScanUnit, UnitCoverage
from .schedules import ScanSchedule
from .scoping import AccountScopedQuerySet, AccountTeamGrant

__all__ = [
    "AccountScopedQuerySet",
    "AccountTeamGrant",
    "AwsAccount",
    "Edge",
    "Resource",
    "ResourceCost",
    "ScanRun",
    "ScanSchedule",
    "ScanUnit",
    "TagEvent",
    "UnitCoverage",
]
