"""ElastiCache cluster scanner: tagged and never-tagged clusters."""

import boto3

from inventory.scanners.elasticache import CacheClusterScanner

from .conftest import ACCOUNT, REGION, scan


def test_cache_clusters_tagged_and_never_tagged(ctx):
    ec = boto3.client("elasticache", region_name=REGION)
    ec.create_cache_cluster(
        CacheClusterId="sessions",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=2,
        Tags=[{"Key": "Name", "Value": "Sessions"}, {"Key": "Owner", "Value": "dave"}],
    )
    ec.create_cache_cluster(
        CacheClusterId="scratch-cache",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=1,
    )
    found = scan(CacheClusterScanner, ctx)
    assert set(found) == {"sessions", "scratch-cache"}
    sessions = found["sessions"]
    assert sessions.resource_type == "elasticache:cluster"
    assert sessions.tags == {"Name": "Sessions", "Owner": "dave"}
    assert sessions.name == "Sessions"
    assert sessions.arn == f"arn:aws:elasticache:{REGION}:{ACCOUNT}:cluster:sessions"
    assert sessions.config["Engine"] == "memcached"
    assert sessions.config["NumCacheNodes"] == 2
    scratch = found["scratch-cache"]
    assert scratch.tags == {}
    assert scratch.name == "scratch-cache"
    assert scratch.arn == f"arn:aws:elasticache:{REGION}:{ACCOUNT}:cluster:scratch-cache"
