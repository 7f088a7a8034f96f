"""Exemptions record who requested and who decided them as a principal ("user:<id>" or
"service_account:<id>"), so separation of duties holds for service accounts too.

Existing rows are filled in: from the user when one was recorded, otherwise (a request or a
decision made with a service account's token, which has no user) from the audit event of
that step, whose actor names the token; its service account is the principal."""

from django.db import migrations, models

STEPS = {
    "requested_by": ["policy.exemption_request"],
    "decided_by": ["policy.exemption_approve", "policy.exemption_reject"],
}


def _principal_from_audit(AuditEvent, ApiToken, exemption, actions):
    event = (
        AuditEvent.objects.filter(
            organization_id=exemption.organization_id,
            action__in=actions,
            target_type="policies.exemption",
            target_id=str(exemption.pk),
            actor_kind="token",
        )
        .order_by("seq")
        .first()
    )
    if event is None or not event.actor_id.isdigit():
        return ""
    token = ApiToken.objects.filter(pk=int(event.actor_id)).first()
    if token is None:
        return ""
    if token.user_id is not None:
        return f"user:{token.user_id}"
    return f"service_account:{token.service_account_id}"


def fill_principals(apps, schema_editor):
    Exemption = apps.get_model("policies", "Exemption")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for exemption in Exemption.objects.all().iterator():
        changed = []
        for field, actions in STEPS.items():
            if field == "decided_by" and exemption.decided_at is None:
                continue
            user_id = getattr(exemption, f"{field}_id")
            if user_id is not None:
                value = f"user:{user_id}"
            else:
                value = _principal_from_audit(AuditEvent, ApiToken, exemption, actions)
            if value:
                setattr(exemption, f"{field}_principal", value)
                changed.append(f"{field}_principal")
        if changed:
            exemption.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_oidc"),
        ("audit", "0003_nightly_verification"),
        ("policies", "0007_evaluation_ledger"),
    ]

    operations = [
        migrations.AddField(
            model_name="exemption",
            name="requested_by_principal",
            field=models.CharField(blank=True, max_length=80),
        ),
        migrations.AddField(
            model_name="exemption",
            name="decided_by_principal",
            field=models.CharField(blank=True, max_length=80),
        ),
        migrations.RunPython(fill_principals, migrations.RunPython.noop),
    ]
