"""Every score snapshot is measured: computed from recorded findings. The invented demo history
(source "demo", written by the former demo.history) is deleted; the demo now simulates its past
through the real scan and evaluation code (demo.simulation), and its snapshots are measured ones.
The migration runs as the tables' owner, which row-level security does not bind (no FORCE)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("policies", "0009_finding_events"),
    ]

    operations = [
        migrations.RunSQL(
            "DELETE FROM policies_scoresnapshot WHERE source = 'demo'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="scoresnapshot",
            name="source",
            field=models.CharField(
                choices=[("measured", "measured")], default="measured", max_length=16
            ),
        ),
    ]
