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
