from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """AWS accounts, scanners, resources, tag history and the relationship graph (issue #4)."""

    name = "inventory"
