from django.apps import AppConfig
from django.db.models.signals import post_migrate

from . import db


class TenancyConfig(AppConfig):
    name = "tagsense.tenancy"
    label = "tenancy"

    def ready(self) -> None:
        import tagsense.api_schema  # noqa: F401, PLC0415 - ready(): registers

        post_migrate.connect(db.sync_row_level_security, dispatch_uid="tenancy.sync_rls")
