"""An account's and a scan's creation time come from tagsense.clock, as every time a scan
records does: the demo's replayed history (demo.simulation) creates them at simulated moments."""

from django.db import migrations, models

import tagsense.clock


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0007_resource_first_scan_brin"),
    ]

    operations = [
        migrations.AlterField(
            model_name="awsaccount",
            name="created_at",
            field=models.DateTimeField(default=tagsense.clock.now, editable=False),
        ),
        migrations.AlterField(
            model_name="scanrun",
            name="created_at",
            field=models.DateTimeField(default=tagsense.clock.now, editable=False),
        ),
    ]
