from django.urls import path

from . import token_views, views

urlpatterns = [
    path("settings/", views.SettingsView.as_view(), name="settings"),
    path("settings/organization/", views.UpdateOrganizationView.as_view(), name="org-update"),
    path("settings/security/", views.UpdateSecurityView.as_view(), name="org-security"),
    path("settings/members/add/", views.AddMemberView.as_view(), name="member-add"),
    path("settings/members/<int:pk>/role/", views.ChangeRoleView.as_view(), name="member-role"),
    path(
        "settings/members/<int:pk>/remove/", views.RemoveMemberView.as_view(), name="member-remove"
    ),
    path(
        "settings/members/<int:pk>/break-glass/",
        views.BreakGlassView.as_view(),
        name="member-break-glass",
    ),
    path("settings/sso/", views.SSOSettingsView.as_view(), name="sso-settings"),
    path("settings/sso/idp/", views.ConfigureSAMLView.as_view(), name="sso-configure"),
    path("settings/sso/oidc/", views.ConfigureOIDCView.as_view(), name="sso-oidc-configure"),
    path("settings/sso/require/", views.RequireSSOView.as_view(), name="sso-require"),
    path("settings/sso/mappings/add/", views.AddGroupMappingView.as_view(), name="sso-mapping-add"),
    path(
        "settings/sso/mappings/<int:pk>/remove/",
        views.RemoveGroupMappingView.as_view(),
        name="sso-mapping-remove",
    ),
    path("settings/teams/add/", views.CreateTeamView.as_view(), name="team-add"),
    path("settings/tokens/", token_views.PersonalTokensView.as_view(), name="api-tokens"),
    path(
        "settings/tokens/<int:pk>/revoke/",
        token_views.RevokePersonalTokenView.as_view(),
        name="api-token-revoke",
    ),
    path(
        "settings/service-accounts/",
        token_views.ServiceAccountsView.as_view(),
        name="service-accounts",
    ),
    path(
        "settings/service-accounts/<int:pk>/tokens/",
        token_views.CreateServiceAccountTokenView.as_view(),
        name="service-account-token-add",
    ),
    path(
        "settings/service-accounts/<int:account_pk>/tokens/<int:pk>/revoke/",
        token_views.RevokeServiceAccountTokenView.as_view(),
        name="service-account-token-revoke",
    ),
    path("teams/<slug:team_slug>/edit/", views.UpdateTeamView.as_view(), name="team-edit"),
    path("teams/<slug:team_slug>/delete/", views.DeleteTeamView.as_view(), name="team-delete"),
    path(
        "teams/<slug:team_slug>/members/add/",
        views.AddTeamMemberView.as_view(),
        name="team-member-add",
    ),
    path(
        "teams/<slug:team_slug>/members/<int:pk>/remove/",
        views.RemoveTeamMemberView.as_view(),
        name="team-member-remove",
    ),
]
