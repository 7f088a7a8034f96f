from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import organization_views, saml_views
from audit import urls as audit_urls
from policies import views as policy_views

from . import errors, views

org_patterns = [
    path("", include("dashboard.urls")),
    path("", include("accounts.urls")),
    path("audit/", include(audit_urls)),
    path("evidence/", include("evidence.urls")),
    path("inventory/", include("inventory.urls")),
    path("policies/", include("policies.urls")),
    path("evidence/", include("evidence.urls")),
    path("assistant/", include("assistant.urls")),
    path("findings/", policy_views.FindingListView.as_view(), name="findings"),
    path(
        "findings/resource/<int:pk>/",
        policy_views.ResourceFindingsView.as_view(),
        name="resource-findings",
    ),
    path(
        "findings/exemptions/",
        policy_views.ExemptionListView.as_view(),
        name="exemption-list",
    ),
    path(
        "findings/exemptions/<int:pk>/approve/",
        policy_views.ExemptionDecideView.as_view(decision="approve"),
        name="exemption-approve",
    ),
    path(
        "findings/exemptions/<int:pk>/reject/",
        policy_views.ExemptionDecideView.as_view(decision="reject"),
        name="exemption-reject",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/new/", organization_views.new_organization, name="organization-new"),
    path(
        "invitations/<int:pk>/<str:answer>/",
        organization_views.answer_invitation,
        name="invitation-answer",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # Before allauth's URLs: our strict end of the SAML sign-in, our audited single logout and
    # the transactional OpenID callback answer at the same addresses.
    path(
        "accounts/saml/<slug:organization_slug>/acs/finish/",
        saml_views.finish_acs,
        name="saml_finish_acs",
    ),
    path("accounts/saml/<slug:organization_slug>/sls/", saml_views.sls, name="saml_sls"),
    # The SP metadata, served from the organization's first day (allauth's needs a saved IdP).
    path(
        "accounts/saml/<slug:organization_slug>/metadata/",
        saml_views.sp_metadata,
        name="saml_metadata",
    ),
    # allauth's OpenID Connect callback, with just-in-time provisioning in one transaction.
    path(
        "accounts/oidc/<str:provider_id>/login/callback/",
        saml_views.oidc_callback,
        name="openid_connect_callback",
    ),
    path("accounts/sso/", saml_views.sso_start, name="sso-start"),
    path("accounts/", include("allauth.urls")),
    path("o/<slug:org_slug>/", include(org_patterns)),
    path("api/v1/", include("tagsense.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.not_found
handler500 = errors.server_error
