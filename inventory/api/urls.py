from django.urls import path, re_path

from . import views

urlpatterns = [
    path("accounts/", views.AccountListView.as_view(), name="api-account-list"),
    path("accounts/<int:pk>/", views.AccountDetailView.as_view(), name="api-account-detail"),
    path("scans/", views.ScanListView.as_view(), name="api-scan-list"),
    path("scans/<int:pk>/", views.ScanDetailView.as_view(), name="api-scan-detail"),
    path("resources/", views.ResourceListView.as_view(), name="api-resource-list"),
    path("resources/<int:pk>/", views.ResourceDetailView.as_view(), name="api-resource-detail"),
    re_path(
        r"^resources/(?P<pk>\d+)/(?P<query>neighbours|blast-radius|path)/$",
        views.ResourceGraphView.as_view(),
        name="api-resource-graph",
    ),
]
