from django import forms

from .models import ServiceAccountRole, TokenScope
from .roles import Role
from .tokens import (
    DEFAULT_EXPIRY_DAYS,
    EXPIRY_CHOICES,
    SERVICE_ACCOUNT_EXPIRY_CHOICES,
)


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200)


class NewOrganizationForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        label="Short name",
        max_length=64,
        required=False,
        help_text="Used in addresses (/o/<short name>/); letters, digits and hyphens. "
        "Empty: made from the name.",
    )


class SecurityForm(forms.Form):
    require_mfa = forms.BooleanField(
        label="Require two-factor authentication for all members", required=False
    )


class AddMemberForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class TeamMemberForm(forms.Form):
    user = forms.ChoiceField(label="Member")

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(m.user_id, m.user.email) for m in members]


class PersonalTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop script'")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    expires_in_days = forms.TypedChoiceField(
        label="Expires in", choices=EXPIRY_CHOICES, coerce=int, initial=DEFAULT_EXPIRY_DAYS
    )


class ServiceAccountTokenForm(PersonalTokenForm):
    expires_in_days = forms.TypedChoiceField(
        label="Expires in",
        choices=SERVICE_ACCOUNT_EXPIRY_CHOICES,
        coerce=int,
        initial=DEFAULT_EXPIRY_DAYS,
    )


class ServiceAccountForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=255, required=False)
    role = forms.ChoiceField(choices=ServiceAccountRole.choices, initial=ServiceAccountRole.VIEWER)


class SAMLForm(forms.Form):
    """The organization's IdP: from its metadata (URL or file) or typed in by hand."""

    metadata_url = forms.URLField(
        label="IdP metadata URL", required=False, assume_scheme="https", max_length=1024
    )
    metadata_file = forms.FileField(label="or IdP metadata XML file", required=False)
    entity_id = forms.CharField(label="IdP entity ID (issuer)", required=False, max_length=1024)
    sso_url = forms.URLField(
        label="Single sign-on URL", required=False, assume_scheme="https", max_length=1024
    )
    slo_url = forms.URLField(
        label="Single logout URL", required=False, assume_scheme="https", max_length=1024
    )
    certificate = forms.CharField(
        label="Signing certificate (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    next_certificate = forms.CharField(
        label="Next signing certificate (during a rotation)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    want_message_signed = forms.BooleanField(
        label="Also require the whole response to be signed", required=False
    )
    email_attribute = forms.CharField(label="E-mail attribute", max_length=255, required=False)
    first_name_attribute = forms.CharField(
        label="First name attribute", max_length=255, required=False
    )
    last_name_attribute = forms.CharField(
        label="Last name attribute", max_length=255, required=False
    )
    groups_attribute = forms.CharField(label="Groups attribute", max_length=255, required=False)

    MAX_METADATA_BYTES = 1024 * 1024

    def clean_metadata_file(self):
        upload = self.cleaned_data.get("metadata_file")
        if upload is None:
            return ""
        if upload.size > self.MAX_METADATA_BYTES:
            raise forms.ValidationError("the metadata file is larger than 1 MB")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("the metadata file is not UTF-8 XML") from exc


class GroupMappingForm(forms.Form):
    group = forms.CharField(label="IdP group", max_length=255)
    team = forms.ChoiceField(label="Team", required=False)
    role = forms.ChoiceField(
        label="or role",
        required=False,
        choices=[("", "—")] + [c for c in Role.choices if c[0] != Role.OWNER],
    )

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "—")] + [(t.slug, t.name) for t in teams]

    def clean(self):
        data = super().clean()
        if bool(data.get("team")) == bool(data.get("role")):
            raise forms.ValidationError("choose a team or a role")
        return data


class RequireSSOForm(forms.Form):
    sso_required = forms.BooleanField(required=False)


class BreakGlassForm(forms.Form):
    break_glass = forms.BooleanField(required=False)


class OIDCForm(forms.Form):
    """The organization's OpenID provider. The secret is never rendered back."""

    issuer = forms.CharField(label="Issuer URL", max_length=1024)
    client_id = forms.CharField(label="Client ID", max_length=255)
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        max_length=1024,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the saved secret.",
    )
    groups_claim = forms.CharField(label="Groups claim", max_length=255, required=False)
    scopes = forms.CharField(label="Scopes", max_length=500, required=False)
