"""Reads with a permission check: missing and forbidden are both 404."""

from django.shortcuts import get_object_or_404

from accounts.models import Membership

from .models import AwsAccount, Resource, ScanRun


def access_account_by_id(membership: Membership, pk: int, action: str = "view") -> AwsAccount:
    return get_object_or_404(AwsAccount.objects.restrict(membership, action), pk=pk)


def access_resource_by_id(membership: Membership, pk: int) -> Resource:
    return get_object_or_404(
        Resource.objects.restrict(membership, "view").select_related("account").with_last_seen(),
        pk=pk,
    )


def access_scan_by_id(membership: Membership, pk: int) -> ScanRun:
    return get_object_or_404(ScanRun.objects.restrict(membership, "view"), pk=pk)
