"""The request form of the evidence page. Names are taken as typed and checked by
evidence.services (one place for what a scope may name, for the page and the API alike)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms

from accounts.models import Organization, Team
from inventory.models import AwsAccount
from policies.models import Control, Framework

# The period a new request proposes: the last 30 days, today included.
DEFAULT_DAYS = 30


def default_period(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


class NamesField(forms.MultipleChoiceField):
    """A multi-select whose values are names checked by the service, not by the widget's
    choices: an unknown or foreign name is refused with the service's message."""

    def valid_value(self, value: Any) -> bool:
        return True


class ExportRequestForm(forms.Form):
    frameworks = NamesField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="one or several"
    )
    controls = NamesField(
        required=False, help_text="optional: only these controls (default: every control)"
    )
    teams = NamesField(required=False, help_text="optional: the accounts these teams hold")
    accounts = NamesField(required=False, label="AWS accounts", help_text="optional")
    period_start = forms.DateField(
        label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    period_end = forms.DateField(
        label="To (included)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args: Any, organization: Organization, today: date, **kwargs: Any):
        super().__init__(*args, **kwargs)
        start, end = default_period(today)
        self.fields["period_start"].initial = start
        self.fields["period_end"].initial = end
        frameworks = list(Framework.objects.for_org(organization).order_by("name"))
        self._choices("frameworks", [(f.slug, f"{f.name} ({f.slug})") for f in frameworks])
        self._choices(
            "controls",
            [
                (
                    framework.name,
                    [
                        (f"{framework.slug}/{c.control_id}", f"{c.control_id} {c.title[:80]}")
                        for c in Control.objects.for_org(organization)
                        .filter(framework=framework)
                        .order_by("position", "id")
                    ],
                )
                for framework in frameworks
            ],
        )
        self._choices(
            "teams", [(t.slug, t.name) for t in Team.objects.for_org(organization).order_by("name")]
        )
        self._choices(
            "accounts",
            [(a.account_id, str(a)) for a in AwsAccount.objects.for_org(organization)],
        )

    def _choices(self, name: str, choices: list[Any]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)  # declared above
        field.choices = choices

    def scope(self) -> dict[str, list[str]]:
        data = self.cleaned_data
        return {
            name: data.get(name) or [] for name in ("frameworks", "controls", "teams", "accounts")
        }
