from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Pages that read from several apps (the organization's dashboard, a team's page); it
    owns no data and nothing imports it."""

    name = "dashboard"
