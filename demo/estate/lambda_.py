"""Lambda functions (created from an in-memory zip, never invoked: moto's Invoke needs Docker),
most of them in the site's private subnets."""

from __future__ import annotations

from typing import Any

from .session import Member, Site


def function(member: Member, site: Site) -> None:
    client = member.client("lambda", site.region)
    rng = member.rng
    app = rng.choice(member.plan.apps)
    verb = rng.choice(("ingest", "resize", "notify", "sync", "cleanup", "webhook"))
    kwargs: dict[str, Any] = {
        "FunctionName": f"{app}-{verb}-{member.next():04d}",
        "Runtime": rng.choice(("python3.12", "python3.11", "nodejs20.x")),
        "Role": member.roles["lambda-exec"],
        "Handler": "handler.handler",
        "Code": {"ZipFile": member.estate.lambda_zip},
        "MemorySize": rng.choice((128, 256, 512, 1024)),
        "Timeout": rng.choice((3, 15, 30, 60)),
    }
    if rng.random() < 0.6:  # most functions run in the VPC's private subnets
        kwargs["VpcConfig"] = {
            "SubnetIds": site.private_subnets(),
            "SecurityGroupIds": [site.groups["app"]],
        }
    tags = member.tagger.tags(app)
    if tags:
        kwargs["Tags"] = tags
    client.create_function(**kwargs)
    member.made("lambda:function")
