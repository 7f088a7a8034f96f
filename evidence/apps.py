from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    """Evidence packages an auditor takes away and verifies offline (issue #16): the scope and
    period an owner, admin or auditor chose, built in the background into one signed ZIP."""

    name = "evidence"

    def ready(self) -> None:
        from . import audit_events  # noqa: F401, PLC0415 - ready(): registers
