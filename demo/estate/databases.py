"""Databases: RDS instances (MySQL, PostgreSQL), an Aurora PostgreSQL cluster with its member,
the subnet group they share per site, and ElastiCache clusters."""

from __future__ import annotations

from typing import Any

from .session import Member, Site
from .tagging import optional_tags


def _subnet_group(member: Member, site: Site) -> str:
    """The site's DB subnet group over its private subnets, made on first use."""
    if not site.db_subnet_group:
        rds = member.client("rds", site.region)
        site.db_subnet_group = f"{member.plan.prefix}-db-subnets"
        rds.create_db_subnet_group(
            DBSubnetGroupName=site.db_subnet_group,
            DBSubnetGroupDescription="private subnets for databases",
            SubnetIds=site.private_subnets(),
        )
    return site.db_subnet_group


def _db_instance(
    member: Member, site: Site, name: str, engine: str, app: str, **extra: Any
) -> None:
    rds = member.client("rds", site.region)
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "DBInstanceClass": extra.pop("DBInstanceClass", "db.t3.medium"),
        "Engine": engine,
        **optional_tags(member.tagger.tags(app)),
        # An Aurora member takes its cluster's subnet group; AWS shows it on the instance,
        # moto only if it is given again here.
        "DBSubnetGroupName": _subnet_group(member, site),
        **extra,
    }
    if "DBClusterIdentifier" not in extra:
        kwargs.update(
            MasterUsername="dbadmin",
            MasterUserPassword=f"demo-{member.rng.getrandbits(64):016x}",
            AllocatedStorage=member.rng.choice((20, 100, 500)),
            VpcSecurityGroupIds=[site.groups.get("db", site.groups["app"])],
            StorageEncrypted=member.rng.random() < 0.8,
            MultiAZ=member.plan.environments[0][0] == "prod",
        )
    rds.create_db_instance(**kwargs)
    member.made("rds:db")


def rds_mysql(member: Member, site: Site) -> None:
    _db_instance(member, site, "catalog-db", "mysql", "catalog")


def rds_postgres(member: Member, site: Site) -> None:
    _db_instance(member, site, "shared-dev-db", "postgres", "sandbox")


def rds_aurora(member: Member, site: Site) -> None:
    """Two PostgreSQL instances, then the warehouse: an Aurora cluster and its one member."""
    _db_instance(member, site, "etl-staging-db", "postgres", "etl")
    _db_instance(member, site, "reporting-db", "postgres", "reporting")
    rds = member.client("rds", site.region)
    rds.create_db_cluster(
        DBClusterIdentifier="warehouse",
        Engine="aurora-postgresql",
        MasterUsername="dbadmin",
        MasterUserPassword=f"demo-{member.rng.getrandbits(64):016x}",
        DBSubnetGroupName=_subnet_group(member, site),
        VpcSecurityGroupIds=[site.groups.get("db", site.groups["app"])],
        StorageEncrypted=True,
        **optional_tags(member.tagger.tags("data-lake")),
    )
    member.made("rds:cluster")
    _db_instance(
        member,
        site,
        "warehouse-1",
        "aurora-postgresql",
        "data-lake",
        DBClusterIdentifier="warehouse",
        DBInstanceClass="db.r6g.large",
    )


def elasticache(member: Member, site: Site) -> None:
    client = member.client("elasticache", site.region)
    app = member.rng.choice(member.plan.apps)
    engine = member.rng.choice(("redis", "memcached"))
    client.create_cache_cluster(
        CacheClusterId=f"{member.plan.prefix}-{app}-cache",
        Engine=engine,
        CacheNodeType="cache.t3.small",
        NumCacheNodes=1,
        SecurityGroupIds=[site.groups["app"]],
        **optional_tags(member.tagger.tags(app)),
    )
    member.made("elasticache:cluster")
