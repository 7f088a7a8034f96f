"""A BRIN index on inventory_resource.first_scan_id.

The policies' evaluation after a scan reads the resources the scan saw first
(policies.evaluation._touched_by); without an index that is a scan of the organization's
resources (0.27 s at 1,000,000). Resources are inserted in scan order, so a block-range index
answers it from a few ranges, and costs the ingest next to nothing (a B-tree here would add a
fifth index to every inserted row).
"""

from django.db import migrations

INDEX = "resource_first_scan_brin"


def create(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON inventory_resource USING brin (first_scan_id) "
        "WITH (autosummarize = on)"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("inventory", "0006_resource_costs")]

    operations = [migrations.RunPython(create, drop)]
