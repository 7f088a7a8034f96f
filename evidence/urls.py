from django.urls import path

from . import views

urlpatterns = [
    path("", views.ExportListView.as_view(), name="evidence-list"),
    path("<uuid:export>/", views.ExportDetailView.as_view(), name="evidence-detail"),
    path("<uuid:export>/download", views.ExportDownloadView.as_view(), name="evidence-download"),
]
