from django.urls import include, path

from accounts.api import views as accounts_api
from audit.api import views as audit_api

org_patterns = [
    path("", accounts_api.OrganizationDetailView.as_view(), name="api-org-detail"),
    path("members/", accounts_api.MemberListView.as_view(), name="api-member-list"),
    path("teams/", accounts_api.TeamListView.as_view(), name="api-team-list"),
    path("audit-events/", audit_api.AuditEventListView.as_view(), name="api-audit-list"),
    path("inventory/", include("inventory.api.urls")),
]

urlpatterns = [
    path("organizations/", accounts_api.MyOrganizationsView.as_view(), name="api-org-list"),
    path("o/<slug:org_slug>/", include(org_patterns)),
]
