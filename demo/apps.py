from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo estate, organization, costs and simulated history (docs/inventory.md, "The
    demo")."""

    name = "demo"

    def ready(self) -> None:
        # The domain command's demo option calls this through a plug (tagsense/plugs.py):
        # `import_costs --demo`.
        from inventory.costs import DEMO_COSTS  # noqa: PLC0415 - ready()

        from .costs import seed_demo_costs  # noqa: PLC0415 - ready()

        DEMO_COSTS.provide(seed_demo_costs)
