from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from . import audit_events, signals, team_groups  # noqa: F401, PLC0415 - ready(): registers
