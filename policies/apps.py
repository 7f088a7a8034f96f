from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    """Tag rules, frameworks, evaluation, findings and exemptions (issue #5)."""

    name = "policies"

    def ready(self) -> None:
        from . import audit_events, receivers  # noqa: F401, PLC0415 - ready(): registers, connects
