from django.apps import AppConfig


class AssistantConfig(AppConfig):
    """LLM backends, grounding and the streaming panel (issue #6)."""

    name = "assistant"

    def ready(self) -> None:
        from . import audit_events  # noqa: F401, PLC0415 - ready(): registers
