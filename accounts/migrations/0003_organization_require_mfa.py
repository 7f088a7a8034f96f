from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="require_mfa",
            field=models.BooleanField(
                default=False, verbose_name="require two-factor authentication"
            ),
        ),
    ]
