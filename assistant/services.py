"""The assistant's writes and its provider configuration: settings and providers (admins;
audited, keys never in the event), the backends of an organization in failover order, and the
monthly token budget.

Callers run inside the organization's tenant scope and have checked the actor's role.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

import audit

from . import audit_events
from .backends.anthropic_messages import AnthropicBackend
from .backends.base import Backend
from .backends.offline import OfflineAnalyst
from .backends.openai_chat import OpenAIChatBackend
from .models import AssistantSettings, ChatMessage, Provider

if TYPE_CHECKING:
    from accounts.models import Membership, Organization

SETTING_FIELDS = ("temperature", "max_tokens", "monthly_token_budget")
PROVIDER_FIELDS = ("name", "kind", "model", "base_url", "position", "enabled", "timeout_seconds")


def settings_for(organization: Organization) -> AssistantSettings:
    """The organization's settings, or the defaults (unsaved) when it has none."""
    found = AssistantSettings.objects.for_org(organization).first()
    return found or AssistantSettings(organization=organization)


@transaction.atomic
def update_settings(organization: Organization, **values: Any) -> AssistantSettings:
    current = settings_for(organization)
    changed = {k: v for k, v in values.items() if k in SETTING_FIELDS and getattr(current, k) != v}
    for name, value in changed.items():
        setattr(current, name, value)
    current.save()
    audit.record(audit_events.SETTINGS_UPDATE, data={"changed": changed})
    return current


@transaction.atomic
def save_provider(
    organization: Organization, provider: Provider | None, *, api_key: str | None, **values: Any
) -> Provider:
    """Create or change a provider. `api_key`: None keeps the stored one (unless the kind or
    the base URL changes: then it is removed), "" removes it, text replaces it. The event names
    what changed; a key is only ever "set" or "removed"."""
    created = provider is None
    provider = provider or Provider(organization=organization)
    changed = {
        k: v for k, v in values.items() if k in PROVIDER_FIELDS and getattr(provider, k) != v
    }
    for name, value in changed.items():
        setattr(provider, name, value)
    if api_key is not None:
        provider.set_api_key(api_key)
        changed["api_key"] = "set" if api_key else "removed"
    elif not created and provider.has_key and ({"base_url", "kind"} & changed.keys()):
        # A key goes only where it was entered for: pointed elsewhere, it must be entered again.
        provider.set_api_key("")
        changed["api_key"] = "removed: the endpoint changed"
    provider.full_clean(exclude=["organization"])
    others = Provider.objects.for_org(organization).exclude(pk=provider.pk)
    if others.filter(name=provider.name).exists():
        raise ValidationError({"name": f"A provider named {provider.name} exists already."})
    provider.save()
    action = audit_events.PROVIDER_CREATE if created else audit_events.PROVIDER_UPDATE
    audit.record(action, target=provider, data={"changed": changed})
    return provider


@transaction.atomic
def delete_provider(provider: Provider) -> None:
    audit.record(audit_events.PROVIDER_DELETE, target=provider, data={"name": provider.name})
    provider.delete()


def backend_for(provider: Provider) -> Backend:

    options = {
        "name": provider.name,
        "model": provider.model,
        "api_key": provider.api_key(),
        "base_url": provider.base_url or None,
        "timeout": provider.timeout_seconds,
    }
    if provider.kind == Provider.ANTHROPIC:
        return AnthropicBackend(**options)
    return OpenAIChatBackend(**options)


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tokens_used(organization: Organization, since: datetime | None = None) -> int:
    """Tokens in and out of model providers this calendar month (UTC); cached answers and the
    offline analyst cost none."""
    totals = (
        ChatMessage.objects.for_org(organization)
        .filter(role=ChatMessage.ASSISTANT, created_at__gte=since or month_start(), cached=False)
        .aggregate(i=Sum("tokens_in"), o=Sum("tokens_out"))
    )
    return (totals["i"] or 0) + (totals["o"] or 0)


def budget_remaining(
    organization: Organization, settings: AssistantSettings | None = None
) -> int | None:
    """Tokens left in this month's budget (0 when used up); None without a budget."""
    budget = (settings or settings_for(organization)).monthly_token_budget
    return max(0, budget - tokens_used(organization)) if budget else None


BUDGET_USED_UP = "The organization's monthly token budget is used up: the offline analyst answers."


def backends_for(
    membership: Membership, settings: AssistantSettings | None = None
) -> tuple[list[Backend], list[str], int | None]:
    """The backends to try in order, the offline analyst last; notices for the answer (the
    budget is exhausted, a key cannot be decrypted); the tokens left in the budget (None
    without one). `settings`: the organization's, when the caller has them."""

    organization = membership.organization
    notices: list[str] = []
    backends: list[Backend] = []
    providers = list(Provider.objects.for_org(organization).filter(enabled=True))
    remaining = budget_remaining(organization, settings) if providers else None
    if remaining == 0:
        notices.append(BUDGET_USED_UP)
        providers, remaining = [], None  # the offline analyst costs no tokens
    for provider in providers:
        try:
            backends.append(backend_for(provider))
        except Exception:  # noqa: BLE001 - an undecryptable key (rotated SECRET_KEY)
            notices.append(f"Provider {provider.name} is skipped: its API key cannot be read.")
    backends.append(OfflineAnalyst())
    return backends, notices, remaining
