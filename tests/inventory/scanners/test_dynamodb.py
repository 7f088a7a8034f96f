"""DynamoDB table scanner: tagged and never-tagged tables, and tag pagination."""

import boto3

from inventory.scanners.dynamodb import TableScanner

from .conftest import ACCOUNT, REGION, scan


def _table(client, name, **kwargs):
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **kwargs,
    )


def test_tables_tagged_and_never_tagged(ctx):
    ddb = boto3.client("dynamodb", region_name=REGION)
    _table(
        ddb, "orders", Tags=[{"Key": "Name", "Value": "Orders"}, {"Key": "Env", "Value": "prod"}]
    )
    _table(ddb, "scratch")
    found = scan(TableScanner, ctx)
    assert set(found) == {"orders", "scratch"}
    orders = found["orders"]
    assert orders.resource_type == "dynamodb:table"
    assert orders.tags == {"Name": "Orders", "Env": "prod"}
    assert orders.name == "Orders"
    assert orders.arn == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
    assert orders.config["BillingMode"] == "PAY_PER_REQUEST"
    scratch = found["scratch"]
    assert scratch.tags == {}
    assert scratch.name == "scratch"
    assert scratch.arn == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/scratch"


def test_every_tag_page_is_followed(ctx):
    # moto returns ListTagsOfResource ten tags at a time, with a NextToken.
    ddb = boto3.client("dynamodb", region_name=REGION)
    tags = [{"Key": f"k{i:02}", "Value": f"v{i}"} for i in range(25)]
    _table(ddb, "many-tags", Tags=tags)
    found = scan(TableScanner, ctx)
    assert found["many-tags"].tags == {t["Key"]: t["Value"] for t in tags}
