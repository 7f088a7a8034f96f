from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """AWS accounts, scanners, resources, tag history and the relationship graph."""

    name = "inventory"

    def ready(self) -> None:
        from . import audit_events  # noqa: F401, PLC0415 - ready(): registers
