"""The assistant's modes and their system prompts (templates/assistant/prompts/<mode>.txt)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.template.loader import render_to_string

if TYPE_CHECKING:
    from accounts.models import Organization

    from .grounding import Grounding

MODES: dict[str, str] = {
    "chat": "Free chat",
    "strategist": "Tagging Strategist",
    "auditor": "Compliance Auditor",
    "cost": "Cost Optimizer",
    "remediation": "Remediation Engineer",
}


def system_prompt(mode: str, grounding: Grounding, organization: Organization) -> str:
    """The system prompt of `mode` with the grounding's text. The templates render without
    HTML escaping (a prompt is not HTML); the grounding quotes what came from AWS."""
    if mode not in MODES:
        raise ValueError(f"unknown assistant mode {mode!r}")
    return render_to_string(
        f"assistant/prompts/{mode}.txt",
        {"grounding": grounding.text, "organization": organization, "title": MODES[mode]},
    ).strip()
