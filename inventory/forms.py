from django import forms

from .models.accounts import validate_account_id, validate_role_arn


class RegionsField(forms.CharField):
    """Comma- or space-separated regions; empty means every enabled region."""

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [r for r in text.replace(",", " ").split() if r]

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value


class AccountForm(forms.Form):
    account_id = forms.CharField(max_length=12, validators=[validate_account_id])
    name = forms.CharField(max_length=200, required=False)
    role_arn = forms.CharField(
        max_length=600, required=False, validators=[validate_role_arn], label="Role ARN"
    )
    regions = RegionsField(required=False, help_text="e.g. us-east-1, eu-west-1; empty: all")
    enabled = forms.BooleanField(required=False, initial=True)


class AccountEditForm(AccountForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["account_id"]


class StartScanForm(forms.Form):
    account = forms.CharField(required=False)
    region = forms.CharField(required=False)
    type = forms.CharField(required=False)


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200)
    account = forms.ChoiceField(required=False, label="Account")
    kind = forms.ChoiceField(choices=[("interval", "Every N minutes"), ("cron", "Cron")])
    every_minutes = forms.IntegerField(required=False, min_value=5, label="Every (minutes)")
    cron = forms.CharField(required=False, max_length=120, help_text="e.g. 0 3 * * *")
    timezone = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, accounts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", "All enabled accounts")] + [
            (str(a.pk), str(a)) for a in accounts
        ]


class AccountTeamsForm(forms.Form):
    """The teams that hold an AWS account (their editors and viewers see it)."""

    teams = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"].queryset = teams
