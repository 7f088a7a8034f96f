"""The inventory's filters, shared by the page, the CSV export and the API."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet

SORTS = {
    "name": ("name", "arn"),
    "-name": ("-name", "-arn"),
    "type": ("resource_type", "name"),
    "region": ("region", "resource_type"),
    "account": ("account__account_id", "resource_type"),
    "first_seen": ("first_seen",),
    "-first_seen": ("-first_seen",),
    "last_seen": ("last_seen",),
    "-last_seen": ("-last_seen",),
}


class ResourceFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search name, id or ARN")
    account = forms.CharField(required=False, label="Account id")
    region = forms.CharField(required=False)
    type = forms.CharField(required=False, label="Resource type")
    has_key = forms.CharField(required=False, label="Tag key present")
    missing_key = forms.CharField(required=False, label="Tag key absent")
    tag = forms.CharField(required=False, label="key=value")
    untagged = forms.BooleanField(required=False)
    deleted = forms.ChoiceField(
        required=False,
        choices=[("", "Live only"), ("include", "Live and deleted"), ("only", "Deleted only")],
    )
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS])

    def clean_tag(self):
        value = self.cleaned_data["tag"].strip()
        if value and "=" not in value:
            raise forms.ValidationError("write the tag as key=value")
        return value


def filter_resources(queryset: QuerySet, data: dict) -> QuerySet:
    """Apply cleaned ResourceFilterForm data."""
    deleted = data.get("deleted") or ""
    if deleted == "only":
        queryset = queryset.filter(deleted_at__isnull=False)
    elif deleted != "include":
        queryset = queryset.filter(deleted_at__isnull=True)
    if data.get("q"):
        term = data["q"].strip()
        queryset = queryset.filter(
            Q(name__icontains=term) | Q(resource_id__icontains=term) | Q(arn__icontains=term)
        )
    if data.get("account"):
        queryset = queryset.filter(account__account_id=data["account"].strip())
    if data.get("region"):
        queryset = queryset.filter(region=data["region"].strip())
    if data.get("type"):
        queryset = queryset.filter(resource_type=data["type"].strip())
    if data.get("has_key"):
        queryset = queryset.tagged(data["has_key"].strip())
    if data.get("missing_key"):
        queryset = queryset.lacking_tag(data["missing_key"].strip())
    if data.get("tag"):
        key, _, value = data["tag"].partition("=")
        queryset = queryset.tagged(key.strip(), value.strip())
    if data.get("untagged"):
        queryset = queryset.filter(tags={})
    return queryset.order_by(*SORTS.get(data.get("sort") or "type", SORTS["type"]))
