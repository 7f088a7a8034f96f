"""A demo AWS estate for TagSense, seeded into a moto server (never into real AWS).

moto.start_moto_server() runs moto's standalone server (a subprocess from this venv) and
build.seed_estate() builds, through boto3 pointed at it, what a mid-sized company's AWS looks
like: an AWS Organization in the management account (moto's default account 123456789012), OUs,
member accounts reached by assuming OrganizationAccountAccessRole, a TagSenseReadOnly role in
each, and at least the requested number of resources (2,000 by default; seeded in about 35 s on
2 cores) of every type TagSense scans, related the way real ones are and tagged with realistic
hygiene: mostly complete, the rest with case-variant keys, misspelt values, missing keys or no
tags at all. Everything random is drawn from random.Random(seed); only the ids AWS (moto)
generates differ between runs (setup_demo_estate seeds moto's ids too).

One module per concern: plan (the accounts, applications and types), tagging (the hygiene
deck), session (clients, member accounts, sites), organization (the AWS Organization and IAM
roles), ec2, storage (S3, DynamoDB, EFS), lambda_, load_balancers, containers (ECS, EKS),
databases (RDS, ElastiCache), cloudfront, census (counting what is there), build (the order
of it all) and moto (the server).

Known moto gaps (moto 5.2.5), none of them papered over here:
- The Resource Groups Tagging API's TagResources answers "Service not yet supported" for ELBv2,
  classic ELB and EKS ARNs. Every resource here is tagged through its own service's API (Tags on
  create, CreateTags, PutBucketTagging), which works for all types.
- Lambda Invoke needs Docker; functions are only created (from an in-memory zip), never invoked.
- DescribeSnapshots ignores OwnerIds: with moto's default AMIs loaded, "OwnerIds=['self']" also
  returns the ~1,300 snapshots behind those AMIs (owned by other accounts) in every account and
  region. start_moto_server() therefore sets MOTO_EC2_LOAD_DEFAULT_AMIS=false; against a server
  started without it, the summary's notes say how many foreign snapshots a scan will see.
- With the default AMIs off no public AMI exists, and moto does not validate ImageId (unless
  MOTO_ENABLE_AMI_VALIDATION is set), so the first instances are launched from PUBLIC_AMI, an id
  standing for an Amazon Linux image the estate does not own; later fleets launch from "golden"
  AMIs made from those instances.
- Lambda's VpcConfig.VpcId is always "vpc-123abc", whatever the subnets' VPC.
- DescribeCacheClusters returns no SecurityGroups, though CreateCacheCluster accepts them.
- ELBv2 DNS names are "<name>-1.<region>.elb.amazonaws.com": the same in every account for the
  same name, so load balancer names here carry the account's prefix.
- CreateImage makes one 15 GiB snapshot per AMI, whatever the instance's volumes (AWS makes one
  per EBS volume); those snapshots are untagged, as AWS leaves them unless asked.
- Organizations' CreateAccount creates OrganizationAccountAccessRole in the new account itself
  (as AWS does); STS AssumeRole never checks that a role exists or trusts the caller, nor does
  moto enforce IAM policies, so the roles and trust policies here are for realism only.
"""

from .build import EstateSummary, seed_estate
from .moto import reset_moto, start_moto_server, stop_moto_server
from .plan import (
    ACCOUNT_PLANS,
    DEFAULT_REGIONS,
    INSTANCE_TYPES,
    MANAGEMENT_ACCOUNT_ID,
    READ_ONLY_ROLE,
    RESOURCE_TYPES,
    largest_remainder,
)
from .session import EstateError
from .tagging import Tagger

__all__ = [
    "ACCOUNT_PLANS",
    "DEFAULT_REGIONS",
    "INSTANCE_TYPES",
    "MANAGEMENT_ACCOUNT_ID",
    "READ_ONLY_ROLE",
    "RESOURCE_TYPES",
    "EstateError",
    "EstateSummary",
    "Tagger",
    "largest_remainder",
    "reset_moto",
    "seed_estate",
    "start_moto_server",
    "stop_moto_server",
]
