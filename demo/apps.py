from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo estate, organization, costs and history (docs/inventory.md, "The demo")."""

    name = "demo"

    def ready(self) -> None:
        # The domain commands' demo options call these through plugs (tagsense/plugs.py):
        # `import_costs --demo` and `score_snapshot --demo-history`.
        from inventory.costs import DEMO_COSTS  # noqa: PLC0415 - ready()
        from policies.scoring.scores import DEMO_HISTORY  # noqa: PLC0415 - ready()

        from .costs import seed_demo_costs  # noqa: PLC0415 - ready()
        from .history import seed_demo_history  # noqa: PLC0415 - ready()

        DEMO_COSTS.provide(seed_demo_costs)
        DEMO_HISTORY.provide(seed_demo_history)
