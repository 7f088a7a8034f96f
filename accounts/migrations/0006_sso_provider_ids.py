"""Identity-provider ids that no two organizations, nor SAML and OpenID Connect, can share.

Before: a SAML app's provider id was the organization's slug and an OpenID one "oidc-<slug>", so
the SAML IdP of an organization whose slug is "oidc-acme" and acme's OpenID provider shared
allauth's (provider id, uid) namespace. After: "saml-<organization id>" and
"oidc-<organization id>" (accounts.sso, accounts.oidc), and slugs may no longer begin with
"saml", "oidc" or "openid" followed by "-", "_" or "." (accounts.models.RESERVED_SLUG).

Linked accounts (SocialAccount rows) follow their provider. Where an old id named both an
organization's SAML IdP and another organization's OpenID provider, nobody can tell which one
made (or last used) a link: such links are deleted, and their holders connect again.
"""

from django.db import migrations, models

import accounts.models


def forwards(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    OIDCConfiguration = apps.get_model("accounts", "OIDCConfiguration")
    SocialApp = apps.get_model("socialaccount", "SocialApp")
    SocialAccount = apps.get_model("socialaccount", "SocialAccount")
    # OIDCConfiguration is row-level secured; migrate runs as the table owner, whom the policies
    # do not bind (docs/architecture.md), so every organization's rows are read here.

    by_slug = {o.slug: o.pk for o in Organization.objects.all()}
    saml: dict[str, str] = {}  # old provider id -> new
    for app in SocialApp.objects.filter(provider="saml"):
        pk = by_slug.get(app.provider_id)
        if pk is None:  # already migrated, or an app of no organization
            continue
        saml[app.provider_id] = f"saml-{pk}"
        app.client_id = app.provider_id
        app.provider_id = f"saml-{pk}"
        app.save(update_fields=["provider_id", "client_id"])
    oidc: dict[str, str] = {}
    slug_of = {pk: slug for slug, pk in by_slug.items()}
    for row in OIDCConfiguration.objects.all():
        oidc[f"oidc-{slug_of[row.organization_id]}"] = f"oidc-{row.organization_id}"

    ambiguous = set(saml) & set(oidc)
    SocialAccount.objects.filter(provider__in=ambiguous).delete()
    # Two steps: an old id may equal another provider's new one (the slug "7" of organization 9
    # made "oidc-7", organization 7's new id).
    renames = {old: new for old, new in [*saml.items(), *oidc.items()] if old not in ambiguous}
    for old, new in renames.items():
        SocialAccount.objects.filter(provider=old).update(provider=f"migrating:{new}")
    for new in renames.values():
        SocialAccount.objects.filter(provider=f"migrating:{new}").update(provider=new)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_oidc"),
        ("socialaccount", "0006_alter_socialaccount_extra_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="organization",
            name="slug",
            field=models.SlugField(
                max_length=64,
                unique=True,
                validators=[accounts.models.validate_organization_slug],
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
