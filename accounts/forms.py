from django import forms

from .roles import Role


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
