from django.urls import path

from . import views

urlpatterns = [
    path("", views.AssistantView.as_view(), name="assistant"),
    path("ask/", views.AskView.as_view(), name="assistant-ask"),
    path("stream/<int:pk>/", views.StreamView.as_view(), name="assistant-stream"),
    path("stop/<int:pk>/", views.StopView.as_view(), name="assistant-stop"),
    path("settings/", views.SettingsView.as_view(), name="assistant-settings"),
    path("usage/", views.UsageView.as_view(), name="assistant-usage"),
]
