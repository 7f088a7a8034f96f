from django.urls import include, path

from accounts.api import token_views
from accounts.api import views as accounts_api
from audit.api import views as audit_api
from evidence.api import views as evidence_api

org_patterns = [
    path("", accounts_api.OrganizationDetailView.as_view(), name="api-org-detail"),
    path("members/", accounts_api.MemberListView.as_view(), name="api-member-list"),
    path("teams/", accounts_api.TeamListView.as_view(), name="api-team-list"),
    path("tokens/", token_views.PersonalTokenListView.as_view(), name="api-token-list"),
    path(
        "tokens/<int:pk>/revoke/",
        token_views.PersonalTokenRevokeView.as_view(),
        name="api-token-revoke",
    ),
    path(
        "service-accounts/",
        token_views.ServiceAccountListView.as_view(),
        name="api-service-account-list",
    ),
    path(
        "service-accounts/<int:pk>/tokens/",
        token_views.ServiceAccountTokenListView.as_view(),
        name="api-service-account-token-list",
    ),
    path(
        "service-accounts/<int:account_pk>/tokens/<int:pk>/revoke/",
        token_views.ServiceAccountTokenRevokeView.as_view(),
        name="api-service-account-token-revoke",
    ),
    path("audit-events/", audit_api.AuditEventListView.as_view(), name="api-audit-list"),
    path("evidence/exports/", evidence_api.ExportListView.as_view(), name="api-evidence-exports"),
    path(
        "evidence/exports/<uuid:export>/",
        evidence_api.ExportDetailView.as_view(),
        name="api-evidence-export",
    ),
    path(
        "evidence/exports/<uuid:export>/download",
        evidence_api.ExportDownloadView.as_view(),
        name="api-evidence-export-download",
    ),
    path("inventory/", include("inventory.api.urls")),
    path("policies/", include("policies.api.urls")),
]

urlpatterns = [
    path("organizations/", accounts_api.MyOrganizationsView.as_view(), name="api-org-list"),
    path("o/<slug:org_slug>/", include(org_patterns)),
]
