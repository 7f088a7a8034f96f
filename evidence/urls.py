from django.urls import path

from . import key_views, views

urlpatterns = [
    path("", views.ExportListView.as_view(), name="evidence-list"),
    path("<uuid:export>/", views.ExportDetailView.as_view(), name="evidence-detail"),
    path("<uuid:export>/download", views.ExportDownloadView.as_view(), name="evidence-download"),
    path("keys/", key_views.EvidenceKeysView.as_view(), name="evidence-keys"),
    path("keys/rotate/", key_views.RotateEvidenceKeyView.as_view(), name="evidence-key-rotate"),
    # Stable addresses: a key's own never changes; key.pem is always the active one.
    path("keys/<str:token>.pem", key_views.PublicKeyView.as_view(), name="evidence-key-pem"),
    path("key.pem", key_views.PublicKeyView.as_view(), name="evidence-current-key-pem"),
]
