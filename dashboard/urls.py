from django.urls import path

from . import views

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("teams/<slug:team_slug>/", views.TeamDetailView.as_view(), name="team-detail"),
]
