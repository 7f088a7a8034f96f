from django.urls import path

from . import views

urlpatterns = [
    path("", views.ResourceListView.as_view(), name="inventory"),
    path("resources/<int:pk>/", views.ResourceDetailView.as_view(), name="resource-detail"),
    path("resources/<int:pk>/graph.json", views.ResourceGraphView.as_view(), name="resource-graph"),
    path("accounts/", views.AccountListView.as_view(), name="account-list"),
    path("accounts/<int:pk>/", views.AccountDetailView.as_view(), name="account-detail"),
    path(
        "accounts/role-template.yaml",
        views.RoleTemplateView.as_view(),
        name="account-role-template",
    ),
    path("accounts/<int:pk>/test/", views.AccountTestView.as_view(), name="account-test"),
    path("accounts/<int:pk>/teams/", views.AccountTeamsView.as_view(), name="account-teams"),
    path("accounts/<int:pk>/delete/", views.AccountDeleteView.as_view(), name="account-delete"),
    path(
        "accounts/<int:pk>/discover/", views.AccountDiscoverView.as_view(), name="account-discover"
    ),
    path("scans/", views.ScanListView.as_view(), name="scan-list"),
    path("scans/start/", views.ScanStartView.as_view(), name="scan-start"),
    path("scans/<int:pk>/", views.ScanDetailView.as_view(), name="scan-detail"),
    path("schedules/", views.ScheduleListView.as_view(), name="schedule-list"),
]
