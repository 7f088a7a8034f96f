from .accounts import AwsAccount
from .graph import Edge
from .resources import Resource, TagEvent
from .scans import ScanRun, ScanUnit

__all__ = ["AwsAccount", "Edge", "Resource", "ScanRun", "ScanUnit", "TagEvent"]
